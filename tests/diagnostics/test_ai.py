"""AI readers: the model registry, the pipeline step on real X-rays, the second-reader panel, the specialist's
decisions and their export. The models are built here with the onnx helper API (tests/diagnostics/onnx_models.py)."""

import csv
import io
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from diagnostics import ai
from diagnostics.models import AIFinding, AIModel, AIReading, Instance
from hospitals.models import AuditEntry, Hospital, Staff, User
from patients.models import Patient
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make, dicom_for, store_now
from tests.diagnostics.onnx_models import brightness_model

CHEST_XRAY = "RG1_UNCR.dcm"  # a real computed radiograph of the chest (CR, MONOCHROME1, 1955 × 1841)
HAND_XRAY = "RG3_UNCR.dcm"  # a real CR of an extremity


def model_make(*hospitals: Hospital, data: bytes | None = None, **fields: object) -> AIModel:
    """A registered model, as the admin form leaves it after checking the file."""
    data = brightness_model() if data is None else data
    labels = fields.pop("labels", [{"label": "bright", "threshold": 0.5}, {"label": "dark", "threshold": 0.5}])
    size = fields.pop("size", 32)
    shape = ai.model_inspect(data=data, width=size, height=size, labels=len(labels))  # type: ignore[arg-type]
    name, digest = ai.model_file_save(data)
    model = AIModel.objects.create(
        **{
            "name": "Chest brightness",
            "version": "1.0",
            "modalities": "CR, DX",
            "body_part": "CHEST",
            "input_width": size,
            "input_height": size,
            "intended_use": "Plumbing test: reports how bright the image is.",
            **fields,
        },
        file=name,
        sha256=digest,
        labels=labels,
        input_channels=shape.channels,
        has_heatmap=shape.has_heatmap,
    )
    model.hospitals.set(hospitals)
    return model


@pytest.fixture(autouse=True)
def fresh_worker() -> None:
    """Each test starts as a new worker process would: no model loaded yet."""
    ai._sessions.clear()


@pytest.fixture
def patient(network_a: Network) -> Patient:
    return PatientFactory(hospital=network_a.regional)  # type: ignore[no-any-return]


@pytest.fixture
def specialist(network_a: Network, patient: Patient) -> User:
    """The Moscow specialist consulted on the Tula patient (so the images are theirs to read)."""
    user = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user
    consultation_make(patient, state="accepted", assigned_to=user)
    return user  # type: ignore[no-any-return]


def _xray(patient: Patient, name: str = CHEST_XRAY, **header: str) -> Instance:
    return store_now(patient, dicom_for(patient, name, **header)).instance  # type: ignore[no-any-return]


def _findings(instance: Instance) -> dict[str, AIFinding]:
    return {f.label: f for f in AIFinding.objects.filter(reading__instance=instance).select_related("reading")}


def test_an_enabled_model_reads_a_chest_xray_and_keeps_each_label_and_a_heat_map(
    network_a: Network, patient: Patient
) -> None:
    model = model_make(network_a.regional)
    instance = _xray(patient)
    assert Instance.objects.get(pk=instance.pk).status == Instance.Status.READY
    findings = _findings(instance)
    assert set(findings) == {"bright", "dark"}
    bright = findings["bright"].probability
    # The model reports the mean brightness of what it was given: a real radiograph is neither black nor white.
    assert 0.05 < bright < 0.95 and findings["dark"].probability == pytest.approx(1 - bright, abs=1e-5)
    assert findings["bright"].positive == (bright >= 0.5)
    reading = findings["bright"].reading
    assert reading.model == model and reading.seconds > 0
    with default_storage.open(reading.heatmap, "rb") as stored:
        overlay = Image.open(io.BytesIO(stored.read()))
    assert overlay.mode == "RGBA" and overlay.size == (32, 32)


def test_the_model_is_given_the_image_as_displayed(network_a: Network, patient: Patient) -> None:
    """The same pixels marked MONOCHROME2 instead of MONOCHROME1 display inverted; the model sees that."""
    model_make(network_a.regional)
    as_sent = _findings(_xray(patient))["bright"].probability
    inverted = _findings(_xray(patient, PhotometricInterpretation="MONOCHROME2"))["bright"].probability
    assert inverted == pytest.approx(1 - as_sent, abs=0.01)
    assert abs(as_sent - 0.5) > 0.02  # not a flat grey, or the check above would prove nothing


def test_a_model_reads_only_what_it_is_enabled_and_declared_for(
    network_a: Network, network_b: Network, patient: Patient
) -> None:
    model_make(network_b.regional, name="Enabled elsewhere")
    model_make(network_a.regional, name="For mammograms", modalities="MG", body_part="")
    model_make(network_a.regional, name="Any body part", body_part="")
    model_make(network_a.regional, name="Chest only")
    hand = _xray(patient, HAND_XRAY)
    chest = _xray(patient)
    ct = _xray(patient, "CT_small.dcm")
    names = lambda instance: sorted(AIReading.objects.filter(instance=instance).values_list("model__name", flat=True))  # noqa: E731
    assert names(chest) == ["Any body part", "Chest only"]
    assert names(hand) == ["Any body part"]
    assert names(ct) == []


def test_disabling_a_model_for_a_hospital_stops_it(network_a: Network, patient: Patient) -> None:
    model = model_make(network_a.regional)
    assert AIReading.objects.filter(instance=_xray(patient)).count() == 1
    model.hospitals.clear()
    assert AIReading.objects.filter(instance=_xray(patient)).count() == 0


def test_a_damaged_model_is_reported_and_skipped_and_the_image_is_still_ready(
    network_a: Network, patient: Patient
) -> None:
    broken = model_make(network_a.regional, name="Damaged")
    good = model_make(network_a.regional, name="Sound", data=brightness_model(heatmap=False))
    default_storage.delete(broken.file.name)
    default_storage.save(broken.file.name, ContentFile(b"\x08\x01garbage after the header"))

    instance = _xray(patient)
    assert Instance.objects.get(pk=instance.pk).status == Instance.Status.READY
    assert list(AIReading.objects.filter(instance=instance).values_list("model", flat=True)) == [good.pk]
    broken.refresh_from_db()
    assert "not the one that was checked at upload" in broken.last_error and broken.last_error_at is not None

    default_storage.delete(broken.file.name)  # gone altogether
    _xray(patient)
    broken.refresh_from_db()
    assert "cannot be read" in broken.last_error


def test_outputs_that_are_not_probabilities_are_reported(network_a: Network, patient: Patient) -> None:
    raw = model_make(network_a.regional, name="Logits, no activation", data=brightness_model(logits=True))
    sigmoid = model_make(
        network_a.regional, name="Logits with sigmoid", data=brightness_model(logits=True), activation="sigmoid"
    )
    instance = _xray(patient)
    raw.refresh_from_db()
    assert "not probabilities" in raw.last_error
    assert [r.model for r in AIReading.objects.filter(instance=instance)] == [sigmoid]
    probabilities = [f.probability for f in AIFinding.objects.filter(reading__model=sigmoid)]
    assert all(0 < p < 1 for p in probabilities)


def test_reading_twice_keeps_one_reading(network_a: Network, patient: Patient) -> None:
    """The pipeline may run again (a retry, the sweep): the reading, and any decision on it, stay as they were."""
    model_make(network_a.regional)
    instance = _xray(patient)
    finding = _findings(instance)["bright"]
    AIFinding.objects.filter(pk=finding.pk).update(decision=AIFinding.Decision.CONFIRMED)
    import pydicom

    from diagnostics import dicom

    with default_storage.open(instance.file.name, "rb") as stored:
        dataset = pydicom.dcmread(stored)
    first = next(dicom.frames_render(dataset)).pixels
    ai.instance_read(Instance.objects.select_related("series__study").get(pk=instance.pk), dataset, first)
    assert AIFinding.objects.filter(reading__instance=instance).count() == 2
    assert AIFinding.objects.get(pk=finding.pk).decision == AIFinding.Decision.CONFIRMED


# The viewer and the specialist's decisions.


def test_the_viewer_shows_the_reading_as_a_second_reader(
    network_a: Network, patient: Patient, specialist: User, login
) -> None:  # type: ignore[no-untyped-def]
    model_make(network_a.regional, version="2.3.1", disclaimer="Not for standalone diagnosis (test).")
    instance = _xray(patient)
    client = login(specialist)
    page = client.get(f"/imaging/studies/{instance.series.study_id}/viewer/").content.decode()
    assert "Second reader (AI)" in page and "Chest brightness" in page and "version 2.3.1" in page
    assert "Not for standalone diagnosis (test)." in page
    percent = round(_findings(instance)["bright"].probability * 100)
    assert f"{percent}%" in page
    assert 'data-testid="ai-confirm"' in page  # a specialist decides

    series = client.get(f"/imaging/series/{instance.series_id}/viewer/").json()
    [heatmap] = series["instances"][0]["heatmaps"]
    assert heatmap["model"] == "Chest brightness 2.3.1"
    response = client.get(heatmap["url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_a_specialist_confirms_and_rejects_findings_and_each_decision_is_audited(
    network_a: Network, patient: Patient, specialist: User, login
) -> None:  # type: ignore[no-untyped-def]
    model_make(network_a.regional)
    instance = _xray(patient)
    findings = _findings(instance)
    client = login(specialist)

    response = client.post(f"/imaging/ai/findings/{findings['bright'].pk}/decision/", {"decision": "confirmed"})
    assert response.status_code == 302
    response = client.post(
        f"/imaging/ai/findings/{findings['dark'].pk}/decision/", {"decision": "rejected"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and 'data-decision="rejected"' in response.content.decode()

    decided = {f.label: f for f in AIFinding.objects.filter(reading__instance=instance)}
    assert decided["bright"].decision == "confirmed" and decided["bright"].decided_by == specialist
    assert decided["dark"].decision == "rejected"
    audited = AuditEntry.objects.filter(
        object_type="diagnostics.aifinding", actor_id=specialist.pk, patient_id=patient.pk
    )
    assert sorted(audited.values_list("detail", flat=True)) == [
        f"AI finding confirmed: bright {decided['bright'].probability:.3f} by Chest brightness 1.0",
        f"AI finding rejected: dark {decided['dark'].probability:.3f} by Chest brightness 1.0",
    ]
    page = client.get(f"/imaging/studies/{instance.series.study_id}/viewer/").content.decode()
    assert page.count('data-testid="ai-decision"') == 2


def test_only_a_specialist_decides_and_nonsense_is_refused(
    network_a: Network, network_b: Network, patient: Patient, specialist: User, login
) -> None:  # type: ignore[no-untyped-def]
    model_make(network_a.regional)
    finding = _findings(_xray(patient))["bright"]
    url = f"/imaging/ai/findings/{finding.pk}/decision/"
    clinician = StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user
    page = login(clinician).get(f"/imaging/studies/{finding.reading.instance.series.study_id}/viewer/")
    assert "Chest brightness" in page.content.decode() and 'data-testid="ai-confirm"' not in page.content.decode()
    assert login(clinician).post(url, {"decision": "confirmed"}).status_code == 403
    stranger = StaffFactory(hospital=network_b.central, role=Staff.Role.SPECIALIST).user
    assert login(stranger).post(url, {"decision": "confirmed"}).status_code == 404
    response = login(specialist).post(url, {"decision": "maybe"})
    assert response.status_code == 400 and "confirm" in response.content.decode()
    assert AIFinding.objects.get(pk=finding.pk).decision == AIFinding.Decision.PENDING


def test_the_decisions_export_as_csv_for_evaluation(
    network_a: Network, patient: Patient, specialist: User, platform_admin: User, login
) -> None:  # type: ignore[no-untyped-def]
    model = model_make(network_a.regional)
    instance = _xray(patient)
    bright = _findings(instance)["bright"]
    login(specialist).post(f"/imaging/ai/findings/{bright.pk}/decision/", {"decision": "confirmed"})

    response = login(platform_admin).get(f"/imaging/ai/models/{model.pk}/decisions.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["label"], r["decision"]) for r in rows] == [("bright", "confirmed"), ("dark", "pending")]
    assert rows[0]["sop_instance_uid"] == instance.sop_instance_uid and rows[0]["modality"] == "CR"
    assert rows[0]["decided_by"] == specialist.username and rows[0]["hospital"] == network_a.regional.name
    assert patient.family_name not in body and patient.record_number not in body  # images are named by UID only
    assert AuditEntry.objects.filter(
        action="export", object_type="diagnostics.aimodel", actor_id=platform_admin.pk
    ).exists()
    assert login(specialist).get(f"/imaging/ai/models/{model.pk}/decisions.csv").status_code == 403


# The registry (the Django admin, platform admins only).


def _admin_post(client: Client, data: bytes, **fields: str) -> str:
    form = {
        "name": "Pneumonia screen",
        "version": "0.9",
        "modalities": "cr, dx",
        "body_part": "chest",
        "input_width": "32",
        "input_height": "32",
        "mean": "0.5",
        "std": "0.25",
        "activation": "none",
        "labels_text": "bright 0.5\ndark 0,7",
        "intended_use": "Flags chest X-rays for a specialist's attention.",
        "disclaimer": "Not for standalone diagnosis.",
        **fields,
    }
    response = client.post("/admin/diagnostics/aimodel/add/", {**form, "upload": SimpleUploadedFile("m.onnx", data)})
    return response.content.decode() if response.status_code == 200 else f"redirect {response.status_code}"


def test_a_platform_admin_registers_a_model_and_it_is_checked_first(
    network_a: Network, platform_admin: User, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(platform_admin)
    assert _admin_post(client, brightness_model(), hospitals=str(network_a.regional.pk)) == "redirect 302"
    model = AIModel.objects.get()
    assert model.labels == [{"label": "bright", "threshold": 0.5}, {"label": "dark", "threshold": 0.7}]
    assert model.modality_list == ["CR", "DX"] and model.body_part == "CHEST" and model.has_heatmap
    assert model.created_by == platform_admin and list(model.hospitals.all()) == [network_a.regional]
    with default_storage.open(model.file.name, "rb") as stored:
        assert stored.read() == brightness_model()
    assert AuditEntry.objects.filter(action="create", object_type="diagnostics.aimodel").exists()


@pytest.mark.parametrize(
    ("data", "fields", "message"),
    [
        (b"PK\x03\x04 a zip, not a model", {}, "This file is not an ONNX model that onnxruntime can load"),
        (brightness_model(), {"input_width": "64", "input_height": "64"}, "The model takes images of 32 × 32"),
        (brightness_model(), {"labels_text": "pneumonia 0.5"}, "The model gives 2 scores, but 1 labels are listed"),
        (brightness_model(), {"labels_text": "pneumonia high"}, "Line 1: write a label, a space and a threshold"),
        (brightness_model(), {"std": "0"}, "must be above zero"),
        (brightness_model(), {"modalities": "X-ray"}, "not understood: X-RAY"),
    ],
    ids=["not onnx", "input size", "labels", "threshold", "std", "modality"],
)
def test_a_model_that_does_not_fit_its_description_is_refused_and_nothing_is_kept(
    platform_admin: User, login, data: bytes, fields: dict[str, str], message: str
) -> None:  # type: ignore[no-untyped-def]
    page = _admin_post(login(platform_admin), data, **fields)
    assert message in page.replace("&quot;", '"').replace("&#x27;", "'")
    assert not AIModel.objects.exists()
    assert not default_storage.exists("ai-models")  # the file is kept only once it has passed


def test_the_registry_lists_a_failing_model_with_its_reason(
    network_a: Network, patient: Patient, platform_admin: User, login
) -> None:  # type: ignore[no-untyped-def]
    model = model_make(network_a.regional, name="Damaged")
    default_storage.delete(model.file.name)
    _xray(patient)
    listing = login(platform_admin).get("/admin/diagnostics/aimodel/").content.decode()
    assert "Damaged" in listing and "The model file cannot be read" in listing


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_model_and_the_viewer_shows_it(
    network_a: Network, patient: Patient, specialist: User, celery_worker, login
) -> None:  # type: ignore[no-untyped-def]
    from diagnostics import dicom, services

    model_make(network_a.regional)
    data = dicom_for(patient, CHEST_XRAY)
    [stored] = services.instances_store(
        files=[(data, dicom.header_read(data))], hospital_id=patient.hospital_id, source=Instance.Source.STOW
    )
    assert isinstance(stored, services.Stored)
    deadline = time.monotonic() + 60
    while Instance.objects.get(pk=stored.instance.pk).status != Instance.Status.READY:
        assert time.monotonic() < deadline, "the worker did not finish the X-ray within 60 s"
        time.sleep(0.1)
    assert AIFinding.objects.filter(reading__instance=stored.instance).count() == 2
    page = login(specialist).get(f"/imaging/studies/{stored.instance.series.study_id}/viewer/").content.decode()
    assert "Chest brightness" in page and 'data-testid="ai-finding"' in page
