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
