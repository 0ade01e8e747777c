"""The platform admin's form for an AI model: its file is checked (loaded and run once) before it is kept."""

import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from diagnostics import ai
from diagnostics.models import AIModel

MODALITY = re.compile(r"^[A-Z]{2,4}$")
LABEL_LINE = re.compile(r"^(?P<label>.+?)\s+(?P<threshold>[0-9]*[.,]?[0-9]+)$")


class AIModelForm(forms.ModelForm):
    upload = forms.FileField(
        label=gettext_lazy("ONNX file"),
        required=False,
        help_text=gettext_lazy("The model, exported to ONNX. Required for a new model; leave empty to keep the file."),
    )
    labels_text = forms.CharField(
        label=gettext_lazy("Labels and thresholds"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy(
            "One line per score of the model's first output, in its order: the label, then the probability "
            "from which the finding is called present, e.g. “pneumonia 0.5”."
        ),
    )

    class Meta:
        model = AIModel
        fields = [
            "name",
            "version",
            "modalities",
            "body_part",
            "input_width",
            "input_height",
            "mean",
            "std",
            "activation",
            "intended_use",
            "disclaimer",
            "hospitals",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["labels_text"] = "\n".join(f"{e['label']} {e['threshold']}" for e in self.instance.labels)
        self.inspected: ai.ModelShape | None = None
        self.upload_data: bytes | None = None

    def clean_modalities(self) -> str:
        codes = [code.strip().upper() for code in self.cleaned_data["modalities"].split(",") if code.strip()]
        wrong = [code for code in codes if not MODALITY.match(code)]
        if not codes or wrong:
            raise ValidationError(
                _("List DICOM modality codes separated by commas, such as “CR, DX”; not understood: %(wrong)s.")
                % {"wrong": ", ".join(wrong) or "—"}
            )
        return ", ".join(codes)

    def clean_body_part(self) -> str:
        return self.cleaned_data["body_part"].strip().upper()

    def clean_std(self) -> float:
        std: float = self.cleaned_data["std"]
        if std <= 0:
            raise ValidationError(_("The standard deviation divides the pixel values: it must be above zero."))
        return std

    def clean_labels_text(self) -> list[dict[str, Any]]:
        labels: list[dict[str, Any]] = []
        for number, line in enumerate(self.cleaned_data["labels_text"].splitlines(), start=1):
            if not line.strip():
                continue
            match = LABEL_LINE.match(line.strip())
            threshold = float(match["threshold"].replace(",", ".")) if match else -1.0
            if match is None or not 0 <= threshold <= 1:
                raise ValidationError(
                    _("Line %(line)s: write a label, a space and a threshold between 0 and 1, e.g. “nodule 0.6”.")
                    % {"line": number}
                )
            labels.append({"label": match["label"].strip()[:100], "threshold": threshold})
        if not labels:
            raise ValidationError(_("List at least one label."))
        if len({entry["label"] for entry in labels}) != len(labels):
            raise ValidationError(_("Each label may be listed once."))
        return labels

    def clean_upload(self) -> Any:
        upload = self.cleaned_data.get("upload")
        if upload is None and not self.instance.pk:
            raise ValidationError(_("Choose the model's ONNX file."))
        if upload is not None and upload.size > settings.AI_MODEL_MAX_BYTES:
            raise ValidationError(
                _("The file is %(size)s MB; the limit is %(limit)s MB (AI_MODEL_MAX_BYTES).")
                % {"size": upload.size // 2**20, "limit": settings.AI_MODEL_MAX_BYTES // 2**20}
            )
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        needed = ("input_width", "input_height", "labels_text")
        if self.errors or any(name not in data for name in needed):
            return data
        upload = data.get("upload")
        if upload is None and self.instance.pk and not set(self.changed_data) & set(needed):
            return data  # the file and its shape stand as checked
        if upload is not None:
            self.upload_data = upload.read()
            content = self.upload_data
        else:
            with self.instance.file.open("rb") as stored:  # the size or labels changed: check the kept file
                content = stored.read()
        try:
            self.inspected = ai.model_inspect(
                data=content,
                width=data["input_width"],
                height=data["input_height"],
                labels=len(data["labels_text"]),
            )
        except ValidationError as error:
            self.add_error("upload" if upload is not None else None, error)
        return data

    def save(self, commit: bool = True) -> AIModel:
        model: AIModel = super().save(commit=False)
        model.labels = self.cleaned_data["labels_text"]
        if self.upload_data is not None:
            model.file.name, model.sha256 = ai.model_file_save(self.upload_data)
        if self.inspected is not None:
            model.input_channels = self.inspected.channels
            model.has_heatmap = self.inspected.has_heatmap
            model.last_error, model.last_error_at = "", None  # checked again just now
        if commit:
            model.save()
            self.save_m2m()
        return model
