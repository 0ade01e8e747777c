"""The demo patient's results, added to `manage.py load_demo`: a CT slice, an ultrasound cine and lab results,
and a demonstration AI model (not a clinical one) that reads the CT as a second reader.

The images are pydicom's own sample files (shipped inside the pydicom package), relabelled with the demo
patient's record number; the pipeline renders them once the worker runs. Idempotent: fixed UIDs.
"""

import io
from pathlib import Path

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


# A model that reports how bright an image is: it shows the AI readers' plumbing (registry, pipeline step,
# viewer panel, decisions) on the demo, and says plainly that it is no clinical model. Built with the onnx
# helper API as tests/diagnostics/onnx_models.py builds it (64 × 64 input, a heat map of what it saw).
DEMO_MODEL = Path(__file__).parent / "demo_models" / "brightness.onnx"


def demo_ai_model_load(hospitals: dict[str, Hospital]) -> None:
    from diagnostics import ai
    from diagnostics.models import AIModel

    if AIModel.objects.filter(name="Demo: image brightness").exists():
        return
    name, digest = ai.model_file_save(DEMO_MODEL.read_bytes())
    model = AIModel.objects.create(
        name="Demo: image brightness",
        version="1.0",
        file=name,
        sha256=digest,
        modalities="CR, DX, CT",
        body_part="CHEST",
        input_width=64,
        input_height=64,
        labels=[{"label": "bright", "threshold": 0.5}, {"label": "dark", "threshold": 0.5}],
        has_heatmap=True,
        intended_use="Demonstration only: reports the mean brightness of the image. It knows nothing of disease.",
        disclaimer="Not a clinical model and not for diagnosis: it shows how an AI second reader appears.",
    )
    model.hospitals.set([hospitals["Tula Regional Hospital"]])


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


# Lab results of the same patient: a diabetic's glucose and HbA1c over the last days, and a troponin that
# rose from normal to critical an hour ago (the red banner of the demo). Loaded once: a message of a fixed
# control id is not stored again.
LABS = [
    # test code, value, unit, hours ago
    *[("GLU", value, "mmol/L", 24 * day + 2) for day, value in enumerate(["8.0", "11.2", "6.4", "9.1", "7.8"])],
    ("HbA1c", "8.1", "%", 30),
    ("K", "4.6", "mmol/L", 7),
    ("CREA", "88", "umol/L", 7),
    ("TNI", "12", "ng/L", 7),
    ("TNI", "180", "ng/L", 1),
]


def demo_labs_load(hospitals: dict[str, Hospital]) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from diagnostics.labs import ResultIn, lab_message_open, lab_results_store

    patient = Patient.objects.filter(record_number=RECORD, hospital__name="Tula Regional Hospital").first()
    if patient is None:
        return
    message, new = lab_message_open(
        hospital_id=patient.hospital_id, source="manual", sender="demo", control_id="DEMO-LABS-1", raw="demo results"
    )
    if not new:
        return
    now = timezone.now()
    lab_results_store(
        message=message,
        results=[
            ResultIn(value=value, code=code, unit=unit, observed_at=now - timedelta(hours=hours), patient=patient)
            for code, value, unit, hours in LABS
        ],
    )
