"""Consultation requests between hospitals (Order 965n): urgency and deadline, states, messages, conclusions."""

from datetime import timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Urgency(models.TextChoices):
    EMERGENCY = "emergency", _("emergency")
    URGENT = "urgent", _("urgent")
    PLANNED = "planned", _("planned")


URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.PLANNED: 2}
DEFAULT_DEADLINE_HOURS = {Urgency.EMERGENCY: 2, Urgency.URGENT: 24, Urgency.PLANNED: 7 * 24}


class ResponseDeadline(models.Model):
    """How long the central hospital has to answer, per urgency; platform admins edit it."""

    urgency = models.CharField(_("urgency"), max_length=10, choices=Urgency.choices, unique=True)
    hours = models.PositiveIntegerField(_("hours to answer"))

    class Meta:
        ordering = ["hours"]
        verbose_name = _("response deadline")
        verbose_name_plural = _("response deadlines")

    def __str__(self) -> str:
        return f"{self.get_urgency_display()}: {self.hours} h"

    @classmethod
    def for_urgency(cls, urgency: str) -> timedelta:
        row = cls.objects.filter(urgency=urgency).first()
        return timedelta(hours=row.hours if row else DEFAULT_DEADLINE_HOURS[Urgency(urgency)])


class Icd10Code(models.Model):
    """ICD-10 reference: the chapters of the diseases in scope (cardiovascular, respiratory, diabetes,
    prostate, kidney/liver/gallbladder, pregnancy), editable by platform admins."""

    code = models.CharField(_("code"), max_length=8, primary_key=True)
    title_en = models.CharField(_("title (English)"), max_length=200)
    title_ru = models.CharField(_("title (Russian)"), max_length=200)

    class Meta:
        ordering = ["code"]
        verbose_name = _("ICD-10 code")
        verbose_name_plural = _("ICD-10 codes")

    def __str__(self) -> str:
        return f"{self.code} {self.title_ru}"

    @property
    def title(self) -> str:
        """The title in the reader's language."""
        return self.title_ru if get_language() == "ru" else self.title_en


class Consultation(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("draft")
        REQUESTED = "requested", _("requested")
        ACCEPTED = "accepted", _("accepted")
        INFO_REQUESTED = "info_requested", _("more information requested")
        CONCLUDED = "concluded", _("concluded")
        DECLINED = "declined", _("declined")
        CANCELLED = "cancelled", _("cancelled")

    patient = models.ForeignKey(
        "patients.Patient", verbose_name=_("patient"), on_delete=models.PROTECT, related_name="consultations"
    )
    requesting_hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("requested by hospital"), on_delete=models.PROTECT, related_name="+"
    )
    consulted_hospital = models.ForeignKey(
        "hospitals.Hospital",
        verbose_name=_("consulted hospital"),
        on_delete=models.PROTECT,
        related_name="consultations_received",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    specialty = models.ForeignKey("hospitals.Specialty", verbose_name=_("specialty"), on_delete=models.PROTECT)
    urgency = models.CharField(_("urgency"), max_length=10, choices=Urgency.choices)
    # URGENCY_RANK of the urgency, kept by save(): the worklist sorts and indexes on it.
    priority = models.PositiveSmallIntegerField(editable=False, default=URGENCY_RANK[Urgency.PLANNED])
    question = models.TextField(_("clinical question"), max_length=4000)
    condition = models.TextField(_("current condition"), max_length=4000)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.DRAFT)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("specialist"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decline_reason = models.TextField(_("reason for declining"), max_length=2000, blank=True)
    studies = models.ManyToManyField(
        "diagnostics.Study", verbose_name=_("imaging studies"), blank=True, related_name="consultations"
    )
    requested_at = models.DateTimeField(_("requested at"), null=True, blank=True)
    deadline = models.DateTimeField(_("answer due"), null=True, blank=True)
    overdue_at = models.DateTimeField(_("marked overdue at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deadline"]
        verbose_name = _("consultation")
        verbose_name_plural = _("consultations")
        indexes = [
            # The worklist: open requests of a hospital, most urgent first, then least time left.
            models.Index(
                fields=["consulted_hospital", "priority", "deadline", "id"],
                name="consultation_worklist_open",
                condition=models.Q(state__in=["requested", "accepted", "info_requested"]),
            ),
            models.Index(fields=["consulted_hospital", "state", "deadline"], name="consultation_worklist"),
            models.Index(fields=["requesting_hospital", "state"], name="consultation_requested"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_urgency_display()} {self.specialty} ({self.get_state_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.priority = URGENCY_RANK[Urgency(self.urgency)]
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "priority"}
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


OPEN_STATES = (Consultation.State.REQUESTED, Consultation.State.ACCEPTED, Consultation.State.INFO_REQUESTED)
# The consulted hospital sees the patient while a request is before it, and keeps the record it answered.
VISIBLE_TO_CONSULTED = (*OPEN_STATES, Consultation.State.CONCLUDED, Consultation.State.DECLINED)


class Transition(models.Model):
    """One state change: who, when, from what to what, and why."""

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, choices=Consultation.State.choices)
    to_state = models.CharField(max_length=16, choices=Consultation.State.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.consultation_id}: {self.from_state} -> {self.to_state}"


class Message(models.Model):
    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(_("message"), max_length=4000)
    attachment = models.FileField(_("attachment (PDF, JPEG or PNG)"), upload_to="messages/%Y/%m/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.consultation_id} @ {self.created_at:%Y-%m-%d %H:%M}"


class Conclusion(models.Model):
    """A signed conclusion. Never changed: a correction is a new signed version; older ones stay visible."""

    class Recommendation(models.TextChoices):
        TREAT_LOCALLY = "treat_locally", _("treat locally with the plan below")
        TRANSFER = "transfer", _("transfer to the central hospital")
        FURTHER_TESTS = "further_tests", _("further tests")

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="conclusions")
    version = models.PositiveSmallIntegerField()
    findings = models.TextField(_("findings"), max_length=8000)
    diagnosis = models.ForeignKey(Icd10Code, verbose_name=_("diagnosis (ICD-10)"), on_delete=models.PROTECT)
    diagnosis_text = models.CharField(_("diagnosis in words"), max_length=500)
    recommendation = models.CharField(_("recommendation"), max_length=16, choices=Recommendation.choices)
    plan = models.TextField(_("plan"), max_length=8000)
    follow_up = models.DateField(_("follow-up date"), null=True, blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["consultation", "version"], name="conclusion_version_unique")]

    def __str__(self) -> str:
        return f"{self.consultation_id} v{self.version} {self.diagnosis_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("A signed conclusion is never changed; sign a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("A signed conclusion is never removed.")


class Call(models.Model):
    """A video call on a consultation: rung, answered or not, ended. The call log; media never passes here."""

    class State(models.TextChoices):
        RINGING = "ringing", _("ringing")
        ACTIVE = "active", _("active")
        ENDED = "ended", _("ended")
        MISSED = "missed", _("missed")
        DECLINED = "declined", _("declined")
        FAILED = "failed", _("failed")

    class EndReason(models.TextChoices):
        HANGUP = "hangup", _("hung up")
        CANCELLED = "cancelled", _("cancelled by the caller")
        TIMEOUT = "timeout", _("not answered in time")
        DECLINED = "declined", _("declined")
        ICE_FAILURE = "ice_failure", _("the connection between the two sides failed")
        CONNECTION_LOST = "connection_lost", _("a participant's connection was lost")
        CONSULTATION_CLOSED = "consultation_closed", _("the consultation was closed")

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="calls")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("called by"), on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.RINGING)
    started_at = models.DateTimeField(_("rang at"), auto_now_add=True)
    ring_until = models.DateTimeField(_("rings until"))
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("answered by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("ended by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    end_reason = models.CharField(_("end reason"), max_length=20, choices=EndReason.choices, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("video call")
        verbose_name_plural = _("video calls")
        constraints = [
            # One call rings or runs per consultation: two people calling each other at once meet in it.
            models.UniqueConstraint(
                fields=["consultation"],
                condition=models.Q(state__in=["ringing", "active"]),
                name="call_one_live_per_consultation",
            )
        ]

    def __str__(self) -> str:
        return f"call {self.pk} on {self.consultation_id} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in (Call.State.RINGING, Call.State.ACTIVE)

    @property
    def duration(self) -> timedelta | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.answered_at

    @property
    def duration_clock(self) -> str:
        """The talk time as the call log shows it: m:ss, or h:mm:ss."""
        if self.duration is None:
            return ""
        minutes, seconds = divmod(round(self.duration.total_seconds()), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class CallGuest(models.Model):
    """Staff the specialist invited into one call (a second specialist, a trainer from a partner hospital)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="guests")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    invited_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["call", "user"], name="call_guest_once")]

    def __str__(self) -> str:
        return f"{self.user_id} in call {self.call_id}"


class CallPresence(models.Model):
    """Who has the consultation's call page open, and on which socket: the room, shared by every ASGI process.
    A participant who closed the tab keeps the row (left_at set) for the rejoin grace period."""

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200)
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consultation", "user"], name="call_presence_once")]

    def __str__(self) -> str:
        return f"{self.user_id} in room {self.consultation_id}"
