"""Imaging results: DICOM studies, series and instances indexed from their headers.

An instance's file is stored once under a path made from the SHA-256 of its bytes (never from a UID or a
client's file name), through Django's storage API, so S3-compatible storage works unchanged.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Study(models.Model):
    """One imaging examination of a patient, as the modality described it."""

    hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("hospital"), on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", verbose_name=_("patient"), on_delete=models.PROTECT, related_name="studies"
    )
    study_instance_uid = models.CharField(_("Study Instance UID"), max_length=64)
    study_date = models.DateField(_("study date"), null=True, blank=True)
    study_time = models.CharField(_("study time"), max_length=16, blank=True)
    accession_number = models.CharField(_("accession number"), max_length=16, blank=True)
    study_id = models.CharField(_("study ID"), max_length=16, blank=True)
    description = models.CharField(_("description"), max_length=64, blank=True)
    referring_physician = models.CharField(_("referring physician"), max_length=64, blank=True)
    # As the header names the patient: shown beside the platform's record, so a mismatch is visible.
    dicom_patient_name = models.CharField(_("patient name in the images"), max_length=64, blank=True)
    dicom_patient_id = models.CharField(_("patient ID in the images"), max_length=64, blank=True)
    dicom_birth_date = models.CharField(_("birth date in the images"), max_length=8, blank=True)
    dicom_sex = models.CharField(_("sex in the images"), max_length=16, blank=True)
    modalities = models.CharField(_("modalities"), max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-study_date", "-created_at", "pk"]
        verbose_name = _("imaging study")
        verbose_name_plural = _("imaging studies")
        constraints = [
            models.UniqueConstraint(fields=["hospital", "study_instance_uid"], name="study_uid_unique_per_hospital")
        ]
        indexes = [
            models.Index(fields=["patient", "study_date"], name="study_patient_date"),
            models.Index(fields=["hospital", "study_date"], name="study_hospital_date"),
            # The order of Meta.ordering and of QIDO's answers: a search's first page comes off the index.
            models.Index(fields=["-study_date", "-created_at", "id"], name="study_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.modalities or '?'} {self.study_date or ''} {self.description}".strip()


class Series(models.Model):
    study = models.ForeignKey(Study, verbose_name=_("study"), on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(_("Series Instance UID"), max_length=64)
    modality = models.CharField(_("modality"), max_length=16, blank=True)
    body_part = models.CharField(_("body part"), max_length=64, blank=True)
    description = models.CharField(_("description"), max_length=64, blank=True)
    number = models.IntegerField(_("series number"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number", "pk"]
        verbose_name = _("series")
        verbose_name_plural = _("series")
        constraints = [
            models.UniqueConstraint(fields=["study", "series_instance_uid"], name="series_uid_unique_per_study")
        ]

    def __str__(self) -> str:
        return f"{self.modality} {self.number or ''} {self.description}".strip()


class Instance(models.Model):
    """One DICOM object (an image, or a multi-frame cine loop) and where the pipeline is with it."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        PROCESSING = "processing", _("processing")
        READY = "ready", _("ready")
        FAILED = "failed", _("failed")

    class Source(models.TextChoices):
        BROWSER = "browser", _("browser upload")
        STOW = "stow", _("DICOMweb STOW-RS")
        C_STORE = "c-store", _("DICOM C-STORE")

    series = models.ForeignKey(Series, verbose_name=_("series"), on_delete=models.CASCADE, related_name="instances")
    # Copied from the study, so one constraint keeps a SOP Instance UID unique within a hospital. That
    # constraint's index, hospital first, also serves lookups by hospital: no index of the field's own.
    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.PROTECT, related_name="+", db_index=False)
    sop_instance_uid = models.CharField(_("SOP Instance UID"), max_length=64)
    sop_class_uid = models.CharField(_("SOP Class UID"), max_length=64)
    number = models.IntegerField(_("instance number"), null=True, blank=True)
    rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    columns = models.PositiveIntegerField(_("columns"), null=True, blank=True)
    frames = models.PositiveIntegerField(_("frames"), default=1)
    transfer_syntax_uid = models.CharField(_("transfer syntax"), max_length=64)
    photometric = models.CharField(_("photometric interpretation"), max_length=16, blank=True)
    # Millimetres per pixel (row, column), from Pixel Spacing, Imager Pixel Spacing or the ultrasound
    # region calibration; empty when the image carries no calibration (no measurement is offered then).
    pixel_spacing = models.CharField(_("pixel spacing (mm)"), max_length=64, blank=True)
    sha256 = models.CharField(max_length=64)  # the file's name; never looked up, so not indexed
    file = models.FileField(max_length=200)
    size = models.PositiveBigIntegerField(_("size in bytes"))
    source = models.CharField(_("arrived by"), max_length=10, choices=Source.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.QUEUED)
    error = models.CharField(_("reason"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    previews = models.PositiveIntegerField(_("frames rendered"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number", "pk"]
        verbose_name = _("image")
        verbose_name_plural = _("images")
        constraints = [
            models.UniqueConstraint(fields=["hospital", "sop_instance_uid"], name="instance_uid_unique_per_hospital")
        ]
        indexes = [models.Index(fields=["status", "status_changed_at"], name="instance_status_since")]

    def __str__(self) -> str:
        return self.sop_instance_uid

    @property
    def preview_folder(self) -> str:
        """Where the pipeline writes this instance's renderings (server-made, from the content hash)."""
        return f"previews/{self.sha256[:2]}/{self.sha256}"

    def preview_name(self, frame: int) -> str:
        return f"{self.preview_folder}/{frame:05d}.jpg"

    @property
    def thumbnail_name(self) -> str:
        return f"{self.preview_folder}/thumb.jpg"


class Upload(models.Model):
    """One file sent from a browser in chunks at known offsets, so a dropped link resumes where it stopped.

    The chunks are kept as separate objects in Django's storage (any web worker, on any machine, may take
    the next one); once all bytes are there the file, or each DICOM file in a ZIP archive, is stored as an
    instance of the patient the clinician chose, and `results` says what became of each."""

    class Status(models.TextChoices):
        RECEIVING = "receiving", _("receiving")
        STORING = "storing", _("storing")
        DONE = "done", _("done")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", verbose_name=_("patient"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("file name"), max_length=255)  # as the browser named it; shown, never used as a path
    # SHA-256 of the client's key for the file (its path, size and modification time), so a retry finds it.
    key = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(_("size in bytes"))
    offset = models.PositiveBigIntegerField(_("bytes received"), default=0)
    # The chunks received, in order: [offset, length, storage name].
    parts = models.JSONField(default=list, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.RECEIVING)
    # One entry per file: {"name", "outcome" (stored, already, refused, skipped), "message", "study"}.
    results = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        indexes = [
            models.Index(fields=["owner", "patient", "key"], name="upload_retry_lookup"),
            models.Index(fields=["status", "updated_at"], name="upload_status_since"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.offset}/{self.size})"

    @property
    def part_folder(self) -> str:
        return f"uploads/{self.pk}"
