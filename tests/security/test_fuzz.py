"""Fuzzing the parsers that read what the outside world sends: DICOM files, HL7 messages, CSV exports and call
signalling. Each either reads the input or refuses it with its own error and a sentence; nothing else may
escape (an escaping exception is a 500, a dead worker or a dropped call). Bounded here; set
MHOSPITAL_FUZZ_EXAMPLES for a longer run. An input that ever broke one is kept in
tests/security/fuzz_inputs/ and replayed first."""

import json
import os
import random
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devices import hl7
from diagnostics import dicom
from diagnostics.lab_import import CsvRefused, csv_read
from tests.conftest import dicom_bytes

# pydicom warns at every damaged element it reads past; the outcome is what is checked.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EXAMPLES = int(os.environ.get("MHOSPITAL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
KEPT = Path(__file__).parent / "fuzz_inputs"
MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")

# Real inputs to mutate: a CT, a JPEG 2000 ultrasound, a multi-frame JPEG loop; an analyser's ORU; an export.
DICOM_SEEDS = [dicom_bytes(name) for name in ("CT_small.dcm", "US1_J2KR.dcm", "SC_rgb_jpeg_dcmtk.dcm", "image_dfl.dcm")]
ORU = (
    "MSH|^~\\&|BC5150|TULA_LAB|MHOSPITAL|MH|20261128101500+0300||ORU^R01^ORU_R01|MSG-1|P|2.5.1\r"
    "PID|1||MR-000001^^^TULA^MR||Ivanov^Ivan\r"
    "OBR|1||S-1|24323-8^Metabolic panel^LN|||20261128101500+0300\r"
    "OBX|1|NM|2345-7^Glucose^LN||7.9|mmol/L|3.9-6.1|H|||F\r"
    "OBX|2|NM|10839-9^Troponin I^LN||0.45|ng/mL|<0.04|HH|||F\r"
)
CSV = (
    b"record_number;test;value;unit;taken\r\n"
    b"MR-000001;Glucose;7.9;mmol/L;28.11.2026 10:15\r\n"
    b"MR-000001;HbA1c;5,1;%;28.11.2026 10:15\r\n"
)


def _kept(kind: str) -> list[bytes]:
    return sorted(path.read_bytes() for path in (KEPT / kind).glob("*")) if (KEPT / kind).is_dir() else []


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A real input with some bytes overwritten, some cut out, some inserted, and maybe its end cut off."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 12))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(("set", "cut", "insert", "interesting")))
        if action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:  # lengths and counts at their edges, where parsers overflow
            data[at : at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f"]))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(_mutated(DICOM_SEEDS))
def test_a_damaged_dicom_file_is_read_or_refused_with_a_reason(data: bytes) -> None:
    for kept in _kept("dicom"):
        _dicom_read(kept)
    _dicom_read(data)


def _dicom_read(data: bytes) -> None:
    try:
        header = dicom.header_read(data)
    except dicom.DicomInvalid as refusal:
        assert str(refusal)
        return
    assert header.sop_uid and header.study_uid and header.frames >= 1


@FUZZ
@given(st.one_of(_mutated([ORU.encode()]), st.binary(max_size=400)))
@example(b"MSH|^~\\&|" + b"|" * 20)
@example(b"MSH|^~\\&|A|B|C|D|20261128||ORU^R01|X|P|2.5\rOBX|1|NM|\\E\\\\F\\^^^^||")
def test_a_damaged_hl7_message_is_read_or_refused_with_a_reason(data: bytes) -> None:
    for kept in _kept("hl7"):
        _hl7_read(kept)
    _hl7_read(data)


def _hl7_read(data: bytes) -> None:
    text = hl7.text_of(data)
    try:
        read = hl7.oru_read(text, local=MOSCOW)
    except hl7.Hl7Refused as refusal:
        assert str(refusal)
        # Whatever was refused gets an ACK the analyser can read back.
        code, _control, _errors = hl7.ack_read(hl7.ack_build(header=refusal.header, code="AR"))
        assert code == "AR"
        return
    assert read is not None


@FUZZ
@given(st.one_of(_mutated([CSV]), st.binary(max_size=300)))
def test_a_damaged_csv_export_is_read_or_refused_with_a_reason(data: bytes) -> None:
    for kept in _kept("csv"):
        _csv_read(kept)
    _csv_read(data)


def _csv_read(data: bytes) -> None:
    try:
        rows = csv_read(data, max_rows=500)
    except CsvRefused as refusal:
        assert str(refusal)
        return
    assert all(row.row >= 1 for row in rows)


# Signalling: one socket of a live call sends a stream of strange messages; every one is answered or dropped,
# the peer receives only well-formed envelopes, and both sockets still answer a ping at the end.

# Every type but "ping", whose answer marks the end of the stream below.
KNOWN = ("invite", "ringing", "accept", "decline", "cancel", "hangup", "signal", "chat", "spam", None)


def _junk(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**63, 1e308, float("nan")])
    if kind == 2:
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x2FFFF)])) for _ in range(rng.randrange(40))
        )
    if kind == 3:
        return rng.choice(["", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", "candidate:1 1 udp 1 127.0.0.1 9 typ host"])
    if kind == 4:
        return rng.randrange(-(2**40), 2**40)
    if kind == 5:
        return rng.choice(KNOWN)
    if kind == 6:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["type", "v", "sdp", "candidate", "to", "body", "reason", "lifetime", "x"]): _junk(rng, depth + 1)
        for _ in range(rng.randrange(5))
    }


def _message(rng: random.Random) -> str:
    shape = rng.randrange(6)
    if shape == 0:
        return json.dumps(_junk(rng), allow_nan=True)
    if shape == 1:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(80)))
    message = {"v": rng.choice([1, 1, 1, 2, "1", None]), "type": rng.choice(KNOWN)}
    for _ in range(rng.randrange(4)):
        message[rng.choice(["sdp", "candidate", "body", "reason", "lifetime", "description", "x"])] = _junk(rng)
    return json.dumps(message, allow_nan=True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_strange_signalling_messages_are_answered_or_dropped_and_the_call_survives(answered, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.consultations.test_calls import _nothing_but_presence

    # The flood limit is tested on its own; here every message is read.
    settings.CALL_RATE_BURST = settings.CALL_RATE_PER_SECOND = 100_000
    specialist, clinician, _call = answered
    # The messages that once broke the socket: each is answered "malformed" and nothing reaches the peer.
    for kept in _kept("signalling"):
        await specialist.send_to(text_data=kept.decode())
        assert (await specialist.receive_json_from(timeout=5))["code"] == "malformed"
    assert await clinician.receive_nothing(timeout=0.3)

    rng = random.Random(int(os.environ.get("MHOSPITAL_FUZZ_SEED", "6")))
    for _ in range(min(EXAMPLES, 400)):
        await specialist.send_to(text_data=_message(rng) or " ")
    await specialist.send_json_to({"v": 1, "type": "ping"})
    replies = []
    while True:
        reply = await specialist.receive_json_from(timeout=30)
        if reply["type"] == "pong":
            break
        replies.append(reply)
    assert replies and all(reply.get("v") == 1 and isinstance(reply.get("type"), str) for reply in replies)
    assert any(reply["type"] == "error" for reply in replies)
    relayed = await _nothing_but_presence(clinician)
    assert all(isinstance(m, dict) and m.get("v") == 1 and isinstance(m.get("type"), str) for m in relayed)
    await clinician.send_json_to({"v": 1, "type": "ping"})
    assert (await clinician.receive_json_from(timeout=5))["type"] in ("pong", "presence", "hangup", "call")
