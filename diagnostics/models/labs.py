"""Lab results: coded observations with their units, reference ranges and flags, and the messages they came in.

The reference data (LabTest, LabUnit, ReferenceRange) is the platform admins' to edit: which analytes the
platform knows, by LOINC code and the names devices use for them, the unit each is kept in (UCUM) and the
factors from the units devices send, the normal ranges by sex and age, and the critical limits that alert.
An observation always keeps what was sent (code, name, value, unit, range, flag) beside what it became,
so a person can check the mapping, and one the platform could not place waits in the review queue.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class LabTest(models.Model):
    """An analyte the platform knows, in the unit it is kept and compared in."""

    loinc = models.CharField(_("LOINC code"), max_length=10, unique=True)
    name = models.CharField(_("name"), max_length=120)
    short_name = models.CharField(_("short name"), max_length=24, help_text=_("As a results table heads it."))
    unit = models.CharField(_("unit (UCUM)"), max_length=24, blank=True, help_text=_("Empty for a ratio or index."))
    # Other LOINC codes (the same analyte in another unit) and the local codes and names that analysers
    # send, compared without regard to case, spaces and punctuation.
    aliases = models.JSONField(_("other codes and names"), default=list, blank=True)
    decimals = models.PositiveSmallIntegerField(_("decimals shown"), default=1)
    critical_low = models.DecimalField(
        _("critical below"), max_digits=12, decimal_places=4, null=True, blank=True, help_text=_("In the unit above.")
    )
    critical_high = models.DecimalField(
        _("critical above"), max_digits=12, decimal_places=4, null=True, blank=True, help_text=_("In the unit above.")
    )
    trend = models.BooleanField(_("trend chart"), default=False, help_text=_("Shown as a chart over time."))
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("lab test")
        verbose_name_plural = _("lab tests")

    def __str__(self) -> str:
        return f"{self.name} ({self.loinc})"


class LabUnit(models.Model):
    """A unit a device may send for a test, and how to convert it: kept = sent × factor + offset."""

    test = models.ForeignKey(LabTest, verbose_name=_("test"), on_delete=models.CASCADE, related_name="units")
    unit = models.CharField(_("unit as sent"), max_length=24)
    factor = models.DecimalField(_("factor"), max_digits=14, decimal_places=8, default=Decimal(1))
    offset = models.DecimalField(_("offset"), max_digits=12, decimal_places=6, default=Decimal(0))

    class Meta:
        verbose_name = _("unit conversion")
        verbose_name_plural = _("unit conversions")
        constraints = [models.UniqueConstraint(fields=["test", "unit"], name="lab_unit_unique")]

    def __str__(self) -> str:
        return f"{self.unit} → {self.test.unit}"


class ReferenceRange(models.Model):
    """The normal range of a test for a sex and an age band (years, the upper bound excluded)."""

    class Sex(models.TextChoices):
        ANY = "", _("any")
        MALE = "male", _("male")
        FEMALE = "female", _("female")

    test = models.ForeignKey(LabTest, verbose_name=_("test"), on_delete=models.CASCADE, related_name="ranges")
    sex = models.CharField(_("sex"), max_length=6, choices=Sex.choices, blank=True, default=Sex.ANY)
    age_from = models.PositiveSmallIntegerField(_("from age"), default=0)
    age_to = models.PositiveSmallIntegerField(_("to age (not included)"), null=True, blank=True)
    low = models.DecimalField(_("low"), max_digits=12, decimal_places=4, null=True, blank=True)
    high = models.DecimalField(_("high"), max_digits=12, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["test", "sex", "age_from"]
        verbose_name = _("reference range")
        verbose_name_plural = _("reference ranges")

    def __str__(self) -> str:
        return f"{self.test.short_name} {self.sex or '*'} {self.age_from}–{self.age_to or ''}: {self.low}–{self.high}"


class Source(models.TextChoices):
    HL7 = "hl7", _("HL7 v2 message")
    JSON = "json", _("device reading")
    FHIR = "fhir", _("FHIR Observation")
    CSV = "csv", _("CSV import")
    MANUAL = "manual", _("entered by hand")


class LabMessage(models.Model):
    """What arrived, exactly as it arrived (kept for audit), and what became of it.

    `sender` and `control_id` make a retried message recognisable: the same device (or person) sending the
    same message control id again gets the first answer, and nothing is stored twice."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        DONE = "done", _("stored")
        PARTIAL = "partial", _("stored, with errors")
        REJECTED = "rejected", _("rejected")

    hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("hospital"), on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    sender = models.CharField(_("sender"), max_length=40, help_text=_("device:<id> or user:<id>"))
    control_id = models.CharField(_("message control ID"), max_length=64)
    # A plain id rather than a key to devices.Device: diagnostics does not know the devices app.
    device_id = models.PositiveIntegerField(_("device"), null=True, blank=True)
    raw = models.TextField(_("message as received"))
    # A queued message's results as its way in read them when it came (labs.reading_json), so the worker
    # stores them without reading the raw message again; None for a message kept before this was.
    reading = models.JSONField(_("results as read"), null=True, blank=True, editable=False)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    # [{"where": "OBX 3", "field": "OBX-5", "reason": "..."}], in the order met
    errors = models.JSONField(_("errors"), default=list, blank=True)
    stored = models.PositiveIntegerField(_("observations stored"), default=0)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("lab message")
        verbose_name_plural = _("lab messages")
        constraints = [
            models.UniqueConstraint(fields=["hospital", "sender", "control_id"], name="lab_message_once"),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="lab_message_status")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.control_id}"


class Observation(models.Model):
    """One lab result of a patient: as sent, and as the platform understood it."""

    class Flag(models.TextChoices):
        NORMAL = "normal", _("normal")
        LOW = "low", _("low")
        HIGH = "high", _("high")
        CRITICAL_LOW = "critical_low", _("critically low")
        CRITICAL_HIGH = "critical_high", _("critically high")
        NONE = "", _("no range")

    class Review(models.TextChoices):
        NONE = "", _("none")
        PATIENT = "patient", _("no patient with this record number")
        ANALYTE = "analyte", _("unknown test")
        UNIT = "unit", _("unknown unit")

    CRITICAL = (Flag.CRITICAL_LOW, Flag.CRITICAL_HIGH)

    hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("hospital"), on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient",
        verbose_name=_("patient"),
        on_delete=models.PROTECT,
        related_name="observations",
        null=True,
        blank=True,
    )
    message = models.ForeignKey(
        LabMessage, verbose_name=_("message"), on_delete=models.PROTECT, related_name="observations"
    )
    test = models.ForeignKey(
        LabTest, verbose_name=_("test"), on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    # As sent.
    record_number = models.CharField(_("record number as sent"), max_length=40, blank=True)
    code_sent = models.CharField(_("code as sent"), max_length=40, blank=True)
    name_sent = models.CharField(_("name as sent"), max_length=120, blank=True)
    value_sent = models.CharField(_("value as sent"), max_length=64)
    unit_sent = models.CharField(_("unit as sent"), max_length=24, blank=True)
    range_sent = models.CharField(_("reference range as sent"), max_length=60, blank=True)
    flag_sent = models.CharField(_("flag as sent"), max_length=8, blank=True)
    # As understood: the value in the test's unit, compared with the range for the patient's sex and age.
    value = models.DecimalField(_("value"), max_digits=16, decimal_places=6, null=True, blank=True)
    comparator = models.CharField(_("comparator"), max_length=2, blank=True)  # "<0.01": below what can be measured
    unit = models.CharField(_("unit"), max_length=24, blank=True)
    low = models.DecimalField(_("reference low"), max_digits=12, decimal_places=4, null=True, blank=True)
    high = models.DecimalField(_("reference high"), max_digits=12, decimal_places=4, null=True, blank=True)
    flag = models.CharField(_("flag"), max_length=13, choices=Flag.choices, blank=True)
    review = models.CharField(_("needs review"), max_length=8, choices=Review.choices, blank=True)
    observed_at = models.DateTimeField(_("taken at"))
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    # Sender, record number, test and time: the same result sent again is recognised and stored once.
    key = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-observed_at", "-pk"]
        verbose_name = _("lab result")
        verbose_name_plural = _("lab results")
        constraints = [models.UniqueConstraint(fields=["hospital", "key"], name="observation_once")]
        indexes = [
            models.Index(fields=["patient", "test", "-observed_at"], name="observation_patient_test"),
            models.Index(fields=["hospital", "-received_at"], condition=~Q(review=""), name="observation_review_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.name_sent or self.code_sent} {self.value_sent} {self.unit_sent}"

    @property
    def is_critical(self) -> bool:
        return self.flag in self.CRITICAL


class LabAlert(models.Model):
    """A critical result, shown live to the patient's hospital and to the specialists consulted about the
    patient until someone on each side acknowledges it."""

    observation = models.OneToOneField(
        Observation, verbose_name=_("result"), on_delete=models.PROTECT, related_name="alert"
    )
    hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("hospital"), on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", verbose_name=_("patient"), on_delete=models.PROTECT, related_name="lab_alerts"
    )
    created_at = models.DateTimeField(_("raised"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("critical result alert")
        verbose_name_plural = _("critical result alerts")

    def __str__(self) -> str:
        return f"{self.observation}"


class LabAlertAck(models.Model):
    """Someone at a hospital has seen a critical result. Each side acknowledges on its own: the patient's
    hospital once, and each hospital consulted about the patient once, so one side's click silences only
    its own screens."""

    alert = models.ForeignKey(LabAlert, verbose_name=_("alert"), on_delete=models.CASCADE, related_name="acks")
    hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("hospital"), on_delete=models.PROTECT, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("acknowledged by"), on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(_("acknowledged"), auto_now_add=True)

    class Meta:
        ordering = ["at"]
        verbose_name = _("critical result acknowledgement")
        verbose_name_plural = _("critical result acknowledgements")
        constraints = [models.UniqueConstraint(fields=["alert", "hospital"], name="lab_alert_ack_once")]

    def __str__(self) -> str:
        return f"{self.alert_id} @ {self.hospital_id}"
