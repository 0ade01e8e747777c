"""Devices of a hospital: modalities and analysers that send results to the platform by themselves.

A DICOM modality is known by its AE title. An association is accepted only from the AE title of an active
device of an active hospital (the allow-list), and the images it sends are filed under that hospital.
Devices that speak HTTP send a token of their own (`DeviceToken`): only its hash is kept.
"""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def validate_ae_title(value: str) -> None:
    """A DICOM AE title (PS3.5, VR AE): 1–16 ASCII characters, no backslash, no control characters, and
    not only spaces (leading and trailing spaces are not significant, so they are not kept)."""
    if value != value.strip(" "):
        raise ValidationError(_("An AE title has no spaces at its start or end."), code="ae_title_spaces")
    if not value or len(value) > 16:
        raise ValidationError(_("An AE title has 1 to 16 characters."), code="ae_title_length")
    if any(not (" " <= char <= "~") or char == "\\" for char in value):
        raise ValidationError(
            _("An AE title uses only Latin letters, digits, spaces and punctuation other than “\\”, e.g. TULA_US1."),
            code="ae_title_characters",
        )


def validate_hl7_sender(value: str) -> None:
    """MSH-3, optionally ^MSH-4: printable ASCII without the other HL7 delimiters."""
    application, _caret, facility = value.partition("^")
    if not application or len(value) > 60 or "^" in facility:
        raise ValidationError(
            _("Write the analyser's sending application (MSH-3), optionally followed by ^ and its facility (MSH-4)."),
            code="hl7_sender_form",
        )
    if any(not (" " < char <= "~") or char in "|~\\&" for char in value):
        raise ValidationError(
            _(
                "An HL7 sender uses only Latin letters, digits and punctuation other than | ~ \\ &, "
                "e.g. BC5150^TULA_LAB."
            ),
            code="hl7_sender_characters",
        )


class Device(models.Model):
    class Kind(models.TextChoices):
        ULTRASOUND = "ultrasound", _("ultrasound scanner")
        XRAY = "x-ray", _("X-ray unit")
        CT = "ct", _("CT scanner")
        LAB_ANALYSER = "lab_analyser", _("lab analyser")
        GLUCOSE_METER = "glucose_meter", _("glucose meter")
        STETHOSCOPE = "stethoscope", _("digital stethoscope")
        ECG = "ecg", _("ECG recorder")
        OTHER = "other", _("other")

    hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("hospital"), on_delete=models.PROTECT, related_name="devices"
    )
    name = models.CharField(_("name"), max_length=120, help_text=_("As staff know it, e.g. “Portable ultrasound 1”."))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # Empty for a device that does not speak DICOM (a glucose meter); unique when set.
    ae_title = models.CharField(
        _("DICOM AE title"),
        max_length=16,
        blank=True,
        validators=[validate_ae_title],
        help_text=_(
            "The device's own (calling) AE title, as set on the modality. Only active devices may send images, "
            "and their images are filed under this device's hospital."
        ),
    )
    # How an analyser that speaks MLLP (no tokens) is recognised: MSH-3 or MSH-3^MSH-4 of its messages.
    hl7_sender = models.CharField(
        _("HL7 sender"),
        max_length=60,
        blank=True,
        validators=[validate_hl7_sender],
        help_text=_(
            "For an analyser that sends HL7 over MLLP: its sending application (MSH-3), and ^ its facility "
            "(MSH-4) when the application name alone is not unique, e.g. “BC5150^TULA_LAB”. Only active "
            "devices may send, and their results are filed under this device's hospital."
        ),
    )
    vendor = models.CharField(_("vendor"), max_length=120, blank=True, help_text=_("e.g. “Mindray”."))
    model_name = models.CharField(_("model"), max_length=120, blank=True, help_text=_("e.g. “BC-5150”."))
    serial = models.CharField(_("serial number"), max_length=120, blank=True)
    location = models.CharField(
        _("location"),
        max_length=120,
        blank=True,
        help_text=_("Where the device is kept, e.g. “Ward 3”, “Tula-1 station” or “Train 002, car 7”."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["hospital", "name"]
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        constraints = [
            models.UniqueConstraint(
                fields=["ae_title"],
                condition=~Q(ae_title=""),
                name="device_ae_title_unique",
                violation_error_message=_("Another device already has this AE title."),
            ),
            models.UniqueConstraint(
                fields=["hl7_sender"],
                condition=~Q(hl7_sender=""),
                name="device_hl7_sender_unique",
                violation_error_message=_("Another device already has this HL7 sender."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title})" if self.ae_title else self.name


# A token reads mhd_<prefix>_<secret>: recognisable in a device's configuration, a log or a leak scanner.
TOKEN_SCHEME = "mhd"  # noqa: S105 - a label, not a secret


def token_digest(token: str) -> str:
    """The hash kept of a device token. A plain SHA-256 is enough for 256 random bits (nothing to guess, so
    no salt or slow hash), and unlike an HMAC keyed by SECRET_KEY it survives a rotation of that key."""
    return hashlib.sha256(token.encode()).hexdigest()


class DeviceToken(models.Model):
    """A device's credential for the API. The token itself is shown once, when issued; the platform keeps
    its public prefix (to find the row) and its hash (to check it)."""

    device = models.ForeignKey(Device, verbose_name=_("device"), on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    digest = models.CharField(_("hash"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("issued"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("issued by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("device token")
        verbose_name_plural = _("device tokens")

    def __str__(self) -> str:
        return f"{TOKEN_SCHEME}_{self.prefix}_…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
