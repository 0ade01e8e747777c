"""Recordings: digital-stethoscope sounds and ECGs, and where the pipeline is with each."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from diagnostics.models.imaging import Instance


class Recording(models.Model):
    """A stethoscope sound or an ECG of a patient, and where the pipeline is with it.

    The bytes are stored once per hospital under a name made from their SHA-256 (never from a client's file
    name). A WFDB record, which is a header and the signal files it names, is kept as one ZIP archive packed
    from them in a fixed way, so the same record sent as loose files or as an archive is the same record."""

    class Kind(models.TextChoices):
        HEART = "heart", _("heart sound")
        LUNG = "lung", _("lung sound")
        ECG = "ecg", _("ECG")

    class Format(models.TextChoices):
        WAV = "wav", _("WAV")
        FLAC = "flac", _("FLAC")
        OGG = "ogg", _("OGG")
        MP3 = "mp3", _("MP3")
        WFDB = "wfdb", _("WFDB record")
        CSV = "csv", _("CSV of leads")

    Status = Instance.Status

    class Source(models.TextChoices):
        BROWSER = "browser", _("browser upload")
        DEVICE = "device", _("device")

    hospital = models.ForeignKey(
        "hospitals.Hospital", verbose_name=_("hospital"), on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", verbose_name=_("patient"), on_delete=models.PROTECT, related_name="recordings"
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    format = models.CharField(_("format"), max_length=8, choices=Format.choices)
    encoding = models.CharField(_("encoding"), max_length=32, blank=True)  # PCM_16, VORBIS, WFDB 212, ...
    file = models.FileField(max_length=200)
    original_name = models.CharField(_("file name"), max_length=255)  # as the sender named it; shown, never a path
    size = models.PositiveBigIntegerField(_("size in bytes"))
    sha256 = models.CharField(max_length=64)
    recorded_at = models.DateTimeField(_("recorded at"), null=True, blank=True)
    duration_s = models.FloatField(_("duration (s)"))
    sample_rate = models.FloatField(_("sampling rate (Hz)"))
    channels = models.PositiveSmallIntegerField(_("channels or leads"))
    leads = models.CharField(_("leads"), max_length=255, blank=True)  # an ECG's lead names, comma-separated
    source = models.CharField(_("arrived by"), max_length=10, choices=Source.choices, default=Source.BROWSER)
    # The sending device's id, not a ForeignKey to devices.Device: devices imports diagnostics (it feeds the
    # pipelines) and never the reverse, so diagnostics keeps no knowledge of the registry and is read and
    # tested without it. Devices are deactivated, not deleted, so the id keeps naming its device.
    device_id = models.PositiveIntegerField(_("device"), null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.QUEUED)
    error = models.CharField(_("reason"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # What the pipeline found and drew.
    lead = models.CharField(_("lead shown"), max_length=32, blank=True)  # of an ECG: the trace's and the count's
    heart_rate_bpm = models.FloatField(_("heart rate (beats/min)"), null=True, blank=True)
    beats = models.PositiveIntegerField(_("beats found"), null=True, blank=True)
    waveform = models.FileField(max_length=200, blank=True)
    spectrogram = models.FileField(max_length=200, blank=True)
    trace = models.FileField(_("ECG trace"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")
        constraints = [
            models.UniqueConstraint(fields=["hospital", "sha256"], name="recording_sha256_unique_per_hospital")
        ]
        indexes = [
            models.Index(fields=["patient", "-created_at"], name="recording_patient_newest"),
            models.Index(fields=["status", "status_changed_at"], name="recording_status_since"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.original_name}"

    @property
    def is_sound(self) -> bool:
        return self.kind != self.Kind.ECG

    @property
    def rendering_folder(self) -> str:
        """Where the pipeline draws this recording's pictures (server-made, from the row's id)."""
        return f"recordings/rendered/{self.pk}"

    @property
    def lead_names(self) -> list[str]:
        return [name for name in self.leads.split(",") if name]
