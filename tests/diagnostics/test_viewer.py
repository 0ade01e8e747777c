"""The image viewer and the de-identified export, with real files from real modalities."""

import gzip
import io
import re
import zipfile

import numpy as np
import pydicom
import pytest
from asgiref.sync import async_to_sync
from django.core.files.storage import default_storage
from django.test import AsyncClient
from PIL import Image
from pydicom.pixels import apply_modality_lut
from pydicom.uid import generate_uid

from diagnostics import services
from diagnostics.models import Instance, Study
from hospitals.models import AuditEntry, Staff, User
from patients.models import Patient
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make, dicom_for, store_now


@pytest.fixture
def clinician(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user  # type: ignore[no-any-return]


@pytest.fixture
def patient(network_a: Network) -> Patient:
    return PatientFactory(hospital=network_a.regional)  # type: ignore[no-any-return]


def _store(patient: Patient, name: str = "CT_small.dcm", **header: str) -> Instance:
    return store_now(patient, dicom_for(patient, name, **header)).instance  # type: ignore[no-any-return]


def _ct_and_cine(patient: Patient) -> tuple[Instance, Instance]:
    """One study, two series: a chest CT slice and a 30-frame ultrasound loop."""
    study_uid = generate_uid()
    ct = _store(
        patient,
        "CT_small.dcm",
        StudyInstanceUID=study_uid,
        SeriesNumber="1",
        SeriesDescription="Chest CT",
        BodyPartExamined="CHEST",
    )
    cine = _store(
        patient,
        "examples_ybr_color.dcm",
        StudyInstanceUID=study_uid,
        SeriesNumber="2",
        SeriesDescription="Cardiac loop",
        BodyPartExamined="HEART",
    )
    return ct, cine


def _viewer(study: Study) -> str:
    return f"/imaging/studies/{study.pk}/viewer/"


def test_the_viewer_page_shows_the_header_fields_and_the_series(patient: Patient, clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    ct, cine = _ct_and_cine(patient)
    study = ct.series.study

    response = login(clinician).get(_viewer(study))

    assert response.status_code == 200
    page = response.content.decode()
    fields = page[page.index('data-testid="header-fields"') :]
    assert patient.full_name in fields and patient.record_number in fields and "12.03.1961" in fields
    assert "19.01.2004" in fields  # the study date
    assert "Chest CT" in fields and "CHEST" in fields and ">CT<" in fields
    assert "128 × 128" in fields and "Explicit VR Little Endian" in fields
    assert "0.661468 × 0.661468 mm" in fields
    strip = page[page.index('data-testid="series-strip"') : page.index("viewer-body")]
    assert strip.count('data-testid="series"') == 2
    assert "CT #1 · Chest CT" in strip and "US #2 · Cardiac loop" in strip
    assert f"/imaging/series/{cine.series_id}/viewer/thumbnail.jpg" in strip
    # The platform's record is what the page names; the images' own name is shown only when it differs.
    assert "Name in the images" not in page
    seen = AuditEntry.objects.get(action="view", object_type="diagnostics.study", object_id=str(study.pk))
    assert seen.patient_id == str(patient.pk) and seen.actor_id == clinician.pk


def test_the_series_data_says_how_to_show_each_image(patient: Patient, clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    ct, cine = _ct_and_cine(patient)
    client = login(clinician)

    ct_data = client.get(f"/imaging/series/{ct.series_id}/viewer/").json()
    cine_data = client.get(f"/imaging/series/{cine.series_id}/viewer/").json()

    (ct_image,) = ct_data["instances"]
    assert ct_image["kind"] == "raw" and ct_image["hounsfield"] is True and ct_image["frames"] == 1
    assert ct_image["spacing"] == [0.661468, 0.661468] and ct_image["frames_url"].endswith("/viewer/frames/")
    (loop,) = cine_data["instances"]
    assert loop["kind"] == "jpeg" and loop["frames"] == 30 and loop["hounsfield"] is False
    assert loop["frame_rate"] == pytest.approx(30.0, abs=0.01)  # Frame Time 33.333 ms
    assert cine_data["description"] == "Cardiac loop" and cine_data["body_part"] == "HEART"
    # Each series fetched is one audit row, for the patient.
    assert (
        AuditEntry.objects.filter(action="view", object_type="diagnostics.series", patient_id=str(patient.pk)).count()
        == 2
    )


def test_raw_frame_values_equal_pydicoms_decoding_after_rescale(patient: Patient, clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    data = dicom_for(patient, "CT_small.dcm")
    instance = store_now(patient, data).instance
    dataset = pydicom.dcmread(io.BytesIO(data))
    expected = apply_modality_lut(dataset.pixel_array, dataset)
    assert dataset.RescaleIntercept == -1024  # the values sent are Hounsfield units, not stored values
    client = login(clinician)
    audited = AuditEntry.objects.count()

    response = client.get(f"/imaging/instances/{instance.pk}/viewer/frames/1.bin", HTTP_ACCEPT_ENCODING="gzip, br")

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip" and response["X-Pixel-Type"] == "int16"
    assert (response["X-Rows"], response["X-Columns"]) == ("128", "128")
    assert "private" in response["Cache-Control"] and "Cookie" in response["Vary"]
    differences = np.frombuffer(gzip.decompress(response.content), dtype="<i2").reshape(128, 128)
    assert response["X-Pixel-Filter"] == "sub"
    values = np.cumsum(differences, axis=1, dtype=np.int16)  # wraps like the browser's Int16Array
    assert np.array_equal(values, expected)
    assert len(response.content) < expected.size * 2  # smaller than the plain values

    plain = client.get(f"/imaging/instances/{instance.pk}/viewer/frames/1.bin")
    assert "Content-Encoding" not in plain
    assert np.array_equal(np.cumsum(np.frombuffer(plain.content, "<i2").reshape(128, 128), 1, np.int16), expected)
    # Frame requests do not flood the audit trail; the page and the series are what is recorded.
    assert AuditEntry.objects.count() == audited
    assert client.get(f"/imaging/instances/{instance.pk}/viewer/frames/2.bin").status_code == 404


def test_each_frame_of_a_multiframe_image_is_decoded_on_its_own(patient: Patient, clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    data = dicom_for(patient, "emri_small_jpeg_ls_lossless.dcm")  # MR, 10 frames, 12 bits, JPEG-LS
    instance = store_now(patient, data).instance
    frames = pydicom.dcmread(io.BytesIO(data)).pixel_array

    response = login(clinician).get(f"/imaging/instances/{instance.pk}/viewer/frames/7.bin")

    values = np.cumsum(np.frombuffer(response.content, "<i2").reshape(64, 64), 1, np.int16)
    assert np.array_equal(values, frames[6])


def test_a_jpeg_frame_of_a_120_frame_ultrasound_cine_is_served_for_frame_n(
    patient: Patient, clinician: User, login
) -> None:  # type: ignore[no-untyped-def]
    instance = _store(patient, "color3d_jpeg_baseline.dcm")
    instance.refresh_from_db()
    assert (instance.status, instance.previews) == (Instance.Status.READY, 120)
    client = login(clinician)

    response = client.get(f"/imaging/instances/{instance.pk}/viewer/frames/60.jpg")

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    with default_storage.open(instance.preview_name(60), "rb") as rendered:
        assert response.content == rendered.read()
    assert Image.open(io.BytesIO(response.content)).size == (640, 480)
    assert "private" in response["Cache-Control"]
    # The browser asks again with the ETag: nothing is sent twice.
    again = client.get(f"/imaging/instances/{instance.pk}/viewer/frames/60.jpg", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again.content == b""
    assert client.get(f"/imaging/instances/{instance.pk}/viewer/frames/121.jpg").status_code == 404
    # 8-bit colour has no raw values: the browser windows the JPEG frames.
    assert client.get(f"/imaging/instances/{instance.pk}/viewer/frames/1.bin").status_code == 404


def test_a_kostroma_study_is_a_404_for_a_tula_clinician_like_a_missing_one(
    network_a: Network, network_b: Network, clinician: User, login
) -> None:  # type: ignore[no-untyped-def]
    kostroma = _store(PatientFactory(hospital=network_b.regional))
    client = login(clinician)
    paths = {
        "study": (f"/imaging/studies/{kostroma.series.study_id}/viewer/", "/imaging/studies/987654/viewer/"),
        "series": (f"/imaging/series/{kostroma.series_id}/viewer/", "/imaging/series/987654/viewer/"),
        "thumbnail": (
            f"/imaging/series/{kostroma.series_id}/viewer/thumbnail.jpg",
            "/imaging/series/987654/viewer/thumbnail.jpg",
        ),
        "jpeg": (
            f"/imaging/instances/{kostroma.pk}/viewer/frames/1.jpg",
            "/imaging/instances/987654/viewer/frames/1.jpg",
        ),
        "raw": (
            f"/imaging/instances/{kostroma.pk}/viewer/frames/1.bin",
            "/imaging/instances/987654/viewer/frames/1.bin",
        ),
    }
    for other, absent in paths.values():
        answers = [client.get(other), client.get(absent)]
        assert [answer.status_code for answer in answers] == [404, 404]
        # Alike but for the CSRF token and the path the client sent (echoed in the language form).
        bodies = [
            re.sub(r"[A-Za-z0-9]{64}", "", answer.content.decode()).replace(path, "")
            for answer, path in zip(answers, (other, absent), strict=True)
        ]
        assert bodies[0] == bodies[1]
    export = client.post(f"/imaging/studies/{kostroma.series.study_id}/viewer/export/")
    assert export.status_code == 404
    # The probes are in the trail (a refused frame request too), and nothing of Kostroma's patient.
    refused = AuditEntry.objects.filter(actor_id=clinician.pk, outcome="not_found")
    assert refused.count() == 11
    assert not AuditEntry.objects.filter(patient_id=str(kostroma.series.study.patient_id)).exists()


def test_a_moscow_specialist_sees_the_study_of_a_patient_under_consultation_only(
    network_a: Network, patient: Patient, login
) -> None:  # type: ignore[no-untyped-def]
    specialist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user
    study = _store(patient).series.study
    client = login(specialist)
    assert client.get(_viewer(study)).status_code == 404

    consultation_make(patient)

    assert client.get(_viewer(study)).status_code == 200


def test_measurement_is_offered_only_when_the_pixel_spacing_is_known(patient: Patient, clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    calibrated = _store(patient, "CT_small.dcm")
    uncalibrated = _store(patient, "emri_small.dcm")  # MR without Pixel Spacing
    client = login(clinician)
    measure = re.compile(r'<button[^>]*data-tool="measure"[^>]*>')

    with_spacing = client.get(_viewer(calibrated.series.study)).content.decode()
    without_spacing = client.get(_viewer(uncalibrated.series.study)).content.decode()

    assert "disabled" not in measure.search(with_spacing).group(0)  # type: ignore[union-attr]
    assert re.search(r'data-testid="measure-note" hidden', with_spacing)
    assert "disabled" in measure.search(without_spacing).group(0)  # type: ignore[union-attr]
    assert re.search(r'data-testid="measure-note" >', without_spacing)
    assert "does not record its pixel spacing" in without_spacing
    data = client.get(f"/imaging/series/{uncalibrated.series_id}/viewer/").json()
    assert data["instances"][0]["spacing"] is None
    assert client.get(f"/imaging/series/{calibrated.series_id}/viewer/").json()["instances"][0]["spacing"]


def test_images_not_ready_show_their_status_and_failed_ones_their_reason(
    patient: Patient, clinician: User, login
) -> None:  # type: ignore[no-untyped-def]
    instance = _store(patient, "CT_small.dcm")
    client = login(clinician)
    Instance.objects.filter(pk=instance.pk).update(status=Instance.Status.PROCESSING)

    (waiting,) = client.get(f"/imaging/series/{instance.series_id}/viewer/").json()["instances"]
    assert (waiting["status"], waiting["kind"]) == ("processing", None)
    assert "being processed" in client.get(_viewer(instance.series.study)).content.decode()
    assert client.get(f"/imaging/instances/{instance.pk}/viewer/frames/1.jpg").status_code == 404

    services.instance_fail(instance.pk, "The image cannot be decoded: the JPEG 2000 stream is cut short")

    (failed,) = client.get(f"/imaging/series/{instance.series_id}/viewer/").json()["instances"]
    assert failed["status"] == "failed" and "cut short" in failed["error"]
    page = client.get(_viewer(instance.series.study)).content.decode()
    assert "This image could not be processed: The image cannot be decoded: the JPEG 2000 stream is cut short" in page


# The de-identified export.


def _zip(response) -> zipfile.ZipFile:  # type: ignore[no-untyped-def]
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_de_identified_export_replaces_names_ids_dates_and_uids(patient: Patient, clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    study_uid = generate_uid()
    originals = [
        dicom_for(patient, "CT_small.dcm", StudyInstanceUID=study_uid, PatientBirthDate="19610312"),
        dicom_for(patient, "MR_small.dcm", StudyInstanceUID=study_uid, PatientBirthDate="19610312"),
    ]
    for data in originals:
        store_now(patient, data)
    study = Study.objects.get(study_instance_uid=study_uid)
    before = [pydicom.dcmread(io.BytesIO(data)) for data in originals]
    assert any(element.tag.is_private for element in before[0])

    response = login(clinician).post(f"/imaging/studies/{study.pk}/viewer/export/")

    assert re.fullmatch(r'attachment; filename="teaching-case-[0-9a-f]{8}\.zip"', response["Content-Disposition"])
    archive = _zip(response)
    names = archive.namelist()
    assert "README.txt" in names and "Basic Application Level Confidentiality" in archive.read("README.txt").decode()
    after = [pydicom.dcmread(io.BytesIO(archive.read(name))) for name in names if name.endswith(".dcm")]
    assert len(after) == 2
    after.sort(key=lambda ds: str(ds.Modality))
    before.sort(key=lambda ds: str(ds.Modality))
    for old, new in zip(before, after, strict=True):
        assert str(new.PatientName) != str(old.PatientName) and patient.family_name not in str(new.PatientName)
        assert new.PatientID != patient.record_number
        assert new.PatientBirthDate != "19610312" and new.StudyDate != old.StudyDate
        assert new.StudyInstanceUID != study_uid
        assert new.SOPInstanceUID != old.SOPInstanceUID and new.SeriesInstanceUID != old.SeriesInstanceUID
        assert new.file_meta.MediaStorageSOPInstanceUID == new.SOPInstanceUID
        assert new.SOPClassUID == old.SOPClassUID
        assert not any(element.tag.is_private for element in new)
        assert new.PixelData == old.PixelData
        assert new.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    # One study in, one study out: its UIDs are remapped alike in every file.
    assert after[0].StudyInstanceUID == after[1].StudyInstanceUID
    assert after[0].PatientID == after[1].PatientID
    exported = AuditEntry.objects.get(action="export", object_type="diagnostics.study", outcome="success")
    assert exported.patient_id == str(patient.pk) and exported.actor_id == clinician.pk
    assert "2 images" in exported.detail


def test_images_with_burned_in_annotation_are_never_exported(patient: Patient, clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    study_uid = generate_uid()
    _store(patient, "CT_small.dcm", StudyInstanceUID=study_uid)
    burned = _store(patient, "examples_ybr_color.dcm", StudyInstanceUID=study_uid, BurnedInAnnotation="YES")
    study = burned.series.study
    client = login(clinician)

    refused = client.post(f"/imaging/studies/{study.pk}/viewer/export/")

    assert refused.status_code == 409
    page = refused.content.decode()
    assert "1 of the study&#x27;s 2 images declare that the patient&#x27;s details are burned into" in page
    assert 'name="without_burned_in" value="1"' in page
    assert AuditEntry.objects.filter(action="export", outcome="denied", patient_id=str(patient.pk)).exists()

    archive = _zip(client.post(f"/imaging/studies/{study.pk}/viewer/export/", {"without_burned_in": "1"}))

    images = [name for name in archive.namelist() if name.endswith(".dcm")]
    assert len(images) == 1 and pydicom.dcmread(io.BytesIO(archive.read(images[0]))).Modality == "CT"
    assert (
        "Left out: 1 images with the patient's details burned into the picture" in archive.read("README.txt").decode()
    )


def test_a_study_of_burned_in_images_only_cannot_be_exported(patient: Patient, clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    burned = _store(patient, "examples_ybr_color.dcm", BurnedInAnnotation="YES")

    refused = login(clinician).post(
        f"/imaging/studies/{burned.series.study_id}/viewer/export/", {"without_burned_in": "1"}
    )

    assert refused.status_code == 409
    assert "Nothing in this study can be exported de-identified" in refused.content.decode()
    assert 'name="without_burned_in"' not in refused.content.decode()


def test_under_asgi_the_export_streams_instead_of_being_built_in_memory(patient: Patient, clinician: User) -> None:
    study = _store(patient).series.study
    client = AsyncClient()
    client.force_login(clinician)

    response = async_to_sync(client.post)(f"/imaging/studies/{study.pk}/viewer/export/")

    assert response.status_code == 200 and response.is_async  # Django would otherwise list() a sync iterator

    async def read() -> bytes:
        return b"".join([piece async for piece in response.streaming_content])

    archive = zipfile.ZipFile(io.BytesIO(async_to_sync(read)()))
    assert len([name for name in archive.namelist() if name.endswith(".dcm")]) == 1
