"""DICOMweb as machines and viewers use it: the real dicomweb-client against the live ASGI server with an
API token, real files from real modalities, and the refusals a sender must be able to act on."""

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array
from pydicom.uid import generate_uid

from diagnostics.models import Instance, Study
from hospitals.models import AuditEntry, Staff, User
from tests.conftest import (
    Network,
    PatientFactory,
    StaffFactory,
    consultation_make,
    dicom_for,
    store_now,
    study_make,
    verified_login,
)

DICOM_PARTS = 'multipart/related; type="application/dicom"; boundary=BOUNDARY'
# A failed part's reason is a sentence in Error Comment (0000,0902), longer than its VR's nominal 64
# characters; pydicom says so when it reads the answer.
pytestmark = pytest.mark.filterwarnings("ignore:The value length .* allowed for VR LO")


def _encoded(data: bytes) -> bytes:
    """The bytes dicomweb-client sends for a file it is given as a dataset (it writes each one anew)."""
    out = io.BytesIO()
    pydicom.dcmwrite(out, pydicom.dcmread(io.BytesIO(data)))
    return out.getvalue()


def _multipart(parts: list[bytes], boundary: str = "BOUNDARY") -> bytes:
    body = b"".join(b"\r\n--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + p for p in parts)
    return body + b"\r\n--" + boundary.encode() + b"--"


def _stow(client: Client, parts: list[bytes], path: str = "/dicom-web/studies", **extra: str):  # type: ignore[no-untyped-def]
    return client.post(path, _multipart(parts), content_type=DICOM_PARTS, **extra)


def _value(item: dict, keyword_tag: str) -> object:  # type: ignore[type-arg]
    return item.get(keyword_tag, {}).get("Value", [None])[0]


def _parts(response: requests.Response) -> list[bytes]:
    """The contents of a multipart/related response, split independently of the server's writer."""
    media_type, _, parameters = response.headers["Content-Type"].partition(";")
    assert media_type == "multipart/related"
    boundary = next(p.split("=", 1)[1].strip('" ') for p in parameters.split(";") if p.strip().startswith("boundary"))
    sections = response.content.split(b"--" + boundary.encode())
    assert sections[-1].startswith(b"--")  # the closing boundary
    return [section.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for section in sections[1:-1]]


@pytest.fixture
def dicomweb(asgi_server: str, login: Callable[[User], Client]) -> Callable[..., DICOMwebClient]:
    """A dicomweb-client for a user, authenticated as an integration is: an API token made from a verified
    session, sent as "Authorization: Token <key>"."""

    def client_for(user: User, **options: object) -> DICOMwebClient:
        response = login(user).post("/api/v1/tokens/")
        assert response.status_code == 200
        headers = {"Authorization": f"Token {response.json()['token']}"}
        return DICOMwebClient(url=f"{asgi_server}/dicom-web", headers=headers, **options)  # type: ignore[arg-type]

    return client_for


# STOW-RS.


@pytest.mark.parametrize("body_held", ["in memory", "on disk"])
def test_a_modality_stores_a_study_in_chunks_and_gets_the_very_bytes_back(
    body_held: str, settings: Any, network_a: Network, dicomweb: Callable[..., DICOMwebClient]
) -> None:
    if body_held == "on disk":  # a body past the in-memory limit is spooled to a temporary file first
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    clinician = StaffFactory(hospital=network_a.regional).user
    patient = PatientFactory(hospital=network_a.regional)
    study_uid = generate_uid()
    samples = ("CT_small.dcm", "US1_J2KR.dcm", "color3d_jpeg_baseline.dcm")
    files = [dicom_for(patient, name, StudyInstanceUID=study_uid) for name in samples]
    # Bodies over 64 KiB go with chunked transfer encoding, without a Content-Length.
    client = dicomweb(clinician, chunk_size=64 * 1024)

    answer = client.store_instances([pydicom.dcmread(io.BytesIO(data)) for data in files])

    stored = Instance.objects.filter(series__study__study_instance_uid=study_uid)
    assert stored.count() == 3 and {i.source for i in stored} == {Instance.Source.STOW}
    assert {i.status for i in stored} == {Instance.Status.READY}  # the pipeline ran once each committed
    assert {i.series.study.patient_id for i in stored} == {patient.pk}
    assert "FailedSOPSequence" not in answer
    references = {item.ReferencedSOPInstanceUID: item.RetrieveURL for item in answer.ReferencedSOPSequence}
    assert set(references) == {i.sop_instance_uid for i in stored}
    assert answer.RetrieveURL.endswith(f"/dicom-web/studies/{study_uid}")
    created = AuditEntry.objects.filter(action="create", object_type="diagnostics.instance", outcome="success")
    assert sorted(created.values_list("patient_id", "actor_id")) == [(str(patient.pk), clinician.pk)] * 3

    for data in files:
        sent = pydicom.dcmread(io.BytesIO(data))
        retrieved = client.retrieve_instance(study_uid, sent.SeriesInstanceUID, sent.SOPInstanceUID)
        assert retrieved.SOPInstanceUID == sent.SOPInstanceUID
        answer_to = requests.get(
            references[sent.SOPInstanceUID],
            headers={**client._session.headers, "Accept": 'multipart/related; type="application/dicom"'},
            timeout=20,
        )
        assert _parts(answer_to) == [_encoded(data)]
    assert AuditEntry.objects.filter(action="export", patient_id=str(patient.pk)).count() == 6  # one per request


def test_a_bad_part_fails_alone_and_says_why(network_a: Network, login: Callable[[User], Client]) -> None:
    clinician = StaffFactory(hospital=network_a.regional).user
    patient = PatientFactory(hospital=network_a.regional)
    client = login(clinician)
    first = dicom_for(patient, "CT_small.dcm")
    assert _stow(client, [first]).status_code == 200
    header = pydicom.dcmread(io.BytesIO(first))
    # The same SOP Instance UID with other content; pixel data cut short; not DICOM at all; a good one.
    header.StudyDescription = "corrected"
    changed = io.BytesIO()
    header.save_as(changed, enforce_file_format=True)
    cut = pydicom.dcmread(io.BytesIO(dicom_for(patient, "CT_small.dcm")))
    cut.PixelData = cut.PixelData[:1000]
    truncated = io.BytesIO()
    cut.save_as(truncated, enforce_file_format=True)
    good = dicom_for(patient, "MR_small.dcm")

    response = _stow(client, [changed.getvalue(), truncated.getvalue(), b"%PDF-1.7 a scan", good])

    assert response.status_code == 202 and response["Content-Type"] == "application/dicom+json"
    answer = Dataset.from_json(response.json())
    (stored,) = answer.ReferencedSOPSequence
    assert stored.ReferencedSOPInstanceUID == pydicom.dcmread(io.BytesIO(good)).SOPInstanceUID
    conflict, short, alien = answer.FailedSOPSequence
    assert (conflict.ReferencedSOPInstanceUID, conflict.FailureReason) == (header.SOPInstanceUID, 0x0111)
    assert conflict.ErrorComment.startswith("Part 1: An image with SOP Instance UID")
    assert "the stored one is kept" in conflict.ErrorComment
    assert (short.ReferencedSOPInstanceUID, short.FailureReason) == (cut.SOPInstanceUID, 0xC000)
    assert short.ErrorComment.startswith("Part 2: The pixel data is cut short")
    assert alien.FailureReason == 0xC000 and alien.ErrorComment.startswith("Part 3: Not a DICOM file")
    kept = Instance.objects.get(sop_instance_uid=header.SOPInstanceUID)
    with kept.file.open("rb") as stored_file:
        assert stored_file.read() == first  # the stored one is kept
    assert Instance.objects.count() == 2
    assert AuditEntry.objects.filter(action="create", outcome="invalid").count() == 3

    everything_bad = _stow(client, [changed.getvalue()])
    assert everything_bad.status_code == 409
    assert Dataset.from_json(everything_bad.json()).FailedSOPSequence[0].FailureReason == 0x0111


def test_one_request_with_an_image_twice_stores_it_once_and_refuses_a_changed_copy(
    network_a: Network, login: Callable[[User], Client]
) -> None:
    client = login(StaffFactory(hospital=network_a.regional).user)
    patient = PatientFactory(hospital=network_a.regional)
    image = dicom_for(patient, "CT_small.dcm")
    changed = pydicom.dcmread(io.BytesIO(image))
    changed.StudyDescription = "corrected"
    other = io.BytesIO()
    changed.save_as(other, enforce_file_format=True)

    response = _stow(client, [image, image, other.getvalue()])

    assert response.status_code == 202
    answer = Dataset.from_json(response.json())
    assert [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence] == [changed.SOPInstanceUID] * 2
    (conflict,) = answer.FailedSOPSequence
    assert conflict.FailureReason == 0x0111 and conflict.ErrorComment.startswith("Part 3: ")
    assert Instance.objects.count() == 1
    with Instance.objects.get().file.open("rb") as stored_file:
        assert stored_file.read() == image


def test_a_store_costs_the_same_queries_for_two_images_as_for_twelve(
    network_a: Network, login: Callable[[User], Client]
) -> None:
    client = login(StaffFactory(hospital=network_a.regional).user)
    patient = PatientFactory(hospital=network_a.regional)
    client.get("/dicom-web/studies")  # the session's first request settles who the user is
    counted = []
    for total in (2, 12):
        study, series = generate_uid(), generate_uid()
        parts = [dicom_for(patient, StudyInstanceUID=study, SeriesInstanceUID=series) for _n in range(total)]
        with CaptureQueriesContext(connection) as queries:
            response = _stow(client, parts)
        assert response.status_code == 200 and len(Dataset.from_json(response.json()).ReferencedSOPSequence) == total
        counted.append(len(queries))
    assert counted[0] == counted[1]


def test_a_study_resource_takes_only_its_own_instances(network_a: Network, login: Callable[[User], Client]) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    client = login(StaffFactory(hospital=network_a.regional).user)
    target = generate_uid()
    inside, outside = dicom_for(patient, StudyInstanceUID=target), dicom_for(patient, "MR_small.dcm")

    response = _stow(client, [inside, outside], path=f"/dicom-web/studies/{target}")

    assert response.status_code == 202
    answer = Dataset.from_json(response.json())
    assert answer.RetrieveURL == f"http://testserver/dicom-web/studies/{target}"
    assert answer.FailedSOPSequence[0].FailureReason == 0xA901
    assert f"not to {target}" in answer.FailedSOPSequence[0].ErrorComment
    assert list(Study.objects.values_list("study_instance_uid", flat=True)) == [target]


def test_images_of_a_patient_unknown_here_are_refused_with_the_record_number(
    network_a: Network, network_b: Network, login: Callable[[User], Client]
) -> None:
    kostroma_patient = PatientFactory(hospital=network_b.regional)
    client = login(StaffFactory(hospital=network_a.regional).user)

    response = _stow(client, [dicom_for(kostroma_patient)])

    assert response.status_code == 409
    (failed,) = Dataset.from_json(response.json()).FailedSOPSequence
    assert failed.FailureReason == 0x0110
    assert f"No patient with record number “{kostroma_patient.record_number}”" in failed.ErrorComment
    assert not Instance.objects.exists()


def test_more_than_a_thousand_parts_are_refused_before_anything_is_stored(
    network_a: Network, login: Callable[[User], Client]
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    client = login(StaffFactory(hospital=network_a.regional).user)

    response = _stow(client, [dicom_for(patient)] + [b"x"] * 1000)

    assert response.status_code == 413
    assert response.json() == {
        "code": "too_large",
        "detail": "The request holds more than 1000 parts; send at most 1000 images per request.",
    }
    assert not Instance.objects.exists()
    assert _stow(client, [b"x"] * 1000).status_code == 409  # a thousand is allowed (here, all bad)


def test_compressed_bodies_other_media_types_and_broken_bodies_are_refused(
    network_a: Network, login: Callable[[User], Client]
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    client = login(StaffFactory(hospital=network_a.regional).user)
    data = dicom_for(patient)

    gzipped = _stow(client, [data], HTTP_CONTENT_ENCODING="gzip")
    assert gzipped.status_code == 415
    assert gzipped.json()["detail"].startswith("Compressed request bodies (Content-Encoding: gzip) are not accepted")
    as_json = client.post("/dicom-web/studies", b"[]", content_type="application/dicom+json")
    assert as_json.status_code == 415 and 'multipart/related; type="application/dicom"' in as_json.json()["detail"]
    cut_off = client.post("/dicom-web/studies", _multipart([data])[:-20], content_type=DICOM_PARTS)
    assert cut_off.status_code == 400
    assert cut_off.json()["detail"].startswith("The body ends inside part 1, without the closing boundary")
    no_boundary = client.post(
        "/dicom-web/studies", _multipart([data]), content_type='multipart/related; type="application/dicom"'
    )
    assert no_boundary.status_code == 400
    assert not Instance.objects.exists()
    # The first boundary may open the body itself, with no line break before it.
    assert _stow(client, []).status_code == 400
    plain = client.post("/dicom-web/studies", _multipart([data])[2:], content_type=DICOM_PARTS)
    assert plain.status_code == 200 and Instance.objects.count() == 1


def test_a_browser_session_needs_the_csrf_token_and_a_token_does_not(
    network_a: Network, login: Callable[[User], Client]
) -> None:
    clinician = StaffFactory(hospital=network_a.regional).user
    patient = PatientFactory(hospital=network_a.regional)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clinician, backend="django.contrib.auth.backends.ModelBackend")
    refused = _stow(browser, [dicom_for(patient)])
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.get("/")  # the page sets the CSRF cookie
    assert _stow(browser, [dicom_for(patient)], HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value).status_code == 200

    token = login(clinician).post("/api/v1/tokens/").json()["token"]
    machine = Client(enforce_csrf_checks=True, headers={"authorization": f"Token {token}"})
    assert _stow(machine, [dicom_for(patient)]).status_code == 200


def test_a_specialist_session_without_the_second_factor_reaches_nothing(network_a: Network) -> None:
    specialist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user
    study_make(consultation_make(PatientFactory(hospital=network_a.regional)).patient)
    client = Client()
    client.force_login(specialist, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/dicom-web/studies")
    # Sent to confirm the second factor first (the pages' gate), or refused as the API refuses.
    assert response.status_code in (302, 403)
    assert response.status_code == 403 or response["Location"].startswith("/accounts/second-factor/")
    assert verified_login(client, specialist).get("/dicom-web/studies").status_code == 200


@pytest.mark.parametrize("role", ["anonymous", Staff.Role.HOSPITAL_ADMIN, "platform_admin"])
def test_only_clinicians_and_specialists_store(role: str, network_a: Network, platform_admin: User) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    client = Client()
    if role == "platform_admin":
        verified_login(client, platform_admin)
    elif role != "anonymous":
        verified_login(client, StaffFactory(hospital=network_a.regional, role=role).user)
    response = _stow(client, [dicom_for(patient)])
    if role == "anonymous":  # no credentials: challenged for a token
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    else:
        assert response.status_code == 403
    assert not Instance.objects.exists()


# QIDO-RS.


def _uids(results: list[dict], tag: str = "0020000D") -> list[str]:  # type: ignore[type-arg]
    return [str(_value(result, tag)) for result in results]


def test_studies_are_found_as_ohifs_study_list_asks(
    network_a: Network, dicomweb: Callable[..., DICOMwebClient]
) -> None:
    clinician = StaffFactory(hospital=network_a.regional).user
    smirnova = PatientFactory(hospital=network_a.regional, family_name="Смирнова", given_name="Алёна")
    ivanov = PatientFactory(hospital=network_a.regional, family_name="Иванов", given_name="Пётр")
    january = study_make(
        smirnova, StudyDate="20240110", AccessionNumber="ACC-1", StudyDescription="КТ головы без контраста"
    )
    february = study_make(smirnova, "US1_J2KR.dcm", StudyDate="20240214", StudyDescription="УЗИ брюшной полости")
    old = study_make(ivanov, "MR_small.dcm", StudyDate="20231231", AccessionNumber="ACC-2")
    client = dicomweb(clinician)

    def found(**filters: object) -> list[str]:
        return _uids(client.search_for_studies(search_filters=filters))

    assert found() == [february.study_instance_uid, january.study_instance_uid, old.study_instance_uid]
    assert found(PatientName="смирн*") == [february.study_instance_uid, january.study_instance_uid]
    assert found(PatientName="*АЛЁНА*") == [february.study_instance_uid, january.study_instance_uid]
    assert found(PatientName=f"СМИРНОВА^Алена^{smirnova.patronymic}") == found(PatientName="*алена*")
    assert found(PatientName="Смирнова^Ал?на*") == [february.study_instance_uid, january.study_instance_uid]
    assert found(PatientName="Смирнова") == []  # a name matches whole, or by its wildcards
    assert found(PatientID=ivanov.record_number.lower()) == [old.study_instance_uid]
    assert found(StudyDate="20240101-20240131") == [january.study_instance_uid]
    assert found(StudyDate="20240101-") == [february.study_instance_uid, january.study_instance_uid]
    assert found(StudyDate="-20231231") == [old.study_instance_uid]
    assert found(StudyDate="20240214") == [february.study_instance_uid]
    assert found(StudyInstanceUID=f"{old.study_instance_uid},{january.study_instance_uid}") == [
        january.study_instance_uid,
        old.study_instance_uid,
    ]
    assert found(StudyInstanceUID=[old.study_instance_uid, february.study_instance_uid]) == [
        february.study_instance_uid,
        old.study_instance_uid,
    ]
    assert found(AccessionNumber="ACC-1") == [january.study_instance_uid]
    assert found(AccessionNumber="ACC*") == [january.study_instance_uid, old.study_instance_uid]
    assert found(ModalitiesInStudy="US") == [february.study_instance_uid]
    assert found(ModalitiesInStudy="MR\\CT") == [january.study_instance_uid, old.study_instance_uid]
    assert found(StudyDescription="*головы*") == [january.study_instance_uid]
    assert found(StudyDescription="узи*") == [february.study_instance_uid]
    assert found(**{"00100020": smirnova.record_number, "00080020": "20240214"}) == [february.study_instance_uid]

    page = client.search_for_studies(limit=1, offset=1)
    assert _uids(page) == [january.study_instance_uid]
    assert client.search_for_studies(offset=3) == []
    (study,) = client.search_for_studies(search_filters={"AccessionNumber": "ACC-1"}, fuzzymatching=True)
    answer = Dataset.from_json(study)
    # The patient as the platform knows them, not as the images name them.
    assert str(answer.PatientName) == f"Смирнова^Алёна^{smirnova.patronymic}"
    assert (answer.PatientID, answer.PatientBirthDate, answer.PatientSex) == (smirnova.record_number, "19610312", "M")
    assert (answer.StudyDate, answer.AccessionNumber, answer.ModalitiesInStudy) == ("20240110", "ACC-1", "CT")
    assert (answer.NumberOfStudyRelatedSeries, answer.NumberOfStudyRelatedInstances) == (1, 1)
    assert answer.StudyDescription == "КТ головы без контраста"
    assert answer.RetrieveURL.endswith(f"/dicom-web/studies/{january.study_instance_uid}")
    for keyword in ("StudyTime", "ReferringPhysicianName", "StudyID"):
        assert keyword in answer


def test_series_and_instances_are_found_within_a_study_and_across_studies(
    network_a: Network, dicomweb: Callable[..., DICOMwebClient]
) -> None:
    clinician = StaffFactory(hospital=network_a.regional).user
    patient = PatientFactory(hospital=network_a.regional)
    ct = study_make(patient)
    study_uid = ct.study_instance_uid
    mr = dicom_for(patient, "MR_small.dcm", StudyInstanceUID=study_uid, SeriesNumber="7", BodyPartExamined="HEAD")
    store_now(patient, mr)
    other = study_make(patient, "US1_J2KR.dcm")
    client = dicomweb(clinician)

    series = client.search_for_series(study_uid)
    assert [Dataset.from_json(s).Modality for s in series] == ["CT", "MR"]
    mr_series = Dataset.from_json(series[1])
    assert (mr_series.SeriesNumber, mr_series.BodyPartExamined, mr_series.NumberOfSeriesRelatedInstances) == (
        7,
        "HEAD",
        1,
    )
    assert mr_series.StudyInstanceUID == study_uid and "PatientName" not in mr_series  # within the study
    assert _uids(client.search_for_series(study_uid, search_filters={"Modality": "MR"}), "0020000E") == [
        mr_series.SeriesInstanceUID
    ]
    everywhere = client.search_for_series(search_filters={"Modality": "US"})
    assert [Dataset.from_json(s).StudyInstanceUID for s in everywhere] == [other.study_instance_uid]
    assert "PatientName" in Dataset.from_json(everywhere[0])  # across studies, with the study's attributes

    (instance,) = client.search_for_instances(study_uid, mr_series.SeriesInstanceUID)
    answer = Dataset.from_json(instance)
    sent = pydicom.dcmread(io.BytesIO(mr))
    assert (answer.SOPInstanceUID, answer.SOPClassUID) == (sent.SOPInstanceUID, sent.SOPClassUID)
    assert (answer.Rows, answer.Columns, answer.NumberOfFrames, answer.InstanceNumber) == (
        64,
        64,
        1,
        sent.InstanceNumber,
    )
    assert answer.RetrieveURL.endswith(f"/series/{mr_series.SeriesInstanceUID}/instances/{sent.SOPInstanceUID}")
    assert "PhotometricInterpretation" not in answer
    with_all = Dataset.from_json(client.search_for_instances(study_uid, mr_series.SeriesInstanceUID, fields=["all"])[0])
    assert with_all.PhotometricInterpretation == "MONOCHROME2" and with_all.PatientID == patient.record_number
    in_study = client.search_for_instances(study_uid, search_filters={"SOPInstanceUID": sent.SOPInstanceUID})
    assert _uids(in_study, "00080018") == [sent.SOPInstanceUID]
    assert len(client.search_for_instances()) == 3
    assert _uids(client.search_for_instances(search_filters={"Modality": "US"}), "0020000D") == [
        other.study_instance_uid
    ]
    searches = AuditEntry.objects.filter(action="list", object_type="diagnostics.instance")
    assert searches.filter(patient_id=str(patient.pk)).count() == 3  # the three searches within the study


def test_a_search_costs_the_same_queries_for_two_studies_as_for_twelve(
    network_a: Network, login: Callable[[User], Client]
) -> None:
    client = login(StaffFactory(hospital=network_a.regional).user)
    patient = PatientFactory(hospital=network_a.regional)
    counted = []
    for total in (2, 12):
        while Study.objects.count() < total:
            study_make(patient)
        client.get("/dicom-web/studies")  # the session's first request settles who the user is
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/dicom-web/studies?includefield=all")
        assert response.status_code == 200 and len(response.json()) == total
        counted.append(len(queries))
    assert counted[0] == counted[1]


def test_search_parameters_that_cannot_be_understood_are_refused_or_named(
    network_a: Network, login: Callable[[User], Client]
) -> None:
    client = login(StaffFactory(hospital=network_a.regional).user)
    study_make(PatientFactory(hospital=network_a.regional))

    bad_date = client.get("/dicom-web/studies?StudyDate=2024-01-01")
    assert bad_date.status_code == 400
    assert bad_date.json()["detail"].startswith("StudyDate must be a date YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    assert client.get("/dicom-web/studies?limit=-1").json()["detail"].startswith("limit must be a whole number")
    ignored = client.get("/dicom-web/studies?OperatorsName=X&Modality=CT&fuzzymatching=true")
    assert ignored.status_code == 200 and len(ignored.json()) == 1
    assert "ignored: OperatorsName, Modality, fuzzymatching." in ignored["Warning"]
    assert client.get("/dicom-web/studies", HTTP_ACCEPT="application/dicom+xml").status_code == 406


# WADO-RS.


def test_metadata_frames_and_renderings_of_real_images(
    network_a: Network, dicomweb: Callable[..., DICOMwebClient]
) -> None:
    specialist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user
    patient = consultation_make(PatientFactory(hospital=network_a.regional)).patient  # Moscow is consulted
    ct_bytes, colour_bytes = dicom_for(patient), dicom_for(patient, "color3d_jpeg_baseline.dcm")
    ct = store_now(patient, ct_bytes).instance
    colour = store_now(patient, colour_bytes).instance
    client = dicomweb(specialist)
    study, series = ct.series.study.study_instance_uid, ct.series.series_instance_uid

    metadata = client.retrieve_instance_metadata(study, series, ct.sop_instance_uid)
    header = Dataset.from_json(metadata)
    sent = pydicom.dcmread(io.BytesIO(ct_bytes))
    assert (header.Rows, header.Columns, header.PatientID, header.SOPInstanceUID) == (
        128,
        128,
        patient.record_number,
        ct.sop_instance_uid,
    )
    assert "7FE00010" not in metadata  # pixel data comes as frames
    assert header.RescaleIntercept == sent.RescaleIntercept
    colour_series = colour.series
    (colour_header,) = client.retrieve_series_metadata(
        colour_series.study.study_instance_uid, colour_series.series_instance_uid
    )
    # Frames come decoded to RGB, interleaved, and the metadata says so.
    assert Dataset.from_json(colour_header).PhotometricInterpretation == "RGB"
    study_metadata = client.retrieve_study_metadata(study)
    assert {m["00080018"]["Value"][0] for m in study_metadata} == {ct.sop_instance_uid}

    (frame,) = client.retrieve_instance_frames(study, series, ct.sop_instance_uid, frame_numbers=[1])
    assert frame == pixel_array(io.BytesIO(ct_bytes), index=0).astype("<i2").tobytes()
    frames = client.retrieve_instance_frames(
        colour_series.study.study_instance_uid,
        colour_series.series_instance_uid,
        colour.sop_instance_uid,
        frame_numbers=[2, 120],
    )
    expected = [pixel_array(io.BytesIO(colour_bytes), index=i).tobytes() for i in (1, 119)]
    assert frames == expected and len(frames[0]) == 480 * 640 * 3

    def rendered(media_type: str, **params: str) -> Image.Image:
        data = client.retrieve_instance_rendered(
            study, series, ct.sop_instance_uid, media_types=(media_type,), params=params
        )
        return Image.open(io.BytesIO(data))

    jpeg = rendered("image/jpeg")
    assert (jpeg.format, jpeg.size) == ("JPEG", (128, 128))
    soft, bone = rendered("image/png", window="40,400"), rendered("image/png", window="300,1500,linear-exact")
    assert soft.format == "PNG" and soft.size == (128, 128)
    assert not np.array_equal(np.asarray(soft), np.asarray(bone))
    # The window applies to CT numbers: air (-1000 HU) is black in a soft-tissue window.
    values = pixel_array(io.BytesIO(ct_bytes)) * float(sent.RescaleSlope) + float(sent.RescaleIntercept)
    assert np.asarray(soft)[values < -200].max() == 0
    small = rendered("image/png", window="40,400,sigmoid", viewport="64,32")
    assert small.size == (32, 32)
    frame_two = client.retrieve_instance_frames_rendered(
        colour_series.study.study_instance_uid,
        colour_series.series_instance_uid,
        colour.sop_instance_uid,
        frame_numbers=[2],
        media_types=("image/jpeg",),
        params={"viewport": "320,320"},
    )
    assert Image.open(io.BytesIO(frame_two)).size == (320, 240)
    assert AuditEntry.objects.filter(action="view", patient_id=str(patient.pk)).count() == 10


def test_frames_and_renderings_refuse_what_cannot_be(network_a: Network, login: Callable[[User], Client]) -> None:
    client = login(StaffFactory(hospital=network_a.regional).user)
    study = study_make(PatientFactory(hospital=network_a.regional))
    instance = Instance.objects.get(series__study=study)
    base = f"/dicom-web/studies/{study.study_instance_uid}/series/{instance.series.series_instance_uid}"
    base += f"/instances/{instance.sop_instance_uid}"

    beyond = client.get(f"{base}/frames/1,2")
    assert beyond.status_code == 400
    assert beyond.json()["detail"] == "The image has 1 frame(s), numbered from 1; there is no frame 2."
    assert client.get(f"{base}/frames/one").status_code == 400
    assert client.get(f"{base}/rendered?window=40").status_code == 400
    assert client.get(f"{base}/rendered?viewport=0,10").status_code == 400
    assert client.get(f"{base}/rendered", HTTP_ACCEPT="image/gif").status_code == 406
    assert client.get(f"{base}/rendered?accept=image/png")["Content-Type"] == "image/png"
    assert client.get(base, HTTP_ACCEPT="application/json").status_code == 406


def test_a_kostroma_study_is_answered_in_tula_exactly_like_a_missing_one(
    network_a: Network, network_b: Network, dicomweb: Callable[..., DICOMwebClient]
) -> None:
    tula = StaffFactory(hospital=network_a.regional).user
    kostroma_patient = PatientFactory(hospital=network_b.regional)
    kostroma = study_make(kostroma_patient, AccessionNumber="KOS-1")
    instance = Instance.objects.get(series__study=kostroma)
    client = dicomweb(tula)

    assert client.search_for_studies() == []
    assert client.search_for_studies(search_filters={"PatientID": kostroma_patient.record_number}) == []
    assert client.search_for_series(search_filters={"SeriesInstanceUID": instance.series.series_instance_uid}) == []
    assert client.search_for_instances(search_filters={"SOPInstanceUID": instance.sop_instance_uid}) == []
    missing = generate_uid()
    for uids in (
        (kostroma.study_instance_uid, instance.series.series_instance_uid, instance.sop_instance_uid),
        (missing, missing, missing),
    ):
        path = f"studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}"
        for suffix in ("", "/metadata", "/frames/1", "/rendered"):
            answer = requests.get(f"{client.base_url}/{path}{suffix}", headers=client._session.headers, timeout=20)
            assert (answer.status_code, answer.json()) == (404, {"code": "not_found", "detail": "Not found."})
        for study_path in (f"studies/{uids[0]}", f"studies/{uids[0]}/series", f"studies/{uids[0]}/metadata"):
            answer = requests.get(f"{client.base_url}/{study_path}", headers=client._session.headers, timeout=20)
            assert (answer.status_code, answer.json()) == (404, {"code": "not_found", "detail": "Not found."})
    assert not AuditEntry.objects.filter(patient_id=str(kostroma_patient.pk)).exclude(action="create").exists()
