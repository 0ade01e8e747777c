"""Reading recordings without trusting them: stethoscope sounds through libsndfile (WAV, FLAC, OGG Vorbis or
Opus, MP3) and ECGs as a WFDB record (through the `wfdb` package) or a CSV of leads.

In the request path `recording_check` reads only what tells whether a file can be taken (libsndfile's
header, the WFDB header and the sizes of its signal files, a CSV's header row and first line) and refuses
with a sentence that names the file and the form field at fault. The worker decodes the whole signal with
`signal_read`. No database, no files left behind.
"""

import io
import math
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import soundfile
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from diagnostics import archive
from diagnostics.models import Recording
from hospitals.errors import Refused

Format = Recording.Format
Kind = Recording.Kind

# The form fields a refusal can point at.
FILES, SAMPLE_RATE, KIND = "file", "sample_rate", "kind"

# libsndfile's names of the containers browsers play in an <audio> element.
_PLAYABLE: dict[str, str] = {
    "WAV": Format.WAV,
    "WAVEX": Format.WAV,
    "FLAC": Format.FLAC,
    "OGG": Format.OGG,
    "MP3": Format.MP3,
}
STORED_EXTENSION: dict[str, str] = {
    Format.WAV: "wav",
    Format.FLAC: "flac",
    Format.OGG: "ogg",
    Format.MP3: "mp3",
    Format.WFDB: "zip",
    Format.CSV: "csv",
}
CONTENT_TYPE: dict[str, str] = {
    Format.WAV: "audio/wav",
    Format.FLAC: "audio/flac",
    Format.OGG: "audio/ogg",
    Format.MP3: "audio/mpeg",
    Format.WFDB: "application/zip",
    Format.CSV: "text/csv",
}
_CSV_EXTENSIONS = {".csv", ".txt", ".tsv"}
_ZIP_EXTENSIONS = {".zip"}
HEADER_EXTENSION = ".hea"
# Bits one sample takes in a WFDB signal file, by its format number (WFDB's signal-file formats); the
# FLAC-coded formats (508, 516, 524) have no fixed size and are left to the decoder to judge.
_WFDB_BITS: dict[str, float] = {
    **{"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12},
    **{"310": 32 / 3, "311": 32 / 3},
}
_WFDB_FORMATS = {*_WFDB_BITS, "508", "516", "524"}
# A lead's unit, as a WFDB header or a CSV column ("II (uV)") gives it, to millivolts.
_TO_MILLIVOLTS = {"mv": 1.0, "uv": 0.001, "µv": 0.001, "μv": 0.001, "v": 1000.0}
_UNIT_IN_NAME = re.compile(r"^(?P<name>.*?)[\s_]*[(\[]\s*(?P<unit>mv|uv|µv|μv|v)\s*[)\]]$", re.IGNORECASE)
_TIME_COLUMNS = {"time", "t", "time_s", "time (s)", "seconds", "sec", "s", "timestamp", "ms", "time_ms", "time (ms)"}
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class RecordingRefused(Refused):
    """A recording the platform will not file: the message names the file, what is wrong and what to do;
    `field` is the form field at fault (file, sample_rate or kind)."""

    code = "recording_refused"

    def __init__(self, message: str, *, field: str = FILES, code: str = "") -> None:
        super().__init__(message)
        self.field = field
        if code:
            self.code = code


@dataclass(frozen=True)
class Part:
    """One file as it arrived: its name (shown, never used as a path) and its bytes."""

    name: str
    data: bytes

    @property
    def base(self) -> str:
        return self.name.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def extension(self) -> str:
        return os.path.splitext(self.base)[1].lower()


@dataclass(frozen=True)
class Checked:
    """What the headers say of a file that may be stored, and the bytes to store."""

    format: str
    data: bytes  # the file itself; for a WFDB record, its header and signal files packed as one ZIP
    encoding: str
    sample_rate: float
    frames: int
    channels: int
    leads: tuple[str, ...] = ()
    recorded_at: datetime | None = None
    parts: tuple[str, ...] = ()  # names of the companion files the record took (a WFDB header's signal files)

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


@dataclass
class Signal:
    """A decoded recording: samples as (frames, channels) floats; an ECG's in millivolts."""

    sample_rate: float
    samples: np.ndarray[Any, np.dtype[np.floating[Any]]]
    names: list[str] = field(default_factory=list)


def display_name(name: str) -> str:
    """A sender's name for a file, fit to show: no control characters, at most 255 characters."""
    return "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()[:255] or "—"


def is_header(part: Part) -> bool:
    return part.extension == HEADER_EXTENSION


def is_archive(part: Part) -> bool:
    return part.extension in _ZIP_EXTENSIONS or archive.is_zip(part.data[:4])


def archive_parts(part: Part) -> tuple[list[Part], list[tuple[str, RecordingRefused]]]:
    """The files of a ZIP archive (named "archive.zip/entry"), and the entries refused with the reason."""
    limit = settings.RECORDING_MAX_BYTES
    limits = archive.Limits(
        entries=settings.RECORDING_ZIP_MAX_ENTRIES,
        entry_bytes=limit,
        total_bytes=limit * 4,
        ratio=settings.IMAGING_ZIP_MAX_RATIO,
    )
    parts: list[Part] = []
    refused: list[tuple[str, RecordingRefused]] = []
    try:
        for entry in archive.entries_read(io.BytesIO(part.data), limits):
            name = f"{part.name}/{entry.name}"
            if entry.data is not None:
                parts.append(Part(name, entry.data))
            elif not entry.skipped:
                message = _("“%(name)s”: %(reason)s") % {"name": name, "reason": entry.refused}
                refused.append((name, RecordingRefused(message, code="archive_entry")))
    except archive.ArchiveRefused as exc:
        message = _("“%(name)s”: %(reason)s") % {"name": part.name, "reason": exc}
        refused.append((part.name, RecordingRefused(message, code="archive")))
    if not parts and not refused:
        message = _("“%(name)s” holds no files.") % {"name": part.name}
        refused.append((part.name, RecordingRefused(message, code="archive_empty")))
    return parts, refused


def wfdb_file_names(header: bytes) -> list[str]:
    """The signal files a WFDB header names (the first word of each signal line), in order, without repeats."""
    lines = [line.strip() for line in header.decode("ascii", "replace").splitlines()]
    specification = [line for line in lines if line and not line.startswith("#")]
    names: list[str] = []
    for line in specification[1:]:
        name = line.split()[0]
        if name not in names and name != "~":
            names.append(name)
    return names


def recording_check(
    part: Part, *, kind: str, sample_rate: float | None = None, companions: Mapping[str, bytes] | None = None
) -> Checked:
    """Check one file from its headers (a WFDB header with the signal files it names among `companions`,
    by base name) for a recording of `kind`. Raises RecordingRefused."""
    if len(part.data) > settings.RECORDING_MAX_BYTES:
        raise RecordingRefused(
            _("“%(name)s” is %(size)s MB; a recording may be at most %(limit)s MB.")
            % {
                "name": part.name,
                "size": _megabytes(len(part.data)),
                "limit": _megabytes(settings.RECORDING_MAX_BYTES),
            },
            code="too_large",
        )
    if not part.data:
        raise RecordingRefused(_("“%(name)s” is empty.") % {"name": part.name}, code="empty")
    if is_header(part):
        checked = _wfdb_check(part, companions or {})
    elif part.extension in _CSV_EXTENSIONS:
        checked = _csv_check(part, sample_rate)
    elif part.extension == ".dat":
        raise RecordingRefused(
            _(
                "“%(name)s” looks like a WFDB signal file without its header: send the .hea file with it, or both "
                "in one ZIP archive."
            )
            % {"name": part.name},
            code="wfdb_header_missing",
        )
    else:
        checked = _audio_check(part)
    _kind_check(part, checked, kind)
    _limits_check(part, checked)
    return checked


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f}".rstrip("0").rstrip(".")


def _kind_check(part: Part, checked: Checked, kind: str) -> None:
    is_ecg = checked.format in (Format.WFDB, Format.CSV)
    if kind == Kind.ECG and not is_ecg:
        raise RecordingRefused(
            _(
                "Kind: “%(name)s” is a sound recording, but the kind chosen is ECG. Choose heart or lung sound, or "
                "send the ECG as a WFDB record or a CSV of leads."
            )
            % {"name": part.name},
            field=KIND,
            code="kind_mismatch",
        )
    if kind != Kind.ECG and is_ecg:
        raise RecordingRefused(
            _("Kind: “%(name)s” is an ECG (%(format)s), but the kind chosen is %(kind)s. Choose ECG.")
            % {"name": part.name, "format": Format(checked.format).label, "kind": Kind(kind).label},
            field=KIND,
            code="kind_mismatch",
        )


def _limits_check(part: Part, checked: Checked) -> None:
    if checked.frames <= 0:
        raise RecordingRefused(_("“%(name)s” holds no samples.") % {"name": part.name}, code="empty")
    if checked.sample_rate > settings.RECORDING_MAX_SAMPLE_RATE:
        raise RecordingRefused(
            _("“%(name)s” is sampled at %(rate)s Hz; the platform reads recordings sampled at up to %(limit)s Hz.")
            % {"name": part.name, "rate": f"{checked.sample_rate:g}", "limit": settings.RECORDING_MAX_SAMPLE_RATE},
            code="sample_rate_too_high",
        )
    if checked.channels > settings.RECORDING_MAX_CHANNELS:
        raise RecordingRefused(
            _("“%(name)s” has %(count)s channels or leads; the limit is %(limit)s.")
            % {"name": part.name, "count": checked.channels, "limit": settings.RECORDING_MAX_CHANNELS},
            code="too_many_channels",
        )
    if checked.duration_s > settings.RECORDING_MAX_SECONDS:
        raise RecordingRefused(
            _("“%(name)s” lasts %(minutes)s min; a recording may last at most %(limit)s min. Send it in parts.")
            % {
                "name": part.name,
                "minutes": f"{checked.duration_s / 60:.1f}",
                "limit": f"{settings.RECORDING_MAX_SECONDS / 60:g}",
            },
            code="too_long",
        )


# Sounds.


def _audio_check(part: Part) -> Checked:
    try:
        info = soundfile.info(io.BytesIO(part.data))
    except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
        reason = getattr(exc, "error_string", "") or str(exc)
        raise RecordingRefused(
            _(
                "“%(name)s” is not a sound recording: no WAV, FLAC, OGG or MP3 audio can be read from it "
                "(%(reason)s). Send the file the stethoscope exported; an ECG goes as a WFDB record or a CSV."
            )
            % {"name": part.name, "reason": str(reason).strip().rstrip(".")[:200]},
            code="not_audio",
        ) from None
    audio_format = _PLAYABLE.get(info.format)
    if audio_format is None:
        raise RecordingRefused(
            _("“%(name)s” is %(format)s audio, which browsers do not play; convert it to WAV, FLAC, OGG or MP3.")
            % {"name": part.name, "format": info.format_info},
            code="format_unplayable",
        )
    if info.samplerate <= 0:
        raise RecordingRefused(
            _("“%(name)s” gives a sampling rate of %(rate)s Hz in its header; export it again.")
            % {"name": part.name, "rate": info.samplerate},
            code="sample_rate",
        )
    return Checked(
        format=audio_format,
        data=part.data,
        encoding=str(info.subtype)[:32],
        sample_rate=float(info.samplerate),
        frames=int(info.frames),
        channels=int(info.channels),
    )


# ECG: WFDB records.


def _wfdb_check(part: Part, companions: Mapping[str, bytes]) -> Checked:
    record = _wfdb_header(part)
    names = list(record.file_name or [])
    found: dict[str, bytes] = {}
    for name in dict.fromkeys(names):
        if not name or name == "~" or name != os.path.basename(name) or name.startswith("."):
            raise RecordingRefused(
                _("“%(name)s” names a signal file “%(file)s” that is no plain file name; export the record again.")
                % {"name": part.name, "file": name},
                code="wfdb_invalid",
            )
        data = companions.get(name)
        if data is None:
            raise RecordingRefused(
                _(
                    "“%(name)s” names the signal file “%(file)s”, which is not in the upload: send the header and "
                    "its signal files together, or in one ZIP archive."
                )
                % {"name": part.name, "file": name},
                code="wfdb_file_missing",
            )
        found[name] = data
    frames = _wfdb_frames(part, record, found)
    leads = tuple(str(lead).strip()[:32] or f"{number}" for number, lead in enumerate(record.sig_name or [], 1))
    recorded_at = None
    if record.base_date is not None:
        recorded_at = timezone.make_aware(
            datetime.combine(record.base_date, record.base_time or datetime.min.time()),
            timezone.get_current_timezone(),
        )
    formats = sorted(set(record.fmt or []))
    return Checked(
        format=Format.WFDB,
        data=_wfdb_pack(part, found),
        encoding=f"WFDB {'/'.join(formats)}"[:32],
        sample_rate=float(record.fs),
        frames=frames,
        channels=int(record.n_sig),
        leads=leads,
        recorded_at=recorded_at,
        parts=tuple(found),
    )


def _wfdb_header(part: Part) -> Any:
    import wfdb

    def invalid(reason: str) -> RecordingRefused:
        return RecordingRefused(
            _("“%(name)s” is not a WFDB header the platform can read (%(reason)s); export the record again.")
            % {"name": part.name, "reason": reason[:200]},
            code="wfdb_invalid",
        )

    with tempfile.TemporaryDirectory(prefix="wfdb-") as folder:
        with open(os.path.join(folder, "record.hea"), "wb") as header:
            header.write(part.data)
        try:
            record = wfdb.rdheader(os.path.join(folder, "record"))
        except (ValueError, IndexError, KeyError, AttributeError, TypeError, UnicodeError) as exc:
            raise invalid(str(exc) or type(exc).__name__) from None
    if isinstance(record, wfdb.MultiRecord):
        raise invalid(_("a record of several segments; export it as one segment"))
    if not record.n_sig:
        raise invalid(_("it describes no signals"))
    if not record.fs or record.fs <= 0:
        raise RecordingRefused(
            _(
                "“%(name)s” gives a sampling frequency of %(rate)s Hz in its record line; an ECG cannot be read "
                "without it. Export the record again with the rate it was recorded at."
            )
            % {"name": part.name, "rate": f"{record.fs or 0:g}"},
            code="sample_rate",
        )
    unknown = sorted(set(record.fmt or []) - _WFDB_FORMATS)
    if unknown:
        raise invalid(_("signal format %(format)s is not one the platform reads") % {"format": ", ".join(unknown)})
    return record


def _wfdb_frames(part: Part, record: Any, files: Mapping[str, bytes]) -> int:
    """The record's length in frames; refused when a signal file holds fewer bytes than its header describes."""
    per_frame: dict[str, float] = {}
    offsets: dict[str, int] = {}
    for number, name in enumerate(record.file_name):
        bits = _WFDB_BITS.get(record.fmt[number])
        if bits is None:
            continue
        per_frame[name] = per_frame.get(name, 0) + bits * (record.samps_per_frame[number] or 1)
        offsets[name] = record.byte_offset[number] or 0
    frames = int(record.sig_len or 0)
    if not frames and per_frame:  # a header may leave the length to the signal file's size
        name = next(iter(per_frame))
        frames = int((len(files[name]) - offsets[name]) * 8 // per_frame[name])
    for name, bits in per_frame.items():
        needed = offsets[name] + math.ceil(frames * bits / 8)
        if len(files[name]) < needed:
            raise RecordingRefused(
                _(
                    "“%(file)s” holds %(size)s bytes, but its header “%(name)s” describes %(needed)s: the signal file "
                    "is cut short. Send it again."
                )
                % {"file": name, "size": len(files[name]), "name": part.name, "needed": needed},
                code="wfdb_truncated",
            )
    return frames


def _wfdb_pack(header: Part, files: Mapping[str, bytes]) -> bytes:
    """Header and signal files as one ZIP made the same way every time (fixed order, times and attributes),
    so the same record has the same SHA-256 however it was sent."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as packed:
        for name, data in [(header.base, header.data), *files.items()]:
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            packed.writestr(entry, data, compresslevel=6)
    return out.getvalue()


def _wfdb_read(name: str, data: bytes) -> Signal:
    import wfdb

    with zipfile.ZipFile(io.BytesIO(data)) as packed, tempfile.TemporaryDirectory(prefix="wfdb-") as folder:
        entries = packed.namelist()  # written by _wfdb_pack: plain names, the header first
        for entry in entries:
            with open(os.path.join(folder, os.path.basename(entry)), "wb") as out:
                out.write(packed.read(entry))
        record_name = os.path.splitext(os.path.basename(entries[0]))[0]
        try:
            record = wfdb.rdrecord(os.path.join(folder, record_name), physical=True, return_res=32)
        except (ValueError, IndexError, KeyError, TypeError, EOFError) as exc:
            raise RecordingRefused(
                _("The signals of “%(name)s” cannot be decoded: %(reason)s")
                % {"name": name, "reason": str(exc)[:300] or type(exc).__name__},
                code="wfdb_invalid",
            ) from None
    samples = np.asarray(record.p_signal, dtype=np.float32)
    for column, unit in enumerate(record.units or []):
        samples[:, column] *= _TO_MILLIVOLTS.get(str(unit).strip().lower(), 1.0)
    names = [str(lead).strip() or f"{number}" for number, lead in enumerate(record.sig_name or [], 1)]
    return Signal(float(record.fs), np.nan_to_num(samples), names)


# ECG: CSV of leads.


@dataclass(frozen=True)
class _CsvLayout:
    text: str
    delimiter: str | None  # None: runs of white space
    decimal_comma: bool
    columns: list[str]  # as the header row names them
    time_column: int | None


def _csv_layout(part: Part) -> _CsvLayout:
    try:
        text = part.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = part.data.decode("cp1251", "replace")  # Russian exports in the Windows code page
    lines = [line for line in text.splitlines()[:3] if line.strip()]
    header = lines[0] if lines else ""
    likeliest = max([",", ";", "\t"], key=header.count)
    delimiter: str | None = likeliest
    if not header.count(likeliest) and len(lines) > 1 and len(lines[1].split()) > 1:
        delimiter = None  # columns apart by spaces (with no separator, one column: "II (uV)" stays one name)
    columns = [cell.strip().strip('"').strip() for cell in header.split(delimiter)]
    if not columns or all(_NUMBER.match(cell) for cell in columns):
        raise RecordingRefused(
            _(
                "“%(name)s” has no header row naming its leads: add one as the first line (for example "
                "“I,II,V1”), then one line of numbers per sample."
            )
            % {"name": part.name},
            code="csv_header_missing",
        )
    first = columns[0].lower()
    time_column = 0 if first in _TIME_COLUMNS and len(columns) > 1 else None
    decimal_comma = delimiter in (";", "\t") and "," in text[len(header) : len(header) + 4096]
    return _CsvLayout(text, delimiter, decimal_comma, columns, time_column)


def _csv_row(layout: _CsvLayout, line: str) -> list[float]:
    if layout.decimal_comma:
        line = line.replace(",", ".")
    return [float(cell.strip().strip('"')) for cell in line.split(layout.delimiter)]


def _csv_check(part: Part, sample_rate: float | None) -> Checked:
    layout = _csv_layout(part)
    rows = [line for line in layout.text.splitlines() if line.strip()][1:]
    if not rows:
        raise RecordingRefused(_("“%(name)s” has a header row but no samples.") % {"name": part.name}, code="empty")
    try:
        first = _csv_row(layout, rows[0])
        second = _csv_row(layout, rows[1]) if len(rows) > 1 else None
    except ValueError:
        raise RecordingRefused(
            _("“%(name)s”, line 2: expected one number per lead, found “%(line)s”.")
            % {"name": part.name, "line": rows[0][:80]},
            code="csv_invalid",
        ) from None
    if len(first) != len(layout.columns):
        raise RecordingRefused(
            _("“%(name)s”, line 2: %(found)s values for the %(columns)s columns of the header row.")
            % {"name": part.name, "found": len(first), "columns": len(layout.columns)},
            code="csv_invalid",
        )
    if sample_rate is None and layout.time_column is not None and second is not None:
        step = second[0] - first[0]
        scale = 1000.0 if "ms" in layout.columns[0].lower() else 1.0
        sample_rate = round(scale / step, 3) if step > 0 else 0.0
    if sample_rate is None:
        raise RecordingRefused(
            _(
                "Sampling rate (Hz): “%(name)s” is a CSV of leads, which does not say how often it was sampled; "
                "enter the rate it was recorded at (for example 500)."
            )
            % {"name": part.name},
            field=SAMPLE_RATE,
            code="sample_rate_missing",
        )
    if not math.isfinite(sample_rate) or sample_rate <= 0:
        raise RecordingRefused(
            _(
                "Sampling rate (Hz): %(rate)s is not a sampling rate; enter the rate “%(name)s” was recorded at, "
                "a number above 0 (for example 500)."
            )
            % {"rate": f"{sample_rate:g}", "name": part.name},
            field=SAMPLE_RATE,
            code="sample_rate",
        )
    leads = [column for number, column in enumerate(layout.columns) if number != layout.time_column]
    return Checked(
        format=Format.CSV,
        data=part.data,
        encoding="CSV",
        sample_rate=float(sample_rate),
        frames=len(rows),
        channels=len(leads),
        leads=tuple((_lead_and_unit(lead)[0] or str(number))[:32] for number, lead in enumerate(leads, 1)),
    )


def _lead_and_unit(column: str) -> tuple[str, float]:
    """ "II (uV)" -> ("II", 0.001): the lead's name and the factor to millivolts (a bare name is millivolts)."""
    match = _UNIT_IN_NAME.match(column.strip())
    if match is None:
        return column.strip(), 1.0
    return match["name"].strip(), _TO_MILLIVOLTS[match["unit"].lower()]


def _csv_read(name: str, data: bytes, sample_rate: float) -> Signal:
    layout = _csv_layout(Part(name, data))
    text = layout.text.replace(",", ".") if layout.decimal_comma else layout.text
    try:
        values = np.loadtxt(
            io.StringIO(text), delimiter=layout.delimiter, skiprows=1, ndmin=2, dtype=np.float32, quotechar='"'
        )
    except ValueError as exc:
        raise RecordingRefused(
            _("“%(name)s” cannot be read as numbers: %(reason)s") % {"name": name, "reason": str(exc)[:300]},
            code="csv_invalid",
        ) from None
    if layout.time_column is not None:
        values = np.delete(values, layout.time_column, axis=1)
    columns = [column for number, column in enumerate(layout.columns) if number != layout.time_column]
    names = []
    for column_number, column in enumerate(columns):
        lead, factor = _lead_and_unit(column)
        names.append(lead or str(column_number + 1))
        values[:, column_number] *= factor
    return Signal(sample_rate, np.nan_to_num(values), names)


# Sounds, decoded.


def _audio_read(name: str, data: bytes) -> Signal:
    """The sound mixed down to one channel, read in blocks so only the mixed samples are held."""
    blocks = []
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            rate = float(sound.samplerate)
            ceiling = int(settings.RECORDING_MAX_SECONDS * rate * 1.05) + 1
            held = 0
            for block in sound.blocks(blocksize=65536, dtype="float32", always_2d=True):
                blocks.append(block.mean(axis=1))
                held += len(block)
                if held > ceiling:  # a header that understated the length
                    raise RecordingRefused(
                        _("“%(name)s” lasts longer than the %(limit)s min a recording may last.")
                        % {"name": name, "limit": f"{settings.RECORDING_MAX_SECONDS / 60:g}"},
                        code="too_long",
                    )
    except (soundfile.SoundFileError, RuntimeError) as exc:
        raise RecordingRefused(
            _("The sound of “%(name)s” cannot be decoded: %(reason)s")
            % {"name": name, "reason": (getattr(exc, "error_string", "") or str(exc))[:300]},
            code="not_audio",
        ) from None
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return Signal(rate, samples[:, np.newaxis], ["mono"])


def signal_read(*, format: str, name: str, data: bytes, sample_rate: float) -> Signal:
    """Decode a stored recording in full (the worker's part). Raises RecordingRefused with the reason."""
    if format == Format.WFDB:
        return _wfdb_read(name, data)
    if format == Format.CSV:
        return _csv_read(name, data, sample_rate)
    return _audio_read(name, data)


def parts_named(parts: Sequence[Part]) -> dict[str, bytes]:
    """Files by base name, as a WFDB header names its signal files."""
    return {part.base: part.data for part in parts}
