"""Browser uploads of imaging as a clinician on a slow link meets them: chunks, drops and resumes, retries that
never duplicate, ZIP archives with bad entries in them, and the imaging section of the patient page."""

import io
import json
import re
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations.models import Consultation
from diagnostics import archive, services, uploads
from diagnostics.models import Instance, Study, Upload
from hospitals.models import AuditEntry, Staff, User
from patients.models import Patient
from tests.conftest import (
    Network,
    PatientFactory,
    StaffFactory,
    consultation_make,
    dicom_for,
    study_make,
)

CHUNK = "application/offset+octet-stream"
Login = Callable[[User], Client]


@pytest.fixture
def tula_clinician(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user


@pytest.fixture
def patient(network_a: Network) -> Patient:
    return PatientFactory(hospital=network_a.regional)


def _committed(call: Callable[[], Any]) -> Any:
    """A request, with what it leaves for after the commit (the storing task and the pipeline, inline) run
    at once even inside the test's transaction."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return call()


def _create(client: Client, patient: Patient, name: str, size: int, key: str) -> Any:
    return _committed(
        lambda: client.post(
            f"/imaging/patients/{patient.pk}/uploads/",
            {"name": name, "size": size, "key": key},
            content_type="application/json",
        )
    )


def _patch(client: Client, url: str, offset: int, body: bytes) -> Any:
    return _committed(lambda: client.generic("PATCH", url, body, content_type=CHUNK, HTTP_UPLOAD_OFFSET=str(offset)))


def _send(client: Client, patient: Patient, data: bytes, name: str, key: str = "", chunk: int = 16_384) -> Any:
    """The whole protocol as upload.js plays it on a good link: create, then chunks until done."""
    state = _create(client, patient, name, len(data), key or f"{name}|{len(data)}").json()
    for _ in range(len(data) // chunk + 3):
        if state["status"] == Upload.Status.STORING:  # the storing ran after the answer: ask, as upload.js does
            state = client.get(state["url"]).json()
        if state["status"] == Upload.Status.DONE:
            return state
        response = _patch(client, state["url"], state["offset"], data[state["offset"] : state["offset"] + chunk])
        assert response.status_code == 200, response.content
        state = response.json()
    return state


def _result(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(result for result in state["results"] if result["name"] == name)


def test_a_file_goes_up_in_chunks_and_resumes_after_the_link_drops(
    tula_clinician: User, patient: Patient, login: Login
) -> None:
    client = login(tula_clinician)
    data = dicom_for(patient)  # CT, 39 KB
    created = _create(client, patient, "CT/IM0001.dcm", len(data), "CT/IM0001.dcm|39290|1700000000")
    assert created.status_code == 201
    state = created.json()
    assert state["offset"] == 0 and state["size"] == len(data) and created["Location"] == state["url"]

    first = _patch(client, state["url"], 0, data[:16_384])
    assert first.status_code == 200 and first.json()["offset"] == 16_384
    # The second chunk arrives, but its answer is lost on the way back; the client sends it again.
    assert _patch(client, state["url"], 16_384, data[16_384:32_768]).status_code == 200
    again = _patch(client, state["url"], 16_384, data[16_384:32_768])
    assert again.status_code == 409
    assert again.json()["offset"] == 32_768 and again["Upload-Offset"] == "32768"

    # The page was reloaded meanwhile: the same key finds the same upload, and HEAD tells the offset.
    resumed = _create(client, patient, "CT/IM0001.dcm", len(data), "CT/IM0001.dcm|39290|1700000000")
    assert resumed.status_code == 200 and resumed.json()["id"] == state["id"]
    head = client.head(state["url"])
    assert head.status_code == 200 and head["Upload-Offset"] == "32768" and head["Upload-Length"] == str(len(data))

    last = _patch(client, state["url"], 32_768, data[32_768:])
    assert last.status_code == 200 and last.json()["offset"] == len(data)
    done = client.get(state["url"]).json()
    assert done["status"] == "done" and done["offset"] == len(data)
    assert done["results"] == [
        {
            "name": "CT/IM0001.dcm",
            "outcome": "stored",
            "message": "The images are being prepared for viewing.",
            "study": done["studies"][0],
        }
    ]
    instance = Instance.objects.select_related("series__study").get()
    assert instance.status == Instance.Status.READY  # the pipeline ran (inline)
    assert instance.series.study.patient == patient and instance.source == Instance.Source.BROWSER
    assert instance.uploaded_by == tula_clinician
    with default_storage.open(instance.file.name) as stored:
        assert stored.read() == data
    # The parts are gone once stored; the audit trail has the upload, its completion and its storing.
    upload = Upload.objects.get()
    assert all(not default_storage.exists(name) for _offset, _length, name in upload.parts)
    trail = AuditEntry.objects.filter(object_type="diagnostics.upload", patient_id=str(patient.pk))
    assert [entry.detail for entry in trail.order_by("id")] == [
        f"upload of CT/IM0001.dcm, {len(data)} bytes",
        f"all {len(data)} bytes of CT/IM0001.dcm received; storing",
        "CT/IM0001.dcm: 1 stored, 0 already there, 0 refused",
    ]


def test_of_two_requests_racing_with_the_same_chunk_one_is_kept(
    tula_clinician: User, patient: Patient, login: Login
) -> None:
    client = login(tula_clinician)
    data = dicom_for(patient)
    state = _create(client, patient, "IM0001.dcm", len(data), "race").json()
    seen_by_the_slower = Upload.objects.get()  # read before the faster one wrote
    assert _patch(client, state["url"], 0, data[:10_000]).status_code == 200

    with pytest.raises(uploads.OffsetMismatch) as refused:
        uploads.upload_append(upload=seen_by_the_slower, offset=0, body=io.BytesIO(data[:10_000]), length=10_000)

    assert refused.value.upload.offset == 10_000
    upload = Upload.objects.get()
    assert upload.offset == 10_000 and len(upload.parts) == 1
    _folders, files = default_storage.listdir(upload.part_folder)
    assert files == [Path(upload.parts[0][2]).name]  # the slower one's copy is gone


def test_the_same_file_sent_again_is_already_there_and_not_stored_twice(
    tula_clinician: User, patient: Patient, login: Login
) -> None:
    client = login(tula_clinician)
    data = dicom_for(patient)
    first = _send(client, patient, data, "IM0001.dcm", key="IM0001.dcm|1")
    assert _result(first, "IM0001.dcm")["outcome"] == "stored"

    # Dropped again from the same folder: the key finds the finished upload, no byte travels again.
    retried = _create(client, patient, "IM0001.dcm", len(data), "IM0001.dcm|1")
    assert retried.status_code == 200 and retried.json()["status"] == "done"
    assert _result(retried.json(), "IM0001.dcm")["outcome"] == "already"
    # From another computer (another key): the bytes come, and instance_store knows them.
    other = _send(client, patient, data, "copy of IM0001.dcm", key="elsewhere")
    assert _result(other, "copy of IM0001.dcm") == {
        "name": "copy of IM0001.dcm",
        "outcome": "already",
        "message": "These very images were stored before; nothing was added.",
        "study": first["studies"][0],
    }
    assert Instance.objects.count() == 1 and Study.objects.count() == 1
    assert Upload.objects.count() == 2


def _bomb(path: Path, size: int = 2**30) -> None:
    """A ZIP entry of `size` zeros written in pieces, so neither the test nor the archive holds it whole."""
    zeros = bytes(2**20)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as packed,
        packed.open("study/bomb.dcm", "w") as entry,
    ):
        for _ in range(size // 2**20):
            entry.write(zeros)


def test_a_zip_lands_its_good_files_and_names_each_bad_entry(
    tula_clinician: User, patient: Patient, login: Login, tmp_path: Path
) -> None:
    path = tmp_path / "study.zip"
    study_uid = "1.2.826.0.1.3680043.8.498.1"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("study/IM0001.dcm", dicom_for(patient, "CT_small.dcm", StudyInstanceUID=study_uid))
        packed.writestr("study/IM0002.dcm", dicom_for(patient, "MR_small.dcm", StudyInstanceUID=study_uid))
        packed.writestr("../../etc/cron.d/evil.dcm", dicom_for(patient))
        packed.writestr("/var/absolute.dcm", dicom_for(patient))
        link = zipfile.ZipInfo("study/link.dcm")
        link.create_system = 3  # Unix, whose mode bits say "symbolic link"
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        packed.writestr(link, "/etc/passwd")
        packed.writestr("study/notes.dcm", b"%PDF-1.7 " + bytes(400))
        packed.writestr("DICOMDIR", b"index")
    _bomb(path)
    data = path.read_bytes()
    assert len(data) < 3 * 2**20  # 1 GB of zeros packed

    state = _send(login(tula_clinician), patient, data, "study.zip", chunk=2**20)

    assert state["status"] == "done"
    outcomes = {result["name"]: (result["outcome"], result["message"]) for result in state["results"]}
    assert outcomes["study.zip: study/IM0001.dcm"][0] == "stored"
    assert outcomes["study.zip: study/IM0002.dcm"][0] == "stored"
    assert outcomes["study.zip: ../../etc/cron.d/evil.dcm"] == (
        "refused",
        "Refused: this entry points outside the archive's folder (an absolute path or “..”).",
    )
    assert outcomes["study.zip: /var/absolute.dcm"][0] == "refused"
    assert outcomes["study.zip: study/link.dcm"] == (
        "refused",
        "Refused: this entry is a symbolic link, not a file; put the file itself in the archive.",
    )
    assert outcomes["study.zip: study/notes.dcm"][0] == "refused"
    assert "Not a DICOM file" in outcomes["study.zip: study/notes.dcm"][1]
    assert outcomes["study.zip: study/bomb.dcm"][0] == "refused"
    assert "decompression bomb" in outcomes["study.zip: study/bomb.dcm"][1]
    assert outcomes["study.zip: DICOMDIR"][0] == "skipped"
    study = Study.objects.get()
    assert study.study_instance_uid == study_uid and study.patient == patient
    assert sorted(study.modalities.split(",")) == ["CT", "MR"]
    assert Instance.objects.filter(status=Instance.Status.READY).count() == 2


def test_an_entry_that_unpacks_to_more_than_it_declares_is_refused_and_the_rest_read(patient: Patient) -> None:
    good = dicom_for(patient)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("liar.dcm", bytes(8 * 2**20))
        packed.writestr("good.dcm", good)
    forged = bytearray(out.getvalue())
    directory = forged.index(b"PK\x01\x02")  # the liar's central directory record: declare 1000 bytes
    forged[directory + 24 : directory + 28] = (1000).to_bytes(4, "little")
    limits = archive.Limits(entries=10, entry_bytes=2**30, total_bytes=2**30, ratio=100)

    entries = list(archive.entries_read(io.BytesIO(bytes(forged)), limits))

    assert entries[0].name == "liar.dcm" and entries[0].data is None
    assert entries[0].refused.startswith("This entry is damaged in the archive")
    assert entries[1] == archive.Entry("good.dcm", data=good)


def test_an_archive_with_too_many_entries_or_too_much_in_all_is_refused(patient: Patient) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as packed:
        for number in range(5):
            packed.writestr(f"IM{number}.dcm", bytes(1000))
    few = archive.Limits(entries=4, entry_bytes=2**30, total_bytes=2**30, ratio=100)
    with pytest.raises(archive.ArchiveRefused, match="holds 5 entries; the limit is 4"):
        list(archive.entries_read(io.BytesIO(out.getvalue()), few))
    small = archive.Limits(entries=10, entry_bytes=2**30, total_bytes=2500, ratio=100)
    entries = list(archive.entries_read(io.BytesIO(out.getvalue()), small))
    assert [entry.data is not None for entry in entries] == [True, True, False, False, False]
    assert entries[2].refused.startswith("Not unpacked: the archive's files together pass")


def test_a_file_that_is_not_dicom_is_named_and_refused_after_its_first_chunk(
    tula_clinician: User, patient: Patient, login: Login
) -> None:
    client = login(tula_clinician)
    report = b"%PDF-1.7\n" + bytes(200_000)
    state = _create(client, patient, "scan of report.dcm", len(report), "report").json()

    answer = _patch(client, state["url"], 0, report[:65_536])

    assert answer.status_code == 200
    state = answer.json()
    assert state["status"] == "done" and state["offset"] == 65_536  # the rest need not travel
    assert state["results"][0]["name"] == "scan of report.dcm"
    assert state["results"][0]["outcome"] == "refused"
    assert state["results"][0]["message"].startswith("Not a DICOM file: it lacks the 128-byte preamble")
    # A later chunk is told the upload is over.
    late = _patch(client, state["url"], 65_536, report[65_536:131_072])
    assert late.status_code == 409 and late.json()["status"] == "done"
    assert not Instance.objects.exists()


def test_a_2_gb_file_is_refused_before_a_byte_is_sent(tula_clinician: User, patient: Patient, login: Login) -> None:
    client = login(tula_clinician)
    answer = _create(client, patient, "whole-disc.zip", 2 * 2**30 + 1, "disc")
    assert answer.status_code == 413
    assert answer.json() == {
        "code": "too_large",
        "detail": "“whole-disc.zip” is 2048 MB; one upload may be at most 2048 MB. Split the study into smaller "
        "archives, or upload its folder.",
    }
    assert not Upload.objects.exists()
    entry = AuditEntry.objects.get(object_type="diagnostics.upload")
    assert entry.outcome == AuditEntry.Outcome.INVALID and entry.patient_id == str(patient.pk)

    # A chunk over the chunk limit, and a request over the server's limit, are refused unread.
    state = _create(client, patient, "IM0001.dcm", 30 * 2**20, "IM1").json()
    assert _patch(client, state["url"], 0, bytes(9 * 2**20)).status_code == 413
    whole = client.generic(
        "PATCH", state["url"], b"", content_type=CHUNK, HTTP_UPLOAD_OFFSET="0", CONTENT_LENGTH=str(2 * 2**30)
    )
    assert whole.status_code == 413
    assert Upload.objects.get().offset == 0


def _blanked(page: bytes) -> str:
    return re.sub(r"[A-Za-z0-9]{64}", "<csrf>", page.decode())  # a token differs per request


def test_a_tula_clinician_cannot_upload_to_a_kostroma_patient_nor_touch_kostromas_uploads(
    tula_clinician: User, network_b: Network, login: Login
) -> None:
    kostroma_patient = PatientFactory(hospital=network_b.regional)
    kostroma_clinician = StaffFactory(hospital=network_b.regional).user
    theirs = _create(login(kostroma_clinician), kostroma_patient, "IM1.dcm", 1000, "k").json()
    client = login(tula_clinician)

    refused = _create(client, kostroma_patient, "IM1.dcm", 1000, "k")
    absent = _create(client, Patient(pk=987654), "IM1.dcm", 1000, "k")
    assert refused.status_code == absent.status_code == 404
    # The page echoes the path the client sent (the language switch's "next"), nothing more.
    assert _blanked(refused.content).replace(f"/{kostroma_patient.pk}/", "/<id>/") == _blanked(absent.content).replace(
        "/987654/", "/<id>/"
    )
    for answer in (
        client.get(theirs["url"]),
        client.head(theirs["url"]),
        _patch(client, theirs["url"], 0, b"x" * 100),
    ):
        assert answer.status_code == 404
    assert Upload.objects.get().offset == 0
    assert AuditEntry.objects.filter(
        actor_id=tula_clinician.pk, outcome=AuditEntry.Outcome.NOT_FOUND, object_id=str(kostroma_patient.pk)
    ).exists()


def test_the_patient_page_shows_studies_with_thumbnails_and_the_state_of_each_image(
    tula_clinician: User, patient: Patient, login: Login
) -> None:
    ct = study_make(patient, "CT_small.dcm", StudyDescription="Chest CT", StudyDate="20260312")
    failed = study_make(patient, "JPEG-lossy.dcm", StudyDescription="Hand X-ray")
    client = login(tula_clinician)

    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert f'hx-get="/imaging/patients/{patient.pk}/"' in page
    assert f'data-create-url="/imaging/patients/{patient.pk}/uploads/"' in page
    assert f"mh:study:patient-{patient.pk} from:body" in page

    section = client.get(f"/imaging/patients/{patient.pk}/").content.decode()
    thumb = Instance.objects.get(series__study=ct)
    assert "12.03.2026" in section and "Chest CT" in section and "Hand X-ray" in section
    assert f'src="/imaging/instances/{thumb.pk}/thumbnail.jpg"' in section
    assert '<span class="badge status-ready" data-status="ready">1 ready</span>' in section
    broken = Instance.objects.get(series__study=failed)
    assert broken.status == Instance.Status.FAILED
    assert '<span class="badge status-failed" data-status="failed">1 failed</span>' in section
    assert "The image cannot be decoded" in section
    assert 'data-testid="imaging-pending"' not in section  # nothing is on its way: no polling
    assert f'hx-post="/imaging/instances/{broken.pk}/retry/"' in section

    image = client.get(f"/imaging/instances/{thumb.pk}/thumbnail.jpg")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content).startswith(b"\xff\xd8")
    assert "private" in image["Cache-Control"] and "max-age=86400" in image["Cache-Control"]
    assert client.get(f"/imaging/instances/{broken.pk}/thumbnail.jpg").status_code == 404
    assert AuditEntry.objects.filter(
        object_type="diagnostics.instance", object_id=str(thumb.pk), patient_id=str(patient.pk), detail="thumbnail"
    ).exists()


def test_the_study_list_takes_the_same_queries_for_one_study_or_many(
    tula_clinician: User, patient: Patient, login: Login
) -> None:
    client = login(tula_clinician)
    study_make(patient)
    client.get(f"/imaging/patients/{patient.pk}/")  # warm the session and membership caches
    with CaptureQueriesContext(connection) as one:
        client.get(f"/imaging/patients/{patient.pk}/")
    for _ in range(3):
        study_make(patient, "MR_small.dcm")
    with CaptureQueriesContext(connection) as four:
        section = client.get(f"/imaging/patients/{patient.pk}/").content.decode()
    assert section.count('data-testid="study"') == 4
    assert len(four) == len(one)


def test_a_failed_image_is_queued_again_by_try_again(
    tula_clinician: User, patient: Patient, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = study_make(patient, "JPEG-lossy.dcm")  # 12-bit extended JPEG: the decoders refuse it
    broken = Instance.objects.get(series__study=study)
    assert broken.status == Instance.Status.FAILED and broken.attempts == 1
    queued: list[int] = []
    monkeypatch.setattr(services, "_queue", queued.append)
    client = login(tula_clinician)

    answer = _committed(lambda: client.post(f"/imaging/instances/{broken.pk}/retry/", HTTP_HX_REQUEST="true"))

    assert answer.status_code == 204
    assert json.loads(answer["HX-Trigger"]) == {"mh:study": {"kind": "study", "id": study.pk, "patient": patient.pk}}
    broken.refresh_from_db()
    assert broken.status == Instance.Status.QUEUED and broken.error == "" and queued == [broken.pk]
    # While it waits, the section looks again by itself (in case the pipeline's event never reaches the page).
    section = client.get(f"/imaging/patients/{patient.pk}/").content.decode()
    assert "1 queued" in section
    assert f'hx-get="/imaging/patients/{patient.pk}/" hx-trigger="load delay:5s"' in section
    # Not failed any more: nothing to try, and the page says so.
    again = client.post(f"/imaging/instances/{broken.pk}/retry/", {"next": f"/patients/{patient.pk}/"}, follow=True)
    assert "This image is not failed (any more); there is nothing to try again." in again.content.decode()
    assert queued == [broken.pk]


def test_a_failed_image_tried_again_runs_through_the_pipeline_once_more(
    tula_clinician: User, patient: Patient, login: Login
) -> None:
    broken = Instance.objects.get(series__study=study_make(patient, "JPEG-lossy.dcm"))
    _committed(lambda: login(tula_clinician).post(f"/imaging/instances/{broken.pk}/retry/"))
    broken.refresh_from_db()
    assert broken.attempts == 2 and broken.status == Instance.Status.FAILED
    assert broken.error.startswith("The image cannot be decoded")


def test_images_uploaded_on_the_consultation_page_are_attached_to_it(
    tula_clinician: User, network_a: Network, login: Login
) -> None:
    consultation = consultation_make(PatientFactory(hospital=network_a.regional), requested_by=tula_clinician)
    patient = consultation.patient
    client = login(tula_clinician)
    page = client.get(f"/consultations/{consultation.pk}/").content.decode()
    assert f'data-attach-url="/consultations/{consultation.pk}/imaging/attach/"' in page

    state = _send(client, patient, dicom_for(patient), "IM0001.dcm")
    attached = _committed(
        lambda: client.post(
            f"/consultations/{consultation.pk}/imaging/attach/",
            {"study": state["studies"]},
            HTTP_ACCEPT="application/json",
        )
    )

    assert attached.status_code == 200 and attached.json() == {"attached": 1}
    assert list(consultation.studies.values_list("pk", flat=True)) == state["studies"]
    # The Moscow specialist sees it on the consultation, and is told.
    specialist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user
    section = login(specialist).get(f"/consultations/{consultation.pk}/imaging/").content.decode()
    assert section.count('data-testid="study"') == 1 and 'data-testid="thumbnail"' in section
    # Another patient's study is not attached, however it is asked for.
    other = study_make(PatientFactory(hospital=network_a.regional))
    refused = client.post(
        f"/consultations/{consultation.pk}/imaging/attach/", {"study": [other.pk]}, HTTP_ACCEPT="application/json"
    )
    assert refused.status_code == 409
    assert refused.json()["detail"] == "Only images of this consultation's patient are attached to it."
    assert consultation.studies.count() == 1


def test_a_concluded_consultation_takes_no_more_images(tula_clinician: User, network_a: Network, login: Login) -> None:
    consultation = consultation_make(
        PatientFactory(hospital=network_a.regional), state=Consultation.State.CONCLUDED, requested_by=tula_clinician
    )
    study = study_make(consultation.patient)
    client = login(tula_clinician)
    assert "data-attach-url" not in client.get(f"/consultations/{consultation.pk}/").content.decode()
    refused = client.post(
        f"/consultations/{consultation.pk}/imaging/attach/", {"study": [study.pk]}, HTTP_ACCEPT="application/json"
    )
    assert refused.status_code == 409 and "no longer attached" in refused.json()["detail"]


def test_the_sweep_drops_forgotten_uploads_with_their_parts(
    tula_clinician: User, patient: Patient, login: Login, settings: Any
) -> None:
    client = login(tula_clinician)
    data = dicom_for(patient)
    state = _create(client, patient, "IM0001.dcm", len(data), "forgotten").json()
    _patch(client, state["url"], 0, data[:10_000])
    part = Upload.objects.get().parts[0][2]
    assert default_storage.exists(part)
    Upload.objects.update(updated_at=timezone.now() - timezone.timedelta(days=settings.IMAGING_UPLOAD_KEEP_DAYS + 1))

    assert uploads.uploads_sweep() == 1

    assert not Upload.objects.exists() and not default_storage.exists(part)
