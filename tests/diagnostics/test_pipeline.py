"""The imaging pipeline with real files from real modalities: what is stored, refused, rendered, announced."""

import io
import time
import zlib

import pydicom
import pytest
from django.core.files.storage import default_storage
from PIL import Image
from pydicom.uid import DeflatedExplicitVRLittleEndian

from consultations.models import Consultation
from diagnostics import dicom, services
from diagnostics.dicom import DicomInvalid
from diagnostics.models import Instance, Study
from diagnostics.tasks import instance_process
from hospitals.events import hospital_group
from patients.models import Patient
from tests.conftest import Network, PatientFactory, consultation_make, dicom_bytes, dicom_for, need, store_now


def _store(patient: Patient, data: bytes) -> services.Stored:
    return store_now(patient, data)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("sample", "syntax"),
    [
        ("CT_small.dcm", "Explicit VR Little Endian"),
        ("RG1_UNCI.dcm", "Explicit VR Little Endian"),  # CR chest
        ("US1_J2KR.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
        ("RG1_J2KI.dcm", "JPEG 2000 Image Compression"),
        ("JPEG-LL.dcm", "JPEG Lossless, Non-Hierarchical, First-Order Prediction"),
        ("emri_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless Image Compression"),  # 10 frames
        ("OBXXXX1A_rle_2frame.dcm", "RLE Lossless"),  # ultrasound, palette colour, 2 frames
        ("examples_ybr_color.dcm", "JPEG Baseline (Process 1)"),  # ultrasound cine, 30 frames, YBR
        ("ExplVR_BigEnd.dcm", "Explicit VR Big Endian"),
    ],
)
def test_real_files_in_every_syntax_clinics_send_become_previews(sample: str, syntax: str, network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    data = dicom_for(patient, sample)
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    assert header.file_meta.TransferSyntaxUID.name.startswith(syntax)

    stored = _store(patient, data)

    instance = Instance.objects.get(pk=stored.instance.pk)
    assert instance.status == Instance.Status.READY, instance.error
    assert instance.previews == instance.frames == int(header.get("NumberOfFrames", 1))
    with default_storage.open(instance.preview_name(instance.frames)) as last:
        assert Image.open(last).size == (header.Columns, header.Rows)
    with default_storage.open(instance.thumbnail_name) as thumb:
        assert max(Image.open(thumb).size) <= 160
    # Stored once, under a name made from the content, never from a UID or a file name.
    assert instance.file.name.endswith(f"{instance.sha256}.dcm") and header.SOPInstanceUID not in instance.file.name
    with default_storage.open(instance.file.name) as kept:
        assert kept.read() == data


def test_the_study_is_indexed_from_the_header_and_filed_by_record_number(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional, record_number="TUL-77")
    data = dicom_for(patient, "US1_J2KR.dcm", StudyDescription="Kidneys", BodyPartExamined="KIDNEY")
    stored = services.instance_store(data=data, hospital_id=network_a.regional.pk, source="stow")
    study = Study.objects.get()
    assert study.patient == patient and study.description == "Kidneys" and study.modalities == "US"
    assert stored.instance.series.body_part == "KIDNEY" and stored.instance.rows == 480


def test_no_patient_with_the_record_number_is_refused_with_what_to_do(network_a: Network) -> None:
    stranger = Patient(record_number="NOBODY-1", family_name="Nemo", given_name="X")
    with pytest.raises(services.ImagingRefused, match="No patient with record number “NOBODY-1”"):
        services.instance_store(data=dicom_for(stranger), hospital_id=network_a.regional.pk, source="stow")
    assert not Study.objects.exists()


def test_the_same_bytes_twice_are_stored_once_and_other_bytes_under_the_same_uid_are_refused(
    network_a: Network,
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    first = dicom_for(patient, "CT_small.dcm", SOPInstanceUID="1.2.826.0.1.3680043.8.498.1")
    assert _store(patient, first).created
    again = _store(patient, first)
    assert not again.created and Instance.objects.count() == 1

    other = dicom_for(patient, "MR_small_RLE.dcm", SOPInstanceUID="1.2.826.0.1.3680043.8.498.1")
    with pytest.raises(services.InstanceConflict, match="already stored with different content"):
        _store(patient, other)
    kept = Instance.objects.get()
    with default_storage.open(kept.file.name) as stored:
        assert stored.read() == first


def test_the_same_image_from_another_sender_is_not_a_conflict(network_a: Network) -> None:
    """A USB stick's copy and the modality's push differ only in the file meta header."""
    patient = PatientFactory(hospital=network_a.regional)
    original = dicom_for(patient, "CT_small.dcm")
    resent = pydicom.dcmread(io.BytesIO(original))
    resent.file_meta.ImplementationVersionName = "OTHER_SENDER"
    resent.file_meta.SourceApplicationEntityTitle = "TULA_US1"
    out = io.BytesIO()
    resent.save_as(out, enforce_file_format=True)
    assert out.getvalue() != original

    _store(patient, original)
    assert not _store(patient, out.getvalue()).created
    without_group_length = out.getvalue()[:132] + out.getvalue()[144:]  # a sender that leaves (0002,0000) out
    assert not _store(patient, without_group_length).created
    assert Instance.objects.count() == 1


def test_a_study_cannot_be_split_between_two_patients(network_a: Network) -> None:
    one, two = PatientFactory(hospital=network_a.regional), PatientFactory(hospital=network_a.regional)
    _store(one, dicom_for(one, StudyInstanceUID="1.2.826.0.1.3680043.8.498.2"))
    with pytest.raises(services.ImagingRefused, match="already filed under another patient"):
        _store(two, dicom_for(two, StudyInstanceUID="1.2.826.0.1.3680043.8.498.2"))
    assert Instance.objects.count() == 1


def _header_edited(data: bytes, **changes: object) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in changes.items():
        setattr(dataset, keyword, value)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _damaged_in_a_sequence(data: bytes, *, undefined_length: bool) -> bytes:
    """The file with a sequence whose item holds a Number of Slices (US) one byte too long: a damaged value
    that only converting the item's elements finds."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    item = pydicom.Dataset()
    item.NumberOfSlices = 5
    dataset.ReferencedImageSequence = [item]
    dataset["ReferencedImageSequence"].is_undefined_length = undefined_length
    item.is_undefined_length_sequence_item = undefined_length
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    value = b"\x54\x00\x81\x00US\x02\x00\x05\x00"
    assert out.getvalue().count(value) == 1
    longer = b"\x54\x00\x81\x00US\x03\x00\x05\x00\x00"
    damaged = out.getvalue().replace(value, longer)
    if not undefined_length:  # the item and the sequence hold one byte more too
        sequence = b"\x08\x00\x40\x11SQ\x00\x00"
        at = damaged.index(sequence) + len(sequence)
        length = int.from_bytes(damaged[at : at + 4], "little")
        item_length = int.from_bytes(damaged[at + 8 : at + 12], "little")
        damaged = (
            damaged[:at]
            + (length + 1).to_bytes(4, "little")
            + damaged[at + 4 : at + 8]
            + (item_length + 1).to_bytes(4, "little")
            + damaged[at + 12 :]
        )
    return damaged


def _deflate_bomb(data: bytes) -> bytes:
    """The file in the deflated transfer syntax, with 64 MB of zeros after its pixels that deflate to 64 KB."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    deflated = out.getvalue()
    start = len(deflated) - len(dicom.dataset_bytes(deflated))
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    size = 64 * 2**20
    packed = [
        packer.compress(zlib.decompress(deflated[start:], -zlib.MAX_WBITS)),
        packer.compress(b"\xe1\x7f\x10\x10OB\x00\x00" + size.to_bytes(4, "little")),  # a private (7FE1,1010) OB
        *(packer.compress(bytes(2**20)) for _ in range(size // 2**20)),
        packer.flush(),
    ]
    return deflated[:start] + b"".join(packed)


def _bad_files(patient: Patient) -> dict[str, tuple[bytes, str]]:
    good = dicom_for(patient, "CT_small.dcm")
    compressed = dicom_for(patient, "US1_J2KR.dcm")
    return {
        "not DICOM, renamed .dcm": (b"%PDF-1.7 a lab printout", "lacks the 128-byte preamble"),
        "no preamble": (good[132:], "lacks the 128-byte preamble"),
        "a program in the preamble": (b"MZ\x90\x00" + good[4:], "preamble holds a program"),
        "truncated pixel data": (good[:-5000], "pixel data is cut short"),
        "truncated compressed pixel data": (compressed[:-20000], "compressed pixel data"),
        "gigabytes to decode": (
            _header_edited(good, Rows=60000, Columns=60000, NumberOfFrames="100"),
            "would need",
        ),
        "a damaged value in a sequence": (_damaged_in_a_sequence(good, undefined_length=False), "cannot be read"),
        "a damaged value in a sequence of undefined length": (
            _damaged_in_a_sequence(good, undefined_length=True),
            "cannot be read",
        ),
        "a deflate bomb": (_deflate_bomb(good), "decompression bomb"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not DICOM, renamed .dcm",
        "no preamble",
        "a program in the preamble",
        "truncated pixel data",
        "truncated compressed pixel data",
        "gigabytes to decode",
        "a damaged value in a sequence",
        "a damaged value in a sequence of undefined length",
        "a deflate bomb",
    ],
)
def test_bad_files_are_refused_with_the_reason_and_leave_nothing_behind(case: str, network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    data, reason = _bad_files(patient)[case]
    with pytest.raises(DicomInvalid, match=reason):
        _store(patient, data)
    assert not Instance.objects.exists() and not Study.objects.exists()
    assert not default_storage.exists("dicom")


def test_an_image_no_decoder_can_read_fails_with_the_reason_and_can_be_tried_again(
    network_a: Network, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    # 12-bit JPEG Extended with a damaged scan header: pydicom's own sample of an undecodable file.
    stored = _store(patient, dicom_bytes("JPEG-lossy.dcm"))
    instance = Instance.objects.get(pk=stored.instance.pk)
    assert instance.status == Instance.Status.FAILED and "cannot be decoded" in instance.error

    with django_capture_on_commit_callbacks(execute=True):
        assert services.instance_reprocess(instance)
    instance.refresh_from_db()
    assert instance.status == Instance.Status.FAILED and instance.attempts == 2  # tried again, inline
    ready = _store(patient, dicom_for(patient))
    assert not services.instance_reprocess(ready.instance)  # only failed images are tried again


def test_a_ready_image_is_announced_to_its_hospital_and_to_the_consulted_hospital(
    network_a: Network, django_capture_on_commit_callbacks, layer_listener
) -> None:  # type: ignore[no-untyped-def]
    consultation = consultation_make(PatientFactory(hospital=network_a.regional))
    tula = layer_listener.channel(hospital_group(network_a.regional.pk))
    moscow = layer_listener.channel(hospital_group(network_a.central.pk))

    with django_capture_on_commit_callbacks(execute=True):
        stored = _store(consultation.patient, dicom_for(consultation.patient))

    for channel in (tula, moscow):
        message = layer_listener.receive(channel)
        assert message["payload"]["kind"] == "study"
        assert message["payload"]["id"] == stored.instance.series.study_id
        assert message["payload"]["instances"]["ready"] == 1


def test_a_real_worker_renders_what_was_stored(network_a: Network, celery_worker) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    stored = _store(patient, dicom_for(patient, "examples_ybr_color.dcm"))
    assert stored.instance.status == Instance.Status.QUEUED  # the request path only stored it
    instance = _wait_for(stored.instance.pk, Instance.Status.READY)
    assert instance.previews == 30 and instance.attempts == 1


def test_a_real_worker_renders_every_image_of_a_batch(network_a: Network, celery_worker) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    files = [dicom_for(patient, name) for name in ("CT_small.dcm", "US1_J2KR.dcm", "MR_small.dcm")]
    outcomes = services.instances_store(
        files=[(data, dicom.header_read(data)) for data in files],
        hospital_id=patient.hospital_id,
        source=Instance.Source.STOW,
    )
    assert all(isinstance(outcome, services.Stored) and outcome.created for outcome in outcomes)
    for outcome in outcomes:
        assert isinstance(outcome, services.Stored)
        assert _wait_for(outcome.instance.pk, Instance.Status.READY).previews == 1


def test_a_worker_killed_mid_task_loses_nothing_and_the_image_ends_ready_once(
    network_a: Network, celery_worker, settings
) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    stored = _store(patient, dicom_for(patient, "color3d_jpeg_baseline.dcm"))  # 120 frames: long enough
    _wait_for(stored.instance.pk, Instance.Status.PROCESSING)
    celery_worker.kill()
    assert Instance.objects.get(pk=stored.instance.pk).status == Instance.Status.PROCESSING

    celery_worker.start()
    settings.IMAGING_STUCK_MINUTES = 0  # the periodic sweep, as it runs ten minutes later
    assert services.instances_requeue_stuck() == 1
    instance = _wait_for(stored.instance.pk, Instance.Status.READY, timeout=120)
    assert instance.previews == 120 and instance.attempts == 2
    # The broker may still hand the first message back: it finds the work done and changes nothing.
    assert instance_process.apply(args=[instance.pk]).get() is False
    assert Instance.objects.filter(series__study__patient=patient).count() == 1
    assert Instance.objects.get(pk=instance.pk).attempts == 2


def _wait_for(pk: int, status: str, timeout: float = 60) -> Instance:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        instance = Instance.objects.get(pk=pk)
        if instance.status == status:
            return instance
        assert instance.status != Instance.Status.FAILED, instance.error
        time.sleep(0.05)
    raise AssertionError(f"instance {pk} did not reach {status} within {timeout} s (it is {instance.status})")


@pytest.mark.django_db(transaction=True)
def test_the_worker_announces_ready_to_an_open_page(network_a: Network, celery_worker) -> None:  # type: ignore[no-untyped-def]
    """Across processes: the worker's event reaches a socket of the clinician's page (needs Redis)."""
    from django.conf import settings

    need("Redis (REDIS_URL)", bool(settings.REDIS_URL))
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from hospitals.models import Staff
    from mhospital.asgi import application
    from tests.conftest import StaffFactory, verified_login

    clinician = StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user
    session = verified_login(Client(), clinician).session.session_key
    patient = PatientFactory(hospital=network_a.regional)

    async def listen() -> dict[str, object]:
        socket = WebsocketCommunicator(
            application,
            "/ws/notifications/",
            headers=[
                (b"origin", b"http://testserver"),
                (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()),
            ],
        )
        connected, _ = await socket.connect()
        assert connected
        from asgiref.sync import sync_to_async

        await sync_to_async(_store)(patient, dicom_for(patient))
        while True:
            message = await socket.receive_json_from(timeout=60)
            if message.get("kind") == "study" and message["instances"]["ready"] == 1:
                await socket.disconnect()
                return message

    message = async_to_sync(listen)()
    assert message["patient"] == patient.pk
    assert Consultation.objects.count() == 0  # the home hospital hears of it without any consultation
