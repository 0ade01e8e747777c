"""Patient and consent forms: every refusal says what to fix."""

from datetime import date
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from hospitals.forms import validate_person_name, validate_plain_text
from hospitals.models import Hospital
from hospitals.uploads import document_check
from patients.models import PATIENT_FIELDS, Patient
from patients.selectors import patient_likely_duplicates
from patients.validators import snils_digits, validate_snils

OLDEST_AGE_YEARS = 130


class PatientForm(forms.ModelForm):
    confirm_not_duplicate = forms.BooleanField(label=_("This is a different person: register anyway"), required=False)

    class Meta:
        model = Patient
        fields = list(PATIENT_FIELDS)
        widgets = {
            "birth_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "notes": forms.Textarea(attrs={"rows": 3}),
            "snils": forms.TextInput(attrs={"placeholder": "112-233-445 95", "inputmode": "numeric"}),
        }

    def __init__(self, *args: Any, hospital: Hospital, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hospital = hospital
        self.instance.hospital = hospital
        # People type SNILS with hyphens and a space; clean_snils keeps the 11 digits.
        self.fields["snils"] = forms.CharField(
            label=self.fields["snils"].label, required=False, max_length=14, widget=self.fields["snils"].widget
        )
        for name in ("family_name", "given_name", "patronymic"):
            self.fields[name].validators.append(validate_person_name)
        for name in ("record_number", "phone", "address", "notes"):
            self.fields[name].validators.append(validate_plain_text)

    def clean_snils(self) -> str:
        digits = snils_digits(self.cleaned_data["snils"])
        if digits:
            validate_snils(digits)
        return digits

    def clean_birth_date(self) -> date:
        born: date = self.cleaned_data["birth_date"]
        today = timezone.localdate()
        if born > today:
            raise ValidationError(_("The birth date is in the future: check the year."), code="future")
        if today.year - born.year > OLDEST_AGE_YEARS:
            raise ValidationError(_("The birth date is more than 130 years ago: check the year."), code="too_old")
        return born

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.duplicates: list[Patient] = []
        if self.instance.pk is None and not self.errors and not cleaned.get("confirm_not_duplicate"):
            self.duplicates = list(
                patient_likely_duplicates(
                    hospital_id=self.hospital.pk,
                    snils=cleaned.get("snils", ""),
                    family_name=cleaned.get("family_name", ""),
                    given_name=cleaned.get("given_name", ""),
                    patronymic=cleaned.get("patronymic", ""),
                    birth_date=cleaned.get("birth_date"),
                )
            )
            if self.duplicates:
                raise ValidationError(
                    _("This patient may already be registered: same SNILS, or same full name and birth date."),
                    code="likely_duplicate",
                )
        return cleaned

    @property
    def is_likely_duplicate(self) -> bool:
        return self.has_error(NON_FIELD_ERRORS, "likely_duplicate")

    def clean_record_number(self) -> str:
        number: str = self.cleaned_data["record_number"].strip()
        clash = Patient.objects.filter(hospital=self.hospital, record_number=number).exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(
                _("Record number %(number)s already belongs to another patient of this hospital."),
                code="record_number_taken",
                params={"number": number},
            )
        return number


class ConsentForm(forms.Form):
    telemedicine = forms.BooleanField(label=_("The patient agrees to a remote consultation"), required=False)
    data_sharing = forms.BooleanField(
        label=_("The patient agrees that their data are shared with the central hospital"), required=False
    )
    form_scan = forms.FileField(label=_("Signed consent form (PDF, JPEG or PNG)"), required=False)

    def clean_form_scan(self) -> UploadedFile | None:
        scan: UploadedFile | None = self.cleaned_data.get("form_scan")
        return document_check(scan, max_bytes=settings.CONSENT_SCAN_MAX_BYTES) if scan is not None else None
