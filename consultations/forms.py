"""Forms of the consultation pages."""

from datetime import date
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from consultations.models import Conclusion, Icd10Code, Urgency
from hospitals.forms import OtpTokenForm, validate_plain_text
from hospitals.models import Specialty, User
from hospitals.uploads import document_check
from patients.models import Patient


class ConsultationRequestForm(forms.Form):
    patient = forms.ModelChoiceField(label=_("Patient"), queryset=Patient.objects.none())
    urgency = forms.ChoiceField(label=_("Urgency"), choices=Urgency.choices, initial=Urgency.URGENT)
    specialty = forms.ModelChoiceField(label=_("Specialty"), queryset=Specialty.objects.all())
    question = forms.CharField(
        label=_("Clinical question"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        validators=[validate_plain_text],
    )
    condition = forms.CharField(
        label=_("Current condition"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        validators=[validate_plain_text],
    )

    def __init__(self, *args: Any, patients: QuerySet[Patient], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = patients  # type: ignore[attr-defined]


class MoveForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class MessageForm(forms.Form):
    body = forms.CharField(label=_("Message"), max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
    attachment = forms.FileField(label=_("Attachment (PDF, JPEG or PNG)"), required=False)

    def clean_attachment(self) -> UploadedFile | None:
        upload: UploadedFile | None = self.cleaned_data.get("attachment")
        return document_check(upload, max_bytes=settings.ATTACHMENT_MAX_BYTES) if upload is not None else None


class Icd10Input(forms.TextInput):
    """A text box that suggests ICD-10 codes as the specialist types a code or words of the title."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        listing = f"{name}-codes"
        box = super().render(name, value, {**(attrs or {}), "list": listing, "autocomplete": "off"}, renderer)
        options = format_html_join(
            "", '<option value="{}">{} {}</option>', ((c.code, c.code, c.title) for c in Icd10Code.objects.all())
        )
        return format_html('{}<datalist id="{}">{}</datalist>', box, listing, options)


class Icd10Field(forms.ModelChoiceField):
    """An ICD-10 code typed or picked from the suggestions: "i21.1" and "I21.1 Acute ..." both mean I21.1."""

    widget = Icd10Input
    default_error_messages = {
        "invalid_choice": _(
            "There is no ICD-10 code “%(value)s” in the list: type a code such as I21.1, "
            "or a word of the diagnosis, and pick a suggestion."
        ),
    }

    def to_python(self, value: Any) -> Icd10Code | None:
        code = str(value or "").strip().split(" ", 1)[0].upper()
        return super().to_python(code)

    def prepare_value(self, value: Any) -> Any:
        return value.pk if isinstance(value, Icd10Code) else value


class ConclusionForm(OtpTokenForm):
    findings = forms.CharField(label=_("Findings"), max_length=8000, widget=forms.Textarea(attrs={"rows": 5}))
    diagnosis = Icd10Field(label=_("Diagnosis (ICD-10)"), queryset=Icd10Code.objects.all())
    diagnosis_text = forms.CharField(label=_("Diagnosis in words"), max_length=500)
    recommendation = forms.ChoiceField(label=_("Recommendation"), choices=Conclusion.Recommendation.choices)
    plan = forms.CharField(label=_("Plan"), max_length=8000, widget=forms.Textarea(attrs={"rows": 4}))
    follow_up = forms.DateField(
        label=_("Follow-up date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    field_order = ["findings", "diagnosis", "diagnosis_text", "recommendation", "plan", "follow_up", "token"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["token"].label = _("Your six-digit code, to sign")
        self.fields["token"].widget.attrs.pop("autofocus", None)

    def clean_follow_up(self) -> date | None:
        follow_up: date | None = self.cleaned_data.get("follow_up")
        if follow_up is not None and follow_up < timezone.localdate():
            raise ValidationError(_("The follow-up date is in the past."), code="past")
        return follow_up


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.get_full_name() or obj.username} · {obj.staff.hospital}"


class CallGuestForm(forms.Form):
    user = StaffChoiceField(label=_("Invite into the call"), queryset=User.objects.none())

    def __init__(self, *args: Any, candidates: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["user"]
        assert isinstance(field, StaffChoiceField)
        field.queryset = candidates
