"""AI readers: models a platform admin registers, what they read on each image, and the specialist's verdict.

The platform ships no clinical model. A model is an ONNX file run on the CPU by the imaging pipeline for the
hospitals it is enabled for, on images whose modality (and body part, if set) it declares. Its reading is a
second opinion: each label's probability is shown with the model's name and version, and a specialist marks
it confirmed or rejected; those decisions are what a model is evaluated on.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from diagnostics.models.imaging import Instance

NOT_STANDALONE = _("Not for standalone diagnosis: a second reader whose every finding a physician confirms or rejects.")


class AIModel(models.Model):
    class Activation(models.TextChoices):
        NONE = "none", _("none: the outputs are probabilities")
        SIGMOID = "sigmoid", _("sigmoid: one independent probability per label")
        SOFTMAX = "softmax", _("softmax: the labels exclude one another")

    name = models.CharField(_("name"), max_length=100)
    version = models.CharField(_("version"), max_length=40)
    file = models.FileField(_("ONNX file"), max_length=200)
    sha256 = models.CharField(max_length=64, editable=False)
    # DICOM modality codes it reads (CR, DX, ...), and the body part (BodyPartExamined) if it reads only one.
    modalities = models.CharField(_("modalities"), max_length=64, help_text=_("DICOM codes, comma-separated: CR, DX"))
    body_part = models.CharField(
        _("body part"), max_length=64, blank=True, help_text=_("As in Body Part Examined (CHEST); empty for any.")
    )
    input_width = models.PositiveSmallIntegerField(_("input width (pixels)"))
    input_height = models.PositiveSmallIntegerField(_("input height (pixels)"))
    input_channels = models.PositiveSmallIntegerField(_("input channels"), editable=False, default=1)
    # The image as displayed (VOI window, MONOCHROME1 inverted) is scaled to 0–1, then (x - mean) / std.
    mean = models.FloatField(_("normalisation mean"), default=0.0)
    std = models.FloatField(_("normalisation standard deviation"), default=1.0)
    activation = models.CharField(
        _("output activation"), max_length=10, choices=Activation.choices, default=Activation.NONE
    )
    # [{"label": "pneumonia", "threshold": 0.5}, ...] in the order of the model's first output.
    labels = models.JSONField(_("labels and thresholds"))
    has_heatmap = models.BooleanField(_("gives a heat map"), default=False, editable=False)
    intended_use = models.TextField(_("intended use"))
    disclaimer = models.TextField(_("statement shown with every reading"), default=NOT_STANDALONE)
    hospitals = models.ManyToManyField(
        "hospitals.Hospital",
        verbose_name=_("enabled for"),
        blank=True,
        related_name="+",
        help_text=_("It reads the images of these hospitals' patients only."),
    )
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name", "version"]
        verbose_name = _("AI model")
        verbose_name_plural = _("AI models")
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="ai_model_name_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def modality_list(self) -> list[str]:
        return [code.strip().upper() for code in self.modalities.split(",") if code.strip()]

    @property
    def label_names(self) -> list[str]:
        return [entry["label"] for entry in self.labels]


class AIReading(models.Model):
    """One model's reading of one image."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="ai_readings")
    # A model that has read images cannot be deleted (disable it instead): its readings are evaluated.
    model = models.ForeignKey(AIModel, verbose_name=_("AI model"), on_delete=models.PROTECT, related_name="readings")
    heatmap = models.CharField(max_length=200, blank=True)  # storage name of the overlay PNG
    seconds = models.FloatField(_("inference time (s)"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model__name", "pk"]
        verbose_name = _("AI reading")
        verbose_name_plural = _("AI readings")
        constraints = [models.UniqueConstraint(fields=["instance", "model"], name="ai_reading_once_per_model")]

    def __str__(self) -> str:
        return f"{self.model} on {self.instance}"


class AIFinding(models.Model):
    """One label of a reading, and the specialist's decision on it."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("not reviewed")
        CONFIRMED = "confirmed", _("confirmed")
        REJECTED = "rejected", _("rejected")

    reading = models.ForeignKey(AIReading, on_delete=models.CASCADE, related_name="findings")
    label = models.CharField(_("label"), max_length=100)
    probability = models.FloatField(_("probability"))
    threshold = models.FloatField(_("threshold"))
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["reading", "pk"]
        verbose_name = _("AI finding")
        verbose_name_plural = _("AI findings")

    def __str__(self) -> str:
        return f"{self.label} {self.probability:.2f}"

    @property
    def positive(self) -> bool:
        """Whether the model calls the label present (its probability reaches the threshold)."""
        return self.probability >= self.threshold
