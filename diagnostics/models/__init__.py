"""The results a patient's diagnostics produce: imaging (DICOM), lab observations and recordings."""

from diagnostics.models.imaging import Instance, Series, Study, Upload
from diagnostics.models.labs import LabAlert, LabAlertAck, LabMessage, LabTest, LabUnit, Observation, ReferenceRange
from diagnostics.models.recordings import Recording

__all__ = [
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
