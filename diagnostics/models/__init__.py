"""The results a patient's diagnostics produce: imaging (DICOM) and lab observations."""

from diagnostics.models.imaging import Instance, Series, Study, Upload
from diagnostics.models.labs import LabAlert, LabAlertAck, LabMessage, LabTest, LabUnit, Observation, ReferenceRange

__all__ = [
    "Instance",
    "LabAlert",
    "LabAlertAck",
    "LabMessage",
    "LabTest",
    "LabUnit",
    "Observation",
    "ReferenceRange",
    "Series",
    "Study",
    "Upload",
]
