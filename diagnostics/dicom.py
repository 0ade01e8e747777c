"""Reading DICOM safely: the header checks an upload must pass before it is stored, and frame rendering.

Pure functions over bytes and pydicom datasets; no database. The request path calls `header_read` only
(no pixel decoding); the worker calls `frames_render`.
"""

import io
import re
import struct
import zlib
from collections.abc import Iterator, MutableSequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import pydicom
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image
from pydicom.charset import default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, iter_pixels
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import AMBIGUOUS_VR, EXPLICIT_VR_LENGTH_32, VR
from pydicom.values import converters

from diagnostics.archive import RATIO_FLOOR  # below it, no bomb whatever the ratio (as for ZIP entries)

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
# Read in the default encoding, as it names the others (a set: tags are found by hash, not compared in Python).
_SPECIFIC_CHARACTER_SET = frozenset({0x00080005})
# VRs whose value pydicom converts from the element's bytes alone: not a sequence, and not one whose VR is
# looked up (UN) or depends on other elements (US or SS...).
_PLAIN_VRS = frozenset(str(vr.value) for vr in converters if vr not in AMBIGUOUS_VR and vr not in (VR.SQ, VR.UN))
# Of those, what converting can refuse: a binary number (pydicom's struct formats) whose length is not a
# whole number of values. Text of any VR is decoded with replacement and kept as read, whatever its bytes
# (tests/diagnostics/test_dicom_values.py holds pydicom to both).
_NUMBER_SIZES = {
    str(vr.value): struct.calcsize("=" + converter[1])
    for vr, converter in converters.items()
    if isinstance(converter, tuple) and str(vr.value) in _PLAIN_VRS
}
_TEXT_VRS = _PLAIN_VRS - _NUMBER_SIZES.keys()  # and the VRs kept as their bytes (OB, OW...) or read leniently (AT)
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
# (7FE0,0010) OB with undefined length: how compressed pixel data always begins.
_ENCAPSULATED_PIXEL_DATA = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"
_DEFLATED = b"1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian: the data set is one deflate stream
# Executable headers a 128-byte preamble must never carry (PE, ELF, Mach-O, shell script).
_EXECUTABLE_PREAMBLES = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"#!")


class DicomInvalid(ValueError):
    """The bytes are not a DICOM file the platform can take; the message names the reason for a person."""


@dataclass(frozen=True)
class Header:
    dataset: FileDataset
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    rows: int | None
    columns: int | None
    frames: int

    def value(self, keyword: str) -> Any:
        """The value `dataset.get(keyword)` gives, for a top-level element."""
        return value_of(self.dataset, keyword)

    def text(self, keyword: str, limit: int = 64) -> str:
        value = self.value(keyword)
        return "" if value is None else str(value).strip()[:limit]

    def pixel_spacing(self) -> str:
        """Millimetres per pixel as "row\\column", from the image's calibration when it has one."""
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            value = self.value(keyword)
            if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
                return f"{float(value[0]):g}\\{float(value[1]):g}"
        regions = self.dataset.get("SequenceOfUltrasoundRegions")
        if regions:
            region = regions[0]
            # Physical units 3 = cm; the deltas are cm per pixel.
            if region.get("PhysicalUnitsXDirection") == 3 and region.get("PhysicalUnitsYDirection") == 3:
                dx, dy = float(region.get("PhysicalDeltaX", 0)), float(region.get("PhysicalDeltaY", 0))
                if dx > 0 and dy > 0:
                    return f"{abs(dy) * 10:g}\\{abs(dx) * 10:g}"
        return ""


def value_of(dataset: Dataset, keyword: str) -> Any:
    """`dataset.get(keyword)` for a top-level element, converted from its bytes without storing the result.

    The request path reads a score of values of each file once; `Dataset.get` finds an element through
    attribute look-up and stores what it converts, which cost twice the conversion itself (a tenth of a
    millisecond per file). Elements whose conversion depends on the data set (a sequence, a VR such as
    "US or SS") are read the ordinary way."""
    tag = _tag(keyword)
    if tag is None:  # a repeating group's keyword, whose tag pydicom finds by pattern
        return dataset.get(keyword)
    raw = dataset._dict.get(tag)
    if raw is None or not isinstance(raw, RawDataElement):
        return None if raw is None else raw.value
    if raw.value is None and raw.length:  # left in the file (read with defer_size): Dataset.get reads it
        return dataset.get(keyword)
    element = convert_raw_data_element(raw, encoding=_charset(dataset), ds=dataset)
    if element.VR == VR.SQ or element.VR in AMBIGUOUS_VR:
        return dataset.get(keyword)
    return element.value


@cache
def _tag(keyword: str) -> BaseTag | None:
    tag = tag_for_keyword(keyword)
    return None if tag is None else BaseTag(tag)


def _charset(dataset: Dataset) -> str | MutableSequence[str]:
    return dataset.original_character_set or dataset._character_set


def header_read(data: bytes) -> Header:
    """Parse and check a DICOM Part 10 file without decoding its pixels; DicomInvalid says what is wrong."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise DicomInvalid(
            _("Not a DICOM file: it lacks the 128-byte preamble and the “DICM” marker that DICOM files begin with.")
        )
    if data[:128].startswith(_EXECUTABLE_PREAMBLES):
        raise DicomInvalid(_("Refused: the file's preamble holds a program, which a DICOM file never needs."))
    try:
        meta_end = _meta_end(data)
        if _DEFLATED in data[132:meta_end]:
            _inflated_size_check(data[meta_end:])
        return _header_of(data, pydicom.dcmread(io.BytesIO(data)))
    except DicomInvalid:
        raise
    except _UNREADABLE as exc:
        # pydicom reads some values only when they are first asked for: a damaged one fails there too.
        raise DicomInvalid(_("The DICOM header cannot be read: %(reason)s.") % {"reason": str(exc)[:200]}) from None


# What pydicom raises on a damaged file (found by tests/security/test_fuzz.py, inputs in fuzz_inputs/dicom).
_UNREADABLE = (
    InvalidDicomError,
    BytesLengthException,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    OverflowError,
    NotImplementedError,
    OSError,
    struct.error,  # a value's length cut off after its VR
    zlib.error,  # a damaged deflated data set
    AttributeError,  # an ambiguous VR whose deciding element is missing ("Failed to resolve ambiguous VR")
    RecursionError,  # sequences nested hundreds deep, which pydicom reads by recursion
)


def _inflated_size_check(packed: bytes) -> None:
    """Refuse a deflated data set that would inflate past the decoding limit or, past a megabyte, to more
    than IMAGING_ZIP_MAX_RATIO times its size (a decompression bomb, as a ZIP entry would be): counted
    while inflating piece by piece, before pydicom inflates it whole."""
    limit = min(settings.DICOM_MAX_DECODED_BYTES, max(RATIO_FLOOR, settings.IMAGING_ZIP_MAX_RATIO * len(packed)))
    inflater, size, rest = zlib.decompressobj(-zlib.MAX_WBITS), 0, packed
    while rest and size <= limit:
        size += len(inflater.decompress(rest, 2**20))
        rest = inflater.unconsumed_tail
    if size > limit:
        raise DicomInvalid(
            _(
                "Refused: the deflated data set inflates to more than %(limit)s MB from %(packed)s KB, as a "
                "decompression bomb does."
            )
            % {"limit": limit // 2**20, "packed": max(len(packed) // 1024, 1)}
        )


def _header_of(data: bytes, dataset: FileDataset) -> Header:
    # pydicom turns each element's bytes into its value when first asked; check all of them now, so that a
    # damaged value is refused here rather than failing whatever reads it later (the index, the worker).
    _values_check(dataset)
    if "PixelData" not in dataset and _ENCAPSULATED_PIXEL_DATA in data:
        # pydicom drops an encapsulated element that the file cuts off before its end marker.
        raise DicomInvalid(_("The compressed pixel data is cut short: the file ends before its last frame."))
    meta = dataset.file_meta
    syntax = str(meta.get("TransferSyntaxUID", "") or "")
    uids = {
        "StudyInstanceUID": str(value_of(dataset, "StudyInstanceUID") or ""),
        "SeriesInstanceUID": str(value_of(dataset, "SeriesInstanceUID") or ""),
        "SOPInstanceUID": str(value_of(dataset, "SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID", "")),
        "SOPClassUID": str(value_of(dataset, "SOPClassUID") or meta.get("MediaStorageSOPClassUID", "")),
        "TransferSyntaxUID": syntax,
    }
    for keyword, uid in uids.items():
        if not uid or len(uid) > 64 or not _UID.match(uid):
            raise DicomInvalid(_("The header has no valid %(keyword)s.") % {"keyword": keyword})
    rows, columns = int_or_none(value_of(dataset, "Rows")), int_or_none(value_of(dataset, "Columns"))
    frames = max(int_or_none(value_of(dataset, "NumberOfFrames")) or 1, 1)
    if "PixelData" in dataset:
        _pixel_data_check(dataset, UID(syntax), rows, columns, frames)
    return Header(
        dataset=dataset,
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        sop_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        transfer_syntax_uid=syntax,
        rows=rows,
        columns=columns,
        frames=frames,
    )


def _values_check(dataset: Dataset) -> None:
    """Refuse what converting an element's value would refuse, as reading it would (sequences' items too).

    Text of any VR is decoded with replacement and kept as read, whatever its bytes, and a binary number
    can only have a length that is not a whole number of values (tests/diagnostics/test_dicom_values.py
    holds pydicom to both): text is passed over and numbers are measured. Elements whose VR pydicom looks
    up or works out, and sequences, are converted as `Dataset.__getitem__` does on a first read, without
    storing the values back (that bookkeeping cost more than the conversion, and the request reads only a
    few)."""
    charset = _charset(dataset)
    elements = dataset._dict
    # All but text, in the order of the tags, as iterating a data set goes (compared as numbers: pydicom's
    # Tag compares in Python).
    rest = [tag for tag, raw in elements.items() if not isinstance(raw, RawDataElement) or raw.VR not in _TEXT_VRS]
    for tag in sorted(rest, key=int):
        raw = elements[tag]
        if isinstance(raw, RawDataElement) and raw.VR in _NUMBER_SIZES:
            size, length = _NUMBER_SIZES[raw.VR], len(raw.value or b"")
            if length % size:
                raise BytesLengthException(
                    f"the value of {raw.tag} ({raw.VR}) is {length} bytes long, not a multiple of {size}"
                )
            continue
        if isinstance(raw, RawDataElement):
            element = convert_raw_data_element(
                raw, encoding=default_encoding if tag in _SPECIFIC_CHARACTER_SET else charset, ds=dataset
            )
            if element.VR == VR.SQ:
                dataset._set_pixel_representation(element)
            elif element.VR in AMBIGUOUS_VR:
                correct_ambiguous_vr_element(element, dataset, raw.is_little_endian)
        else:
            element = raw  # a sequence of undefined length is read with the file, its items' values are not
        if element.VR == VR.SQ:
            for item in element.value:
                _values_check(item)


def dataset_bytes(data: bytes) -> bytes:
    """The data set of a Part 10 file without its preamble and file meta group, which each sender
    writes its own way (its name, its implementation version)."""
    return data[_meta_end(data) :]


def _meta_end(data: bytes) -> int:
    """Where the file meta group (0002,xxxx, explicit VR little endian after the preamble) ends."""
    if data[132:136] == b"\x02\x00\x00\x00":  # (0002,0000) File Meta Information Group Length
        return 144 + int.from_bytes(data[140:144], "little")
    offset = 132  # no group length: walk the group's elements
    while data[offset : offset + 2] == b"\x02\x00" and offset + 8 <= len(data):
        if data[offset + 4 : offset + 6].decode("latin-1") in EXPLICIT_VR_LENGTH_32:  # a 4-byte length
            offset += 12 + int.from_bytes(data[offset + 8 : offset + 12], "little")
        else:
            offset += 8 + int.from_bytes(data[offset + 6 : offset + 8], "little")
    return offset


def int_or_none(value: Any) -> int | None:
    """A header value as an integer; None when it is absent or no number."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _pixel_data_check(dataset: Dataset, syntax: UID, rows: int | None, columns: int | None, frames: int) -> None:
    samples = int_or_none(value_of(dataset, "SamplesPerPixel")) or 1
    bits = int_or_none(value_of(dataset, "BitsAllocated")) or 0
    if not rows or not columns or bits not in (1, 8, 16, 32, 64) or samples not in (1, 3):
        raise DicomInvalid(_("The image's size or bit depth in the header is missing or impossible."))
    decoded = rows * columns * frames * samples * max(bits, 8) // 8
    if decoded > settings.DICOM_MAX_DECODED_BYTES:
        raise DicomInvalid(
            _(
                "Refused: %(rows)s × %(columns)s pixels × %(frames)s frames would need %(size)s MB of memory to "
                "display; the limit is %(limit)s MB."
            )
            % {
                "rows": rows,
                "columns": columns,
                "frames": frames,
                "size": decoded // 2**20,
                "limit": settings.DICOM_MAX_DECODED_BYTES // 2**20,
            }
        )
    pixels = dataset["PixelData"].value
    if not syntax.is_encapsulated:
        expected = rows * columns * frames * samples * bits // 8
        if bits == 1:
            expected = (rows * columns * frames * samples + 7) // 8
        if len(pixels) < expected:
            raise DicomInvalid(
                _("The pixel data is cut short: %(have)s bytes of the %(need)s the header announces.")
                % {"have": len(pixels), "need": expected}
            )
        return
    try:
        fragments = _fragment_count(pixels)
    except ValueError as exc:
        raise DicomInvalid(
            _("The compressed pixel data is damaged: %(reason)s.") % {"reason": str(exc)[:200]}
        ) from None
    if fragments < frames:
        raise DicomInvalid(
            _("The compressed pixel data is cut short: %(have)s of %(need)s frames are there.")
            % {"have": fragments, "need": frames}
        )


def _fragment_count(pixels: bytes) -> int:
    """Fragments after the basic offset table, each checked to lie inside the data."""
    offset, count, end = 0, 0, len(pixels)
    first = True
    while offset + 8 <= end:
        tag = pixels[offset : offset + 4]
        length = int.from_bytes(pixels[offset + 4 : offset + 8], "little")
        offset += 8
        if tag == b"\xfe\xff\xdd\xe0":  # sequence delimiter
            return count
        if tag != b"\xfe\xff\x00\xe0":
            raise ValueError("an item tag is missing")
        if offset + length > end:
            raise ValueError("a fragment runs past the end of the file")
        if not first:
            count += 1
        first = False
        offset += length
    return count


# Rendering, in the worker only.


class RenderedFrame(NamedTuple):
    pixels: np.ndarray  # display-ready: uint8, grey (rows, columns) or RGB (rows, columns, 3)
    jpeg: bytes


def frames_render(dataset: Dataset, *, quality: int = 85) -> Iterator[RenderedFrame]:
    """Each frame display-ready, as pixels and as a JPEG: modality and VOI LUT (or a robust window), palette
    and YBR to RGB, MONOCHROME1 inverted. Decodes one frame at a time, so a long cine needs one frame's
    memory."""
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    for frame in iter_pixels(dataset):
        pixels = display_frame(dataset, frame, photometric)
        yield RenderedFrame(pixels, _jpeg(pixels, quality))


def display_frame(dataset: Dataset, frame: np.ndarray, photometric: str) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        frame = apply_color_lut(frame, dataset)
        return _to_uint8(frame, frame.min(), frame.max()) if frame.dtype != np.uint8 else frame
    if frame.ndim == 3:  # RGB (pydicom has converted YBR)
        return frame if frame.dtype == np.uint8 else _to_uint8(frame, frame.min(), frame.max())
    values = apply_modality_lut(frame, dataset)
    if "WindowCenter" in dataset or "VOILUTSequence" in dataset:
        try:
            values = apply_voi_lut(values, dataset)
            low, high = float(np.min(values)), float(np.max(values))
        except (ValueError, TypeError, IndexError):
            low, high = _robust_range(values)
    else:
        low, high = _robust_range(values)
    image = _to_uint8(values, low, high)
    return 255 - image if photometric == "MONOCHROME1" else image


def _robust_range(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values[:: max(1, values.size // 65536)], (0.5, 99.5))
    return float(low), float(high)


def _to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    span = max(float(high) - float(low), 1e-6)
    scaled = (values.astype(np.float32) - float(low)) * (255.0 / span)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _jpeg(pixels: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def thumbnail(jpeg: bytes, size: int = 160) -> bytes:
    image = Image.open(io.BytesIO(jpeg))
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()
