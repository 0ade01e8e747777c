"""Analysers that speak only MLLP send over a TCP connection, framed, and wait for each framed ACK: only a
registered active device's HL7 sender is taken, and nothing a peer sends takes the listener down."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from devices import services
from devices.hl7 import ack_read
from devices.mllp import END, START, MllpListener
from devices.models import Device, validate_hl7_sender
from diagnostics.models import LabAlert, LabMessage, Observation
from hospitals.models import AuditEntry, User
from tests.conftest import Network, PatientFactory, database_url
from tests.devices.test_hl7 import GLUCOSE, TROPONIN, oru

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_reference")]


@pytest.fixture
def listener(analyser: Device) -> Iterator[MllpListener]:
    """The listener on an ephemeral port of 127.0.0.1, with the analyser registered as BC5150^TULA_LAB."""
    analyser.hl7_sender = "BC5150^TULA_LAB"
    analyser.save()
    server = MllpListener(host="127.0.0.1", port=0, max_frame=64 * 1024, idle_timeout=10, threads=2)
    server.start()
    yield server
    server.stop(grace=2)


def _connect(listener: MllpListener) -> socket.socket:
    return socket.create_connection(("127.0.0.1", listener.port), timeout=10)


def _receive(sock: socket.socket) -> str:
    """One framed answer, as the analyser reads it."""
    data = b""
    while not data.endswith(END):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    assert data.startswith(START) and data.count(START) == 1
    return data[1 : -len(END)].decode()


def _send(sock: socket.socket, message: str | bytes) -> tuple[str, str, list[str]]:
    sock.sendall(START + (message.encode() if isinstance(message, str) else message) + END)
    return ack_read(_receive(sock))


def test_two_messages_on_one_connection_are_stored_and_each_acknowledged(
    listener: MllpListener, network_a: Network
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    with _connect(listener) as sock:
        assert _send(sock, oru(patient.record_number, GLUCOSE, control_id="M-1")) == ("AA", "M-1", [])
        assert _send(sock, oru(patient.record_number, TROPONIN, control_id="M-2")) == ("AA", "M-2", [])

    assert LabMessage.objects.filter(status="done", device_id=listener_device(network_a).pk).count() == 2
    assert {o.test.short_name for o in Observation.objects.filter(patient=patient)} == {"GLU", "hs-TnI"}
    assert LabAlert.objects.get().patient == patient  # the troponin is critical


def test_a_batch_over_mllp_is_taken_from_the_sender_its_messages_name(
    listener: MllpListener, network_a: Network
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    messages = [oru(patient.record_number, GLUCOSE, control_id=f"MB-{n}").strip("\r") for n in (1, 2)]
    batch = "\r".join(["BHS|^~\\&|LIS|TULA_LAB|MHOSPITAL|MH", *messages, "BTS|2"]) + "\r"
    with _connect(listener) as sock:
        sock.sendall(START + batch.encode() + END)
        answer = _receive(sock)

    assert answer.startswith("BHS|") and answer.rstrip("\r").endswith("BTS|2")
    assert [line.split("|")[1:3] for line in answer.split("\r") if line.startswith("MSA|")] == [
        ["AA", "MB-1"],
        ["AA", "MB-2"],
    ]
    assert LabMessage.objects.filter(device_id=listener_device(network_a).pk).count() == 2


def listener_device(network: Network) -> Device:
    return Device.objects.get(hospital=network.regional, hl7_sender="BC5150^TULA_LAB")


def test_garbage_is_answered_ar_and_the_connection_goes_on(listener: MllpListener, network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    with _connect(listener) as sock:
        code, _control_id, errors = _send(sock, b"\x00\xff not hl7 at all \x1c")
        assert code == "AR" and "must begin with an MSH segment" in errors[0]
        sock.sendall(b"\r\n noise between frames \r\n")  # skipped
        # A message split across packets, the way a slow serial-to-TCP bridge sends it.
        framed = START + oru(patient.record_number, GLUCOSE, control_id="SPLIT-1").encode() + END
        for piece in (framed[:7], framed[7:50], framed[50:]):
            sock.sendall(piece)
        assert ack_read(_receive(sock))[:2] == ("AA", "SPLIT-1")
        assert _send(sock, "MSH|^~\\&|BC5150|TULA_LAB|MH|MH|2026||ADT^A01|A-9|P|2.5")[:2] == ("AR", "A-9")
    assert Observation.objects.get().patient == patient


def test_an_unknown_or_deactivated_sender_is_refused_and_audited(
    listener: MllpListener, network_a: Network, tula_admin: User
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    stranger = oru(patient.record_number, GLUCOSE).replace("BC5150|TULA_LAB", "XS1000|ELSEWHERE")
    with _connect(listener) as sock:
        code, control_id, errors = _send(sock, stranger)
        assert (code, control_id) == ("AR", "MSG-1")
        assert "No active device is registered as the HL7 sender “XS1000^ELSEWHERE”" in errors[0]

        services.device_deactivate(device=listener_device(network_a), by=tula_admin)
        assert _send(sock, oru(patient.record_number, GLUCOSE))[0] == "AR"

    assert not LabMessage.objects.exists()
    assert AuditEntry.objects.filter(action="login_failure", detail__contains="XS1000^ELSEWHERE").exists()


def test_an_oversized_frame_is_refused_and_the_connection_closed(listener: MllpListener, network_a: Network) -> None:
    with _connect(listener) as sock:
        sock.sendall(START + oru("TUL-1", *[GLUCOSE] * 2000, control_id="BIG-1").encode())  # no end yet
        code, control_id, errors = ack_read(_receive(sock))
        assert (code, control_id) == ("AR", "BIG-1") and "larger than 65536 bytes" in errors[0]
        assert sock.recv(10) == b""  # closed
    with _connect(listener) as sock:  # the listener itself goes on
        assert _send(sock, oru("TUL-1", GLUCOSE, control_id="AFTER-1"))[:2] == ("AA", "AFTER-1")


def test_mllp_listen_serves_until_sigterm(listener: MllpListener, network_a: Network, tmp_path: Path) -> None:
    """The command as an operator runs it: it names who may send, answers over MLLP, and stops on SIGTERM."""
    env = {**os.environ, "DATABASE_URL": database_url(), "MHOSPITAL_VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mllp_listen", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = process.stdout.readline()
        assert "Allowed to send: BC5150^TULA_LAB (Tula Regional Hospital)." in started, started
        port = int(started.split("127.0.0.1:")[1].split(".")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert _send(sock, "garbage")[0] == "AR"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "MLLP listener stopped." in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_an_hl7_sender_is_checked_and_unique(analyser: Device, network_a: Network) -> None:
    from django.core.exceptions import ValidationError

    from devices.forms import DeviceForm

    for wrong in ("BC|5150", "A^B^C", "^TULA", "with space"):
        with pytest.raises(ValidationError):
            validate_hl7_sender(wrong)
    analyser.hl7_sender = "BC5150^TULA_LAB"
    analyser.save()
    other = Device.objects.create(hospital=network_a.regional, name="Second analyser", kind="lab_analyser")
    data = {"name": other.name, "kind": other.kind, "hl7_sender": "BC5150^TULA_LAB"}
    form = DeviceForm(data=data, instance=other)
    assert not form.is_valid() and "add ^ and the facility" in form.errors["hl7_sender"][0]


def test_the_command_refuses_a_port_it_cannot_listen_on(listener: MllpListener) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r"Cannot listen on 127\.0\.0\.1"):
        call_command("mllp_listen", host="127.0.0.1", port=listener.port)
