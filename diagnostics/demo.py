"""A demo CT slice and a demo ultrasound cine for a Tula demo patient, added to `manage.py load_demo`.

The images are pydicom's own sample files (shipped inside the pydicom package), relabelled with the demo
patient's record number; the pipeline renders them once the worker runs. Idempotent: fixed UIDs.
"""

import io

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import UID

from diagnostics.models import Instance
from diagnostics.services import instance_store
from hospitals.models import Hospital
from patients.models import Patient

RECORD = "TUL-DEMO-1"
ROOT = "1.2.826.0.1.3680043.10.1338.965"  # a UID root for the demo's made-up studies
# sample file, study description, body part, study/series/instance UID suffix
IMAGES = [
    ("CT_small.dcm", "CT chest", "CHEST", "1"),
    ("examples_ybr_color.dcm", "Ultrasound, kidneys", "KIDNEY", "2"),
]


def demo_images_load(hospitals: dict[str, Hospital]) -> None:
    patient = Patient.objects.filter(record_number=RECORD, hospital__name="Tula Regional Hospital").first()
    if patient is None:
        return
    for sample, description, body_part, suffix in IMAGES:
        sop_uid = f"{ROOT}.{suffix}.1.1"
        if Instance.objects.filter(hospital_id=patient.hospital_id, sop_instance_uid=sop_uid).exists():
            continue
        path = get_testdata_file(sample)
        if path is None:
            continue
        dataset = pydicom.dcmread(path)
        dataset.SpecificCharacterSet = "ISO_IR 192"
        dataset.PatientID, dataset.PatientName = patient.record_number, f"{patient.family_name}^{patient.given_name}"
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = UID(f"{ROOT}.{suffix}"), UID(f"{ROOT}.{suffix}.1")
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        dataset.StudyDescription, dataset.BodyPartExamined = description, body_part
        out = io.BytesIO()
        dataset.save_as(out, enforce_file_format=True)
        instance_store(data=out.getvalue(), hospital_id=patient.hospital_id, source=Instance.Source.BROWSER)
