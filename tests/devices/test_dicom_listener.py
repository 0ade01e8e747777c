"""The DICOM C-STORE listener, over a real network connection: pynetdicom (and dcmtk, when installed) as
the modality, the listener in background threads, the imaging pipeline inline."""

import io
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import MRImageStorage, Verification  # type: ignore[attr-defined]

from devices import services
from devices.dicom_listener import listener_start, listener_stop
from devices.models import Device
from diagnostics.models import Instance, Study
from hospitals.models import AuditEntry
from tests.conftest import Network, PatientFactory, database_url, dicom_for, need

pytestmark = pytest.mark.django_db(transaction=True)  # the listener's threads must see the test's rows

ROOT = Path(__file__).resolve().parents[2]
LISTENER_AE = "MHOSPITAL"


@pytest.fixture
def device(network_a: Network) -> Device:
    return Device.objects.create(
        hospital=network_a.regional, name="Portable ultrasound 1", kind=Device.Kind.ULTRASOUND, ae_title="TULA_US1"
    )


@pytest.fixture
def listener(device: Device) -> Iterator[int]:
    """A running listener on a free port of 127.0.0.1; yields the port."""
    server = listener_start(host="127.0.0.1", port=0, ae_title=LISTENER_AE)
    yield server.server_address[1]
    listener_stop(server, grace=5)


def associate(
    port: int, *, calling: str = "TULA_US1", called: str = LISTENER_AE, files: tuple[bytes, ...] = ()
) -> Association:
    """Open an association as a modality would, proposing each file's SOP class in the file's own syntax."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120  # the pipeline runs inline in the listener
    ae.add_requested_context(Verification)
    for data in files:
        dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    return ae.associate("127.0.0.1", port, ae_title=called)


def send(port: int, *files: bytes, calling: str = "TULA_US1") -> list[Dataset]:
    """C-STORE each file in one association; the response statuses in order."""
    assoc = associate(port, calling=calling, files=files)
    assert assoc.is_established
    try:
        return [assoc.send_c_store(pydicom.dcmread(io.BytesIO(data))) for data in files]
    finally:
        assoc.release()


def stored_file(instance: Instance) -> pydicom.FileDataset:
    with instance.file.open("rb") as stored:
        return pydicom.dcmread(io.BytesIO(stored.read()))


def test_c_echo_from_a_registered_device_succeeds_and_marks_it_seen(listener: int, device: Device) -> None:
    assoc = associate(listener)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    device.refresh_from_db()
    assert device.last_seen_at is not None


def test_a_study_sent_by_the_device_is_filed_under_the_patient_of_its_hospital_and_becomes_ready(
    listener: int, device: Device, network_a: Network
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    study_uid, series_uid = generate_uid(), generate_uid()
    files = (
        dicom_for(patient, "US1_J2KR.dcm", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid),
        dicom_for(patient, "US1_J2KR.dcm", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid),
    )

    statuses = send(listener, *files)

    assert [s.Status for s in statuses] == [0x0000, 0x0000]
    study = Study.objects.get(patient=patient)
    assert study.study_instance_uid == study_uid
    assert study.hospital_id == network_a.regional.pk
    instances = Instance.objects.filter(series__study=study)
    assert instances.count() == 2
    assert {i.status for i in instances} == {Instance.Status.READY}
    assert {i.source for i in instances} == {Instance.Source.C_STORE}
    assert all(i.previews == 1 for i in instances)
    entries = AuditEntry.objects.filter(action="create", object_type="diagnostics.instance", outcome="success")
    assert entries.count() == 2
    assert all("TULA_US1" in e.detail and f"device {device.pk}" in e.detail for e in entries)
    assert {e.patient_id for e in entries} == {str(patient.pk)}


def test_an_unknown_calling_ae_title_is_rejected_and_the_refusal_audited(listener: int) -> None:
    assoc = associate(listener, calling="STRANGER")

    assert assoc.is_rejected and not assoc.is_established
    rejection = assoc.acceptor.primitive
    assert (rejection.result, rejection.result_source, rejection.diagnostic) == (0x01, 0x01, 0x03)
    entry = AuditEntry.objects.get(action="login_failure")
    assert entry.outcome == "denied"
    assert "'STRANGER' is not on the allow-list" in entry.detail


def test_an_inactive_device_is_rejected(listener: int, device: Device) -> None:
    device.active = False
    device.save()

    assoc = associate(listener)

    assert assoc.is_rejected
    assert assoc.acceptor.primitive.diagnostic == 0x03
    entry = AuditEntry.objects.get(action="login_failure")
    assert entry.object_id == str(device.pk)
    assert "inactive" in entry.detail


def test_a_device_of_an_inactive_hospital_is_rejected(listener: int, device: Device) -> None:
    device.hospital.is_active = False
    device.hospital.save()

    assert associate(listener).is_rejected


def test_an_association_to_another_called_ae_title_is_rejected(listener: int, device: Device) -> None:
    assoc = associate(listener, called="SOMEONE_ELSE")

    assert assoc.is_rejected
    assert assoc.acceptor.primitive.diagnostic == 0x07


def test_images_of_a_patient_not_in_the_devices_hospital_fail_with_the_reason_and_nothing_is_stored(
    listener: int, device: Device, network_b: Network
) -> None:
    stranger = PatientFactory(hospital=network_b.regional, record_number="KOS-777")  # another hospital's record

    (status,) = send(listener, dicom_for(stranger, "CT_small.dcm"))

    assert status.Status == services.REFUSED_NO_PATIENT
    assert status.ErrorComment == "No patient with record number KOS-777"
    assert not Instance.objects.exists() and not Study.objects.exists()
    entry = AuditEntry.objects.get(action="create")
    assert entry.outcome == "denied"
    assert "TULA_US1" in entry.detail and "KOS-777" in entry.detail


def test_the_same_instance_sent_twice_is_stored_once_and_succeeds_both_times(
    listener: int, device: Device, network_a: Network
) -> None:
    data = dicom_for(PatientFactory(hospital=network_a.regional), "CT_small.dcm")

    assert send(listener, data)[0].Status == 0x0000
    assert send(listener, data)[0].Status == 0x0000

    assert Instance.objects.count() == 1
    details = list(AuditEntry.objects.filter(action="create").order_by("id").values_list("detail", flat=True))
    assert len(details) == 2 and "stored before" in details[1]


def test_the_same_uid_with_other_content_fails_and_the_stored_image_is_kept(
    listener: int, device: Device, network_a: Network
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    uid = generate_uid()
    send(listener, dicom_for(patient, "CT_small.dcm", SOPInstanceUID=uid, SeriesDescription="first"))
    kept = Instance.objects.get()

    (status,) = send(listener, dicom_for(patient, "CT_small.dcm", SOPInstanceUID=uid, SeriesDescription="second"))

    assert status.Status == services.REFUSED_CONFLICT
    assert "already stored with other content" in status.ErrorComment
    assert Instance.objects.get().sha256 == kept.sha256
    assert stored_file(kept).SeriesDescription == "first"


def test_a_damaged_image_fails_with_the_reason_and_the_association_goes_on(
    listener: int, device: Device, network_a: Network
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    damaged = pydicom.dcmread(io.BytesIO(dicom_for(patient, "CT_small.dcm")))
    damaged.PixelData = damaged.PixelData[:1000]
    out = io.BytesIO()
    damaged.save_as(out, enforce_file_format=True)
    good = dicom_for(patient, "CT_small.dcm")

    statuses = send(listener, out.getvalue(), good)

    assert statuses[0].Status == services.CANNOT_UNDERSTAND
    assert statuses[0].ErrorComment.startswith("The pixel data is cut short")
    assert statuses[1].Status == 0x0000
    assert Instance.objects.get().sop_instance_uid == pydicom.dcmread(io.BytesIO(good)).SOPInstanceUID


def test_a_device_deactivated_during_its_association_can_send_no_more(
    listener: int, device: Device, network_a: Network
) -> None:
    data = dicom_for(PatientFactory(hospital=network_a.regional), "CT_small.dcm")
    assoc = associate(listener, files=(data,))
    assert assoc.is_established
    Device.objects.filter(pk=device.pk).update(active=False)

    status = assoc.send_c_store(pydicom.dcmread(io.BytesIO(data)))
    assoc.release()

    assert status.Status == services.NOT_AUTHORISED
    assert not Instance.objects.exists()


@pytest.mark.parametrize(
    ("name", "syntax", "frames"),
    [
        ("color3d_jpeg_baseline.dcm", "1.2.840.10008.1.2.4.50", 120),  # ultrasound cine, JPEG baseline
        ("US1_J2KR.dcm", "1.2.840.10008.1.2.4.90", 1),  # ultrasound, JPEG 2000 lossless
        ("JPEG-LL.dcm", "1.2.840.10008.1.2.4.70", 1),  # JPEG lossless
        ("JPEGLSNearLossless_08.dcm", "1.2.840.10008.1.2.4.81", 1),  # JPEG-LS
        ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5", 1),  # RLE
    ],
)
def test_compressed_images_arrive_intact_in_their_own_transfer_syntax(
    listener: int, device: Device, network_a: Network, name: str, syntax: str, frames: int
) -> None:
    data = dicom_for(PatientFactory(hospital=network_a.regional), name)
    sent = pydicom.dcmread(io.BytesIO(data))
    assert sent.file_meta.TransferSyntaxUID == syntax

    (status,) = send(listener, data)

    assert status.Status == 0x0000
    instance = Instance.objects.get()
    assert instance.transfer_syntax_uid == syntax
    assert instance.status == Instance.Status.READY, instance.error
    assert instance.previews == frames
    assert stored_file(instance).PixelData == sent.PixelData  # not one byte recompressed


def test_a_data_set_that_is_not_of_the_requested_sop_class_is_refused(device: Device, network_a: Network) -> None:
    data = dicom_for(PatientFactory(hospital=network_a.regional), "CT_small.dcm")

    receipt = services.dicom_instance_receive(
        calling_ae_title="TULA_US1",
        data=data,
        sop_class_uid=MRImageStorage,
        sop_instance_uid=pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID,
        peer="127.0.0.1:4242",
    )

    assert receipt.status == services.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert not Instance.objects.exists()


# dcmtk: the tools a radiographer uses to test a modality link.


def test_dcmtk_echoscu_and_dcmsend_send_a_study(
    listener: int, device: Device, network_a: Network, tmp_path: Path
) -> None:
    need("dcmtk (apt-get install dcmtk)", shutil.which("dcmsend") is not None and shutil.which("echoscu") is not None)
    patient = PatientFactory(hospital=network_a.regional)
    study_uid = generate_uid()
    for number, name in enumerate(["US1_J2KR.dcm", "CT_small.dcm", "color3d_jpeg_baseline.dcm"]):
        (tmp_path / f"{number}.dcm").write_bytes(dicom_for(patient, name, StudyInstanceUID=study_uid))
    address = ["127.0.0.1", str(listener)]

    echo = subprocess.run(["echoscu", "-aet", "TULA_US1", "-aec", LISTENER_AE, *address], capture_output=True)
    refused = subprocess.run(["echoscu", "-aet", "STRANGER", "-aec", LISTENER_AE, *address], capture_output=True)
    # dcmsend proposes each file's own transfer syntax (storescu would propose uncompressed ones only).
    files = sorted(map(str, tmp_path.glob("*.dcm")))
    store = subprocess.run(
        ["dcmsend", "-to", "120", "-aet", "TULA_US1", "-aec", LISTENER_AE, *address, *files],
        capture_output=True,
        text=True,
    )

    assert echo.returncode == 0, echo.stderr
    assert refused.returncode != 0
    assert store.returncode == 0, store.stderr
    study = Study.objects.get(patient=patient, study_instance_uid=study_uid)
    instances = Instance.objects.filter(series__study=study)
    assert instances.count() == 3
    assert {i.status for i in instances} == {Instance.Status.READY}


# The management command, as `make run` and the compose service start it.


_output: dict[int, "queue.Queue[str | None]"] = {}


def _line_with(process: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    """The first line of the process's output that holds `text` (log lines come in between). A thread reads
    the pipe: select() on a buffered pipe misses lines already read ahead into the buffer."""
    assert process.stdout is not None
    if process.pid not in _output:
        lines: queue.Queue[str | None] = queue.Queue()
        _output[process.pid] = lines

        def pump(stream: IO[str] = process.stdout) -> None:
            for line in stream:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = _output[process.pid].get(timeout=left)
        except queue.Empty:
            break
        assert line is not None, f"the listener exited before printing {text!r}"
        if text in line:
            return line
    raise AssertionError(f"the listener did not print {text!r} within {timeout} s")


def test_dicom_listen_serves_until_sigterm_and_lets_an_open_association_finish(device: Device, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": database_url(), "MHOSPITAL_VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dicom_listen", "--host", "127.0.0.1", "--port", "0", "--grace", "20"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = _line_with(process, f"AE title {LISTENER_AE} on 127.0.0.1:")
        assert "Allowed to send: TULA_US1 (Tula Regional Hospital)." in started, started
        port = int(started.split("127.0.0.1:")[1].split(".")[0])
        open_assoc = associate(port)
        assert open_assoc.is_established

        process.send_signal(signal.SIGTERM)
        _line_with(process, "stopping")

        assert not associate(port).is_established  # no new associations
        assert open_assoc.send_c_echo().Status == 0x0000  # the open one goes on
        open_assoc.release()
        _line_with(process, "DICOM listener stopped.")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
