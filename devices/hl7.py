"""HL7 v2 as analysers speak it: an ORU^R01 read into the lab pipeline's results, and the ACK written back.

Reading follows what analysers actually send rather than the letter of one version (2.3 to 2.8): segments
end with \\r, \\n or \\r\\n; the separators are the message's own (MSH-1, MSH-2); text is UTF-8, or what MSH-18
names, else Windows-1251 (Russian analysers). One message may carry several patients (PID, then its OBR and
OBX groups). For each OBX:

- the test is OBX-3 (code^name^system); a local code with a LOINC alternate (OBX-3.4–6, system `LN`) is
  read as the LOINC code;
- the value is OBX-5 (a structured numeric `<^0.01` becomes `<0.01`), the unit OBX-6, the range OBX-7, the
  flag OBX-8;
- the time is OBX-14, else the OBR-7 of its OBR; without an offset it is the device's hospital's local time;
- the status OBX-11: F, C, P, R, S, U or none are results; I (pending), X (cannot be obtained) and N (not
  asked) carry no result and are passed over; D (delete) and W (wrong) ask to withdraw a result sent earlier,
  which a device may not do (a clinician may have acted on it): they are refused, so the ACK says so.

Whatever a row gets wrong costs only that row (a `Problem`, reported in the ACK's ERR segments); a message
that is not a readable ORU^R01 with a control id is refused whole (`Hl7Refused`, answered AR).
"""

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TypeAlias

import hl7
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from diagnostics.labs import Problem, ResultIn

CONTENT_TYPE = "x-application/hl7-v2+er7"
MEDIA_TYPES = (CONTENT_TYPE, "application/hl7-v2", "application/hl7-v2+er7", "text/plain")
ENCODING_CHARACTERS = "^~\\&"

# MSH-18 values analysers use, as Python codecs; a message that is not UTF-8 and names none is Windows-1251.
_CHARSETS = {
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/1": "latin-1",
    "8859/5": "iso8859-5",
    "CP1251": "cp1251",
    "WINDOWS-1251": "cp1251",
    "ASCII": "ascii",
}
# Where each field a problem names sits in an OBX, and the HL7 error code (table 0357) it earns.
_OBX_FIELDS = {
    "code": (3, "101"),
    "value": (5, "102"),
    "unit": (6, "102"),
    "observed_at": (14, "102"),
    "status": (11, "207"),
}
_ERROR_NAMES = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "207": "Application internal error",
}
_NO_RESULT = {"I", "X", "N"}
NOT_HL7 = gettext_lazy("This is not an HL7 v2 message: it must begin with an MSH segment such as “MSH|^~\\&|…”.")
_WITHDRAWN = {"D", "W"}


@dataclass(frozen=True)
class Header:
    """What the MSH says about a message: who sent it to whom, its control id, its type."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    message_type: str = ""
    trigger: str = ""
    processing_id: str = ""
    version: str = ""


class Hl7Refused(Exception):
    """The message as a whole cannot be taken (answered AR): the reason as a sentence, an HL7 error code,
    and where, as an ERR location (`MSH^1^9`)."""

    def __init__(self, reason: str, *, code: str = "100", location: str = "", header: Header | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code, self.location, self.header = reason, code, location, header or Header()


@dataclass
class OruRead:
    header: Header
    results: list[ResultIn] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# Reading.


def text_of(data: bytes) -> str:
    """The message's text: UTF-8, or the character set MSH-18 names, or Windows-1251."""
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, which some Windows middleware adds, dropped
    except UnicodeDecodeError:
        pass
    head = data[: data.find(b"\r")] if b"\r" in data else data[:2000]
    named = next((codec for name, codec in _CHARSETS.items() if name.encode() in head.upper()), "cp1251")
    return data.decode(named, errors="replace")


def _segments(text: str) -> str:
    """Segments separated by \\r whatever the sender used; blank lines and MLLP framing bytes dropped."""
    text = text.replace("\x0b", "").replace("\x1c", "")
    lines = [line for line in re.split(r"\r\n|\r|\n", text) if line.strip()]
    return "\r".join(lines)


# HL7 batches (v2 chapter 2.10.3): FHS/BHS headers, the messages, BTS/FTS trailers. Lab middleware sends a
# run's results this way; each message inside is read, kept and acknowledged as if it had come alone.
BATCH_SEGMENTS = ("FHS", "BHS", "BTS", "FTS")
LARGEST_BATCH = 1000


@dataclass(frozen=True)
class Batch:
    """The messages of a batch (each as its own text) and its header's fields for the answer."""

    messages: list[str]
    is_file: bool
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""


def batch_read(text: str) -> Batch | None:
    """The batch a text holds, None when it is one message (it does not begin with FHS or BHS)."""
    text = _segments(text)
    if text[:3] not in ("FHS", "BHS"):
        return None
    lines = text.split("\r")
    header = next((line for line in lines if line.startswith("BHS")), lines[0])
    fields = header.split(header[3:4] or "|") if len(header) > 3 else [header]

    def bhs(number: int) -> str:  # BHS-n's first component; counted as for MSH: the separator is BHS-1
        return _unescaped(fields[number - 1].split("^")[0]) if len(fields) >= number else ""

    messages: list[list[str]] = []
    for line in lines:
        if line[:3] == "MSH":
            messages.append([line])
        elif line[:3] not in BATCH_SEGMENTS and messages:
            messages[-1].append(line)
    return Batch(
        messages=["\r".join(message) for message in messages],
        is_file=text.startswith("FHS"),
        sending_application=bhs(3),
        sending_facility=bhs(4),
        receiving_application=bhs(5),
        receiving_facility=bhs(6),
        control_id=bhs(11),
    )


def _unescaped(value: str) -> str:
    return re.sub(r"\\([FSTRE])\\", lambda found: {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\"}[found[1]], value)


def batch_ack_build(*, batch: Batch, acks: Sequence[str]) -> str:
    """The batch's answer: a batch of the messages' ACKs in their order (BHS-12 names the batch answered),
    wrapped in FHS/FTS when a file came."""
    now = timezone.localtime().strftime("%Y%m%d%H%M%S%z")
    addressing = [
        escape(batch.receiving_application or "MHOSPITAL"),
        escape(batch.receiving_facility),
        escape(batch.sending_application),
        escape(batch.sending_facility),
        now,
    ]
    reference = escape(batch.control_id)
    lines = [f"BHS|{ENCODING_CHARACTERS}|" + "|".join(addressing) + f"|||||{reference}"]
    lines += [segment for ack in acks for segment in _segments(ack).split("\r")]
    lines.append(f"BTS|{len(acks)}")
    if batch.is_file:
        lines = [f"FHS|{ENCODING_CHARACTERS}|" + "|".join(addressing) + f"|||||{reference}", *lines, "FTS|1"]
    return "\r".join(lines) + "\r"


# A segment as python-hl7 reads it, or (the usual message: the standard separators, no escape sequence) as
# its fields split by hand, numbered the same way (MSH-1 is the field separator), which reads the same for
# a fraction of the time: python-hl7 builds a tree down to every subcomponent of every field.
Segment: TypeAlias = "hl7.Segment | list[str]"
STANDARD_MSH = "MSH|" + ENCODING_CHARACTERS + "|"


def _plain(text: str) -> list[list[str]] | None:
    """The segments of a message (segments already separated by \\r) as lists of fields, None when it does
    not use the standard separators or has an escape sequence: python-hl7 reads those."""
    if not text.startswith(STANDARD_MSH) or "\\" in text[len(STANDARD_MSH) :]:
        return None
    segments = [line.split("|") for line in text.split("\r")]
    segments[0][1:1] = ["|"]  # MSH-1 is the field separator, MSH-2 the encoding characters
    return segments


def _get(segment: Segment, number: int, component: int = 1, repeat: int = 1) -> str:
    """A field (or one component of it), unescaped, "" when the segment does not have it."""
    if not isinstance(segment, hl7.Segment):  # (python-hl7's containers are lists too)
        if number >= len(segment):
            return ""
        repeats = segment[number].split("~")
        if repeat > len(repeats):
            return ""
        components = repeats[repeat - 1].split("^")
        return components[component - 1].split("&", 1)[0].strip() if component <= len(components) else ""
    try:
        return str(segment.extract_field(1, number, repeat, component, 1)).strip()
    except (IndexError, KeyError, TypeError, ValueError):
        return ""


def _repeats(segment: Segment, number: int) -> int:
    if not isinstance(segment, hl7.Segment):
        return len(segment[number].split("~")) if number < len(segment) else 0
    try:
        value = segment(number)
    except IndexError:
        return 0
    return len(value) if isinstance(value, hl7.Field) else 1


def header_read(text: str) -> Header | None:
    """The MSH of a message, None when it has none; never raises, so even garbage can be answered."""
    text = _segments(text)
    if not text.startswith("MSH") or len(text) < 8:
        return None
    try:
        msh = hl7.parse(text.split("\r", 1)[0]).segment("MSH")
    except Exception:  # noqa: BLE001 - anything python-hl7 trips on is simply "no readable MSH"
        return None
    return _header(msh)


def _header(msh: Segment) -> Header:
    return Header(
        sending_application=_get(msh, 3),
        sending_facility=_get(msh, 4),
        receiving_application=_get(msh, 5),
        receiving_facility=_get(msh, 6),
        control_id=_get(msh, 10),
        message_type=_get(msh, 9, 1).upper(),
        trigger=_get(msh, 9, 2).upper(),
        processing_id=_get(msh, 11),
        version=_get(msh, 12),
    )


def hl7_time(text: str, local: tzinfo) -> datetime:
    """An HL7 TS/DTM (YYYYMMDD[HHMM[SS[.S...]]][+/-ZZZZ]) as an aware datetime; local time without an
    offset. ValueError when it is not one."""
    if not re.fullmatch(r"\d{8}(\d{2}(\d{2}(\d{2}(\.\d{1,4})?)?)?)?([+-]\d{4})?", text):
        raise ValueError(text)
    parsed = hl7.parse_datetime(text)
    if parsed is None:
        raise ValueError(text)
    if parsed.tzinfo is None:
        return timezone.make_aware(parsed, local)
    return parsed.astimezone(UTC)


def _record_number(pid: Segment) -> str:
    """PID-3's medical record number (identifier type MR) if it is marked, else its first identifier; PID-2
    (the patient id of version 2.3 and before) when PID-3 is empty."""
    identifiers = [(_get(pid, 3, 1, n), _get(pid, 3, 5, n).upper()) for n in range(1, _repeats(pid, 3) + 1)]
    marked = [number for number, kind in identifiers if number and kind == "MR"]
    plain = [number for number, _kind in identifiers if number]
    return (marked or plain or [_get(pid, 2)])[0]


def _value(obx: Segment) -> str:
    if _get(obx, 2).upper() == "SN":  # comparator^number^separator^number
        comparator, number, separator, second = (_get(obx, 5, n) for n in (1, 2, 3, 4))
        return f"{comparator}{number}{separator}{second}" if separator or second else f"{comparator}{number}"
    return _get(obx, 5)


def _test(obx: Segment) -> tuple[str, str, str]:
    """(code, coding system, name) of OBX-3, its LOINC alternate preferred to a local code."""
    code, name, system = _get(obx, 3, 1), _get(obx, 3, 2), _get(obx, 3, 3).upper()
    if system != "LN" and _get(obx, 3, 6).upper() == "LN" and _get(obx, 3, 4):
        return _get(obx, 3, 4), "LN", name or _get(obx, 3, 5)
    return code, system, name


def oru_read(text: str, *, local: tzinfo) -> OruRead:
    """Read an ORU^R01. Raises Hl7Refused when the message as a whole cannot be taken."""
    text = _segments(text)
    if not text:
        raise Hl7Refused(_("The message is empty: send one HL7 v2 ORU^R01 message."))
    if text[:3] in BATCH_SEGMENTS:
        raise Hl7Refused(_("A batch or file of messages is read message by message, not as one message."))
    message: hl7.Message | list[list[str]] | None = _plain(text)
    try:
        if message is None:
            message = hl7.parse(text) if text.startswith("MSH") else None
            header = _header(message.segment("MSH")) if message is not None else None
        else:
            header = _header(message[0])
    except Exception:  # noqa: BLE001 - python-hl7 raises several kinds for broken text; the MSH alone may do
        message, header = None, header_read(text)
    if header is None:
        raise Hl7Refused(str(NOT_HL7), location="MSH^1")
    if header.message_type != "ORU":
        raise Hl7Refused(
            _("Only results are taken (ORU^R01); this message is “%(type)s”.")
            % {"type": f"{header.message_type}^{header.trigger}".strip("^")},
            code="200",
            location="MSH^1^9",
            header=header,
        )
    if header.trigger != "R01":
        raise Hl7Refused(
            _("Only the trigger event R01 of ORU is taken; this message is ORU^%(trigger)s.")
            % {"trigger": header.trigger},
            code="201",
            location="MSH^1^9",
            header=header,
        )
    if not header.control_id:
        raise Hl7Refused(
            _("The message has no control id (MSH-10): without one a resent message cannot be recognised."),
            code="101",
            location="MSH^1^10",
            header=header,
        )
    if message is None:
        raise Hl7Refused(_("The message cannot be read as HL7 v2: check its segments and separators."), header=header)
    read = OruRead(header=header)
    record, obr_time, obx_number = "", "", 0
    for segment in message:
        kind = str(segment[0]).strip().upper()
        if kind == "PID":
            record, obr_time = _record_number(segment), ""
        elif kind == "OBR":
            obr_time = _get(segment, 7)
        elif kind == "OBX":
            obx_number += 1
            _obx_read(segment, f"OBX {obx_number}", record, obr_time, local, read)
    if obx_number == 0:
        raise Hl7Refused(
            _("The message carries no results: an ORU^R01 needs at least one OBX segment."),
            code="101",
            location="OBX",
            header=header,
        )
    return read


def _obx_read(obx: Segment, where: str, record: str, obr_time: str, local: tzinfo, read: OruRead) -> None:
    status = _get(obx, 11).upper()
    if status in _NO_RESULT:
        return
    if status in _WITHDRAWN:
        read.problems.append(
            Problem(
                where,
                "status",
                _(
                    "The result is marked “%(status)s” (OBX-11): a device cannot withdraw or delete a result it "
                    "sent; the laboratory corrects it on the platform."
                )
                % {"status": status},
            )
        )
        return
    code, system, name = _test(obx)
    stamp = _get(obx, 14) or obr_time
    observed_at = None
    if stamp:
        try:
            observed_at = hl7_time(stamp, local)
        except (ValueError, OverflowError):
            read.problems.append(
                Problem(
                    where,
                    "observed_at",
                    _("The time “%(time)s” (OBX-14 or OBR-7) is not an HL7 time such as 20261128093000+0300.")
                    % {"time": stamp[:40]},
                )
            )
            return
    read.results.append(
        ResultIn(
            value=_value(obx),
            observed_at=observed_at,
            code=code,
            coding_system=system,
            name=name,
            unit=_get(obx, 6) or _get(obx, 6, 2),
            range=_get(obx, 7),
            flag=_get(obx, 8),
            record_number=record,
            where=where,
        )
    )


# Answering.


def escape(text: str) -> str:
    """Text made safe inside a field of a message with the standard separators."""
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    text = text.replace("&", "\\T\\").replace("~", "\\R\\")
    return re.sub(r"[\r\n\x0b\x1c]+", " ", text)


@dataclass(frozen=True)
class AckError:
    """One ERR segment: where (an ERR location such as `OBX^3^5`), the HL7 error code, the sentence."""

    location: str
    code: str
    text: str


def ack_errors(problems: list[Problem]) -> list[AckError]:
    """The ERR segments of the rows a message had refused, in the order of the message."""
    errors = []
    for problem in sorted(problems, key=_position):
        segment, _space, number = problem.where.partition(" ")
        position, code = _OBX_FIELDS.get(problem.field, (0, "207"))
        location = "^".join(part for part in (segment, number, str(position) if position else "") if part)
        errors.append(AckError(location=location, code=code, text=problem.reason))
    return errors


def _position(problem: Problem) -> tuple[str, int]:
    segment, _space, number = problem.where.partition(" ")
    return segment, int(number) if number.isdigit() else 0


def ack_build(*, header: Header | None, code: str, errors: Sequence[AckError] = (), control_id: str = "") -> str:
    """An ACK to a message (original acknowledgement mode): MSH with sender and receiver swapped, MSA with the
    code (AA, AE or AR) and the message's control id, and one ERR per error (both the 2.3 ERR-1 and the 2.5
    ERR-2/3/4/8 fields, so old and new analysers can read it)."""
    header = header or Header()
    now = timezone.localtime().strftime("%Y%m%d%H%M%S%z")
    msh = [
        "MSH",
        ENCODING_CHARACTERS,
        escape(header.receiving_application or "MHOSPITAL"),
        escape(header.receiving_facility),
        escape(header.sending_application),
        escape(header.sending_facility),
        now,
        "",
        f"ACK^{escape(header.trigger or 'R01')}^ACK",
        escape(control_id or f"MH{secrets.token_hex(8).upper()}"),
        escape(header.processing_id or "P"),
        escape(header.version or "2.5.1"),
        "",
        "",
        "",
        "",
        "",
        "UNICODE UTF-8",
    ]
    segments = ["|".join(msh)]
    first = errors[0].text if errors else ""
    segments.append("|".join(["MSA", code, escape(header.control_id), escape(first[:80])]).rstrip("|"))
    for error in errors:
        name = _ERROR_NAMES.get(error.code, "")
        cwe = f"{error.code}^{name}^HL70357"
        eld = f"{error.location}^{error.code}&{name}&HL70357" if error.location else ""
        segments.append("|".join(["ERR", eld, error.location, cwe, "E", "", "", "", escape(error.text)]).rstrip("|"))
    return "\r".join(segments) + "\r"


def ack_read(text: str) -> tuple[str, str, list[str]]:
    """(MSA-1, MSA-2, ERR-8 texts) of an ACK: for tests and the benchmark, as an analyser reads it."""
    message = hl7.parse(_segments(text))
    msa = message.segment("MSA")
    try:
        errs = message.segments("ERR")
    except KeyError:
        errs = []
    return _get(msa, 1), _get(msa, 2), [_get(err, 8) for err in errs]
