"""The upload form of the Recordings card: a kind, one or more files, and what a CSV of leads cannot say."""

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from diagnostics.models import Recording

ACCEPT = ".wav,.flac,.ogg,.oga,.opus,.mp3,.hea,.dat,.zip,.csv,.txt"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Any number of files under one name; each one is checked by the service, one refusal costing only it."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(file, initial) for file in data] if data else [single(None, initial)]
        return [single(data, initial)]


class RecordingUploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=Recording.Kind.choices,
        error_messages={"required": _("Kind: choose heart sound, lung sound or ECG.")},
    )
    file = MultipleFileField(
        label=_("Files"),
        help_text=_(
            "Sounds as WAV, FLAC, OGG or MP3. An ECG as a WFDB record (the .hea file with its .dat, or both in "
            "one ZIP archive) or a CSV with a header row naming the leads, in millivolts (“II (uV)” for "
            "microvolts)."
        ),
        error_messages={
            "required": _("Files: choose one or more recordings to upload."),
            "empty": _("Files: the file is empty."),
        },
    )
    # Any number is taken here: the service says, per CSV, what is wrong with it, so the batch's other
    # files are stored meanwhile.
    sample_rate = forms.FloatField(
        label=_("Sampling rate (Hz)"),
        required=False,
        help_text=_("For a CSV of ECG leads without a time column, e.g. 500."),
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
        error_messages={"invalid": _("Sampling rate (Hz): enter a number, e.g. 500.")},
    )
    recorded_at = forms.DateTimeField(
        label=_("Recorded at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M"],
        error_messages={"invalid": _("Recorded at: enter a date and time.")},
    )
