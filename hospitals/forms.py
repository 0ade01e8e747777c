"""Forms for the staff pages, sign-in second factor and audit search."""

import unicodedata
from typing import Any, cast

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from hospitals.models import AuditEntry, Department, Hospital, Specialty, Staff, User

_NAME_PUNCTUATION = set(" -.'’")


def validate_person_name(value: str) -> None:
    """Letters of any alphabet, spaces, hyphens, apostrophes and dots: no markup, no digits."""
    if any(not (unicodedata.category(ch).startswith("L") or ch in _NAME_PUNCTUATION) for ch in value):
        raise ValidationError(
            _("Use only letters, spaces, hyphens, apostrophes and dots in a name."), code="invalid_name"
        )


def validate_plain_text(value: str) -> None:
    if "<" in value or ">" in value:
        raise ValidationError(_("Remove the characters < and >."), code="markup")


class _StaffFields(forms.Form):
    first_name = forms.CharField(label=_("Given name"), max_length=150, validators=[validate_person_name])
    last_name = forms.CharField(label=_("Family name"), max_length=150, validators=[validate_person_name])
    role = forms.ChoiceField(label=_("Role"), choices=Staff.Role.choices)
    job_title = forms.CharField(label=_("Job title"), max_length=120, required=False, validators=[validate_plain_text])
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none(), required=False)
    specialties = forms.ModelMultipleChoiceField(
        label=_("Specialties"),
        queryset=Specialty.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, hospital: Hospital | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.home_hospital = hospital
        if hospital is not None:
            self._department_field.queryset = hospital.departments.all()

    @property
    def _department_field(self) -> forms.ModelChoiceField:
        return cast(forms.ModelChoiceField, self.fields["department"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        hospital = cleaned.get("hospital") or self.home_hospital
        if cleaned.get("role") == Staff.Role.SPECIALIST and hospital and hospital.kind != Hospital.Kind.CENTRAL:
            self.add_error("role", _("Central specialists work at a central hospital."))
        department = cleaned.get("department")
        if department is not None and hospital is not None and department.hospital_id != hospital.pk:
            self.add_error("department", _("Choose a department of this hospital."))
        return cleaned


class StaffCreateForm(_StaffFields):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text=_("Letters, digits and @ . + - _ only; used to sign in."),
    )
    email = forms.EmailField(label=_("Email"), required=False)
    hospital = forms.ModelChoiceField(label=_("Hospital"), queryset=Hospital.objects.filter(is_active=True))

    field_order = ["hospital", "username", "last_name", "first_name", "email", "role", "job_title"]

    def __init__(self, *args: Any, hospital: Hospital | None, **kwargs: Any) -> None:
        super().__init__(*args, hospital=hospital, **kwargs)
        if hospital is not None:
            # A hospital admin creates staff of their own hospital only.
            del self.fields["hospital"]
        else:
            self._department_field.queryset = Department.objects.select_related("hospital")

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError(_("This username is taken; choose another."), code="username_taken")
        return username


class StaffUpdateForm(_StaffFields):
    pass


class StaffSearchForm(forms.Form):
    q = forms.CharField(max_length=100, required=False)


class OtpTokenForm(forms.Form):
    token = forms.RegexField(
        label=_("Six-digit code"),
        regex=r"^\d{6}$",
        error_messages={"invalid": _("Enter the six digits your authenticator app shows.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class AuditFilterForm(forms.Form):
    user = forms.CharField(label=_("User"), max_length=150, required=False)
    patient = forms.CharField(label=_("Patient id"), max_length=64, required=False)
    action = forms.ChoiceField(label=_("Action"), choices=[("", _("any")), *AuditEntry.Action.choices], required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
