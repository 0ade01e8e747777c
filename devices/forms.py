"""Forms of the device pages."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from devices.models import Device
from hospitals.forms import validate_plain_text
from hospitals.models import Hospital

DETAIL_FIELDS = ["name", "kind", "vendor", "model_name", "serial", "location", "ae_title", "hl7_sender"]
_TEXT_FIELDS = ("name", "vendor", "model_name", "serial", "location")


class DeviceForm(forms.ModelForm):
    """A device's details. The form only checks them; the services write (devices.services)."""

    class Meta:
        model = Device
        fields = DETAIL_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in _TEXT_FIELDS:
            self.fields[name].validators.append(validate_plain_text)

    def clean_ae_title(self) -> str:
        # Said on the field rather than at the top of the form, which is where the model's constraint puts it.
        ae_title: str = self.cleaned_data["ae_title"]
        if ae_title and Device.objects.filter(ae_title=ae_title).exclude(pk=self.instance.pk).exists():
            raise ValidationError(
                _("Another device already has this AE title; give each modality its own."), code="ae_title_taken"
            )
        return ae_title

    def clean_hl7_sender(self) -> str:
        hl7_sender: str = self.cleaned_data["hl7_sender"]
        if hl7_sender and Device.objects.filter(hl7_sender=hl7_sender).exclude(pk=self.instance.pk).exists():
            raise ValidationError(
                _(
                    "Another device already sends as this HL7 sender; add ^ and the facility (MSH-4) to tell "
                    "them apart."
                ),
                code="hl7_sender_taken",
            )
        return hl7_sender


class DeviceCreateForm(DeviceForm):
    hospital = forms.ModelChoiceField(label=_("Hospital"), queryset=Hospital.objects.filter(is_active=True))

    class Meta(DeviceForm.Meta):
        fields = ["hospital", *DETAIL_FIELDS]

    def __init__(self, *args: Any, choose_hospital: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not choose_hospital:
            # A hospital admin registers devices of their own hospital only.
            del self.fields["hospital"]


class DeviceSearchForm(forms.Form):
    q = forms.CharField(max_length=100, required=False)
