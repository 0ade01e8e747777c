"""Patients of a home hospital and their consent to telemedicine."""

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from patients.validators import format_snils, normalize_name, validate_oms_policy, validate_snils


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", _("female")
        MALE = "male", _("male")

    hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("home hospital"), on_delete=models.PROTECT, related_name="patients"
    )
    record_number = models.CharField(_("hospital record number"), max_length=40)
    family_name = models.CharField(_("family name"), max_length=100)
    given_name = models.CharField(_("given name"), max_length=100)
    patronymic = models.CharField(_("patronymic"), max_length=100, blank=True)
    sex = models.CharField(_("sex"), max_length=6, choices=Sex.choices)
    birth_date = models.DateField(_("birth date"))
    snils = models.CharField(_("SNILS"), max_length=11, blank=True, validators=[validate_snils], db_index=True)
    oms_policy = models.CharField(_("OMS policy number"), max_length=16, blank=True, validators=[validate_oms_policy])
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    notes = models.TextField(_("notes"), max_length=2000, blank=True)
    # Lower-case, ё→е, for search and duplicate checks; kept in step by save().
    search_name = models.CharField(max_length=310, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # search_name is family, given and patronymic names in one string, so this is alphabetical (ё with е)
        # and the (hospital, search_name) index hands out a search's first page without sorting every match.
        ordering = ["search_name", "birth_date", "pk"]
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints = [
            models.UniqueConstraint(fields=["hospital", "record_number"], name="patient_record_number_unique"),
        ]
        indexes = [
            models.Index(fields=["hospital", "search_name"], name="patient_hospital_name"),
            models.Index(fields=["hospital", "birth_date"], name="patient_hospital_birth"),
            # Record numbers are matched without regard to case, in one hospital (an upload) or in all the
            # user may see (a DICOMweb search by PatientID, where the scope is a subquery the planner cannot
            # bring to this table): the record number leads.
            models.Index(Upper("record_number"), "hospital", name="patient_record_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.birth_date:%d.%m.%Y}, {self.record_number})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.search_name = normalize_name(self.family_name, self.given_name, self.patronymic)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "search_name"}
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.family_name, self.given_name, self.patronymic) if part)

    @property
    def snils_display(self) -> str:
        return format_snils(self.snils)


# What a clinician types about a patient: the form, the API and the services all take these.
PATIENT_FIELDS = (
    "record_number",
    "family_name",
    "given_name",
    "patronymic",
    "sex",
    "birth_date",
    "snils",
    "oms_policy",
    "phone",
    "address",
    "notes",
)


class Consent(models.Model):
    """The patient's consent to a remote consultation and to sharing their data with the central hospital."""

    patient = models.ForeignKey(Patient, verbose_name=_("patient"), on_delete=models.CASCADE, related_name="consents")
    telemedicine = models.BooleanField(_("consents to a remote consultation"))
    data_sharing = models.BooleanField(_("consents to sharing data with the central hospital"))
    form_scan = models.FileField(_("signed form (PDF, JPEG or PNG)"), upload_to="consents/%Y/%m/", blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recorded by"), on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    class Meta:
        ordering = ["-recorded_at"]
        get_latest_by = "recorded_at"
        verbose_name = _("consent")
        verbose_name_plural = _("consents")

    def __str__(self) -> str:
        return f"{self.patient} @ {self.recorded_at:%Y-%m-%d}"

    @property
    def is_valid(self) -> bool:
        """Both consents given and not withdrawn: a consultation may be requested."""
        return self.telemedicine and self.data_sharing and self.withdrawn_at is None
