"""The results a patient's diagnostics produce: imaging (DICOM), lab observations and recordings."""

from diagnostics.models.ai import AIFinding, AIModel, AIReading
from diagnostics.models.imaging import Instance, Series, Study, Upload
from diagnostics.models.labs import LabAlert, LabAlertAck, LabMessage, LabTest, LabUnit, Observation, ReferenceRange
from diagnostics.models.recordings import Recording

__all__ = [
    "AIFinding",
    "AIModel",
    "AIReading",
    "Instance",
    "LabAlert",
    "LabAlertAck",
    "LabMessage",
    "LabTest",
    "LabUnit",
    "Observation",
    "Recording",
    "ReferenceRange",
    "Series",
    "Study",
    "Upload",
]
