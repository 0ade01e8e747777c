"""Hospitals, the network between them, staff and roles, and the audit trail."""

import zoneinfo
from collections.abc import Iterator
from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.crypto import salted_hmac
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A person who signs in. Their hospital and role are on `Staff`; platform admins are superusers."""

    must_change_password = models.BooleanField(
        _("must change password"),
        default=False,
        help_text=_("Set when an admin created the account or reset its password."),
    )
    # Part of every session's auth hash: bumping it ends all of the account's sessions for good
    # (deactivation, a lost second factor), even if the account is later reactivated.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    def get_session_auth_hash(self) -> str:
        return self._session_hash()

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret)

    def _session_hash(self, secret: str | bytes | None = None) -> str:
        value = f"{self.password}|{self.session_epoch}"
        return salted_hmac("mhospital.User.session", value, secret=secret, algorithm="sha256").hexdigest()


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("“%(value)s” is not a known time zone, e.g. Europe/Moscow."), params={"value": value})


class Hospital(models.Model):
    class Kind(models.TextChoices):
        CENTRAL = "central", _("Central hospital")
        REGIONAL = "regional", _("Regional hospital")
        STATION_CLINIC = "station_clinic", _("Railway-station clinic")
        MOBILE_UNIT = "mobile_unit", _("Mobile unit (train car)")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    region = models.CharField(_("region"), max_length=120)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Moscow", validators=[validate_time_zone]
    )
    is_active = models.BooleanField(_("active"), default=True)
    central_hospital = models.ForeignKey(
        "self",
        verbose_name=_("refers to central hospital"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="referring_hospitals",
        limit_choices_to={"kind": Kind.CENTRAL},
        help_text=_("The central hospital this hospital asks for consultations."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("hospital")
        verbose_name_plural = _("hospitals")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == self.Kind.CENTRAL and self.central_hospital_id is not None:
            raise ValidationError({"central_hospital": _("A central hospital does not refer to another one.")})
        if self.central_hospital is not None and self.central_hospital.kind != self.Kind.CENTRAL:
            raise ValidationError({"central_hospital": _("Choose a central hospital.")})


class Specialty(models.Model):
    """Editable reference data: cardiology, radiology, ultrasound and so on."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_ru = models.CharField(_("name (Russian)"), max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name = _("specialty")
        verbose_name_plural = _("specialties")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_ru if (get_language() or "").startswith("ru") else self.name_en


class Department(models.Model):
    hospital = models.ForeignKey(
        Hospital, verbose_name=_("hospital"), on_delete=models.CASCADE, related_name="departments"
    )
    name = models.CharField(_("name"), max_length=120)
    specialty = models.ForeignKey(
        Specialty, verbose_name=_("specialty"), on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["hospital", "name"]
        constraints = [models.UniqueConstraint(fields=["hospital", "name"], name="department_unique_name")]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self) -> str:
        return f"{self.name} ({self.hospital})"


class Staff(models.Model):
    """A user's membership of one hospital, with a role."""

    class Role(models.TextChoices):
        CLINICIAN = "clinician", _("Regional clinician")
        SPECIALIST = "specialist", _("Central specialist")
        HOSPITAL_ADMIN = "hospital_admin", _("Hospital admin")

    user = models.OneToOneField(User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="staff")
    hospital = models.ForeignKey(Hospital, verbose_name=_("hospital"), on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    department = models.ForeignKey(
        Department, verbose_name=_("department"), on_delete=models.SET_NULL, null=True, blank=True
    )
    specialties = models.ManyToManyField(Specialty, verbose_name=_("specialties"), blank=True)
    job_title = models.CharField(_("job title"), max_length=120, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    deactivated_at = models.DateTimeField(_("deactivated"), null=True, blank=True)

    class Meta:
        ordering = ["hospital", "user__last_name", "user__first_name"]
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")

    def __str__(self) -> str:
        return f"{self.user.get_full_name() or self.user.username} ({self.get_role_display()}, {self.hospital})"

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None and self.user.is_active

    @property
    def needs_second_factor(self) -> bool:
        return self.role in SECOND_FACTOR_ROLES


# Roles that confirm each sign-in with a TOTP code (platform admins do too).
SECOND_FACTOR_ROLES = frozenset({Staff.Role.SPECIALIST, Staff.Role.HOSPITAL_ADMIN})


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise PermissionError("Audit entries are append-only.")

    def delete(self) -> NoReturn:
        raise PermissionError("Audit entries are append-only.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("Audit entries are append-only.")

    def bulk_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("Audit entries are written through hospitals.audit, which chains them.")


class AuditEntry(models.Model):
    """One access to protected data. Append-only; each row's hash covers the previous row's hash.

    Actor and object are plain values rather than foreign keys, so that no later
    deletion elsewhere can rewrite or cascade into the trail.
    """

    class Action(models.TextChoices):
        VIEW = "view", _("view")
        LIST = "list", _("list")
        CREATE = "create", _("create")
        UPDATE = "update", _("update")
        DELETE = "delete", _("delete")
        EXPORT = "export", _("export")
        LOGIN = "login", _("login")
        LOGOUT = "logout", _("logout")
        LOGIN_FAILURE = "login_failure", _("login failure")
        PERMISSION_DENIED = "permission_denied", _("permission denied")

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("success")
        DENIED = "denied", _("denied")
        NOT_FOUND = "not_found", _("not found")
        INVALID = "invalid", _("invalid input")

    # Each entry belongs to one of the trail's chains (lanes, one head each), numbered and linked within it.
    lane = models.PositiveSmallIntegerField(_("chain"), default=1, db_default=1)
    seq = models.PositiveBigIntegerField(_("sequence"))
    at = models.DateTimeField(_("time (UTC)"), db_index=True)
    actor_id = models.BigIntegerField(_("user id"), null=True, blank=True, db_index=True)
    actor_username = models.CharField(_("user"), max_length=150, blank=True)
    actor_role = models.CharField(_("role"), max_length=20, blank=True)
    actor_hospital_id = models.BigIntegerField(_("hospital id"), null=True, blank=True, db_index=True)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices, db_index=True)
    object_type = models.CharField(_("object type"), max_length=60, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    patient_id = models.CharField(_("patient id"), max_length=64, blank=True, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]  # newest first: the order of writing, across the chains
        constraints = [models.UniqueConstraint(fields=["lane", "seq"], name="audit_seq_unique_per_chain")]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")

    def __str__(self) -> str:
        return f"#{self.number} {self.at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("Audit entries are append-only.")

    @property
    def number(self) -> str:
        return self.number_in(self.lane, self.seq)

    @staticmethod
    def number_in(lane: int, seq: int) -> str:
        """An entry's place in its chain: "17" in the first chain, "3.17" in chain 3."""
        return str(seq) if lane == 1 else f"{lane}.{seq}"


class _HeadQuerySet(models.QuerySet["AuditChainHead"]):
    def delete(self) -> NoReturn:
        raise PermissionError("The audit chain head is never removed.")


class AuditChainHead(models.Model):
    """One chain's last sequence number and hash (its id is the chain's number, AuditEntry.lane): locked
    while appending, and catches a removed last row."""

    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    objects = _HeadQuerySet.as_manager()

    def __str__(self) -> str:
        return f"audit chain {self.pk} head at #{self.last_seq}"

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("The audit chain head is never removed.")


class Notification(models.Model):
    """Something a person should look at. The message is an untranslated source text with its parameters,
    put into the reader's language when shown."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    message = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    url = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        return gettext(self.message) % self.params
