"""What the browser viewer needs from a stored DICOM file: display hints from its header, and one frame's
values for true window/level.

The hints hold nothing that identifies a patient (window, frame rate, transfer syntax, bit depth), so they
are cached by the file's content hash: the bytes behind a hash never change.
"""

import gzip
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pydicom
from django.core.cache import cache
from django.core.files.storage import default_storage
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, pixel_array
from pydicom.uid import UID

from diagnostics.dicom import MONOCHROME, int_or_none
from diagnostics.models import Instance

RAW = "raw"  # values after the modality LUT, windowed in the browser
JPEG = "jpeg"  # the pipeline's display-ready frames, windowed in the browser on their 8-bit values
_HINTS_VERSION = 1
_INT16 = np.iinfo(np.int16)
_INT32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class Hints:
    """How to show an instance, read from its header."""

    kind: str
    window: tuple[float, float] | None  # the header's first (center, width)
    hounsfield: bool  # values are CT numbers, so the CT presets mean something
    invert: bool  # MONOCHROME1: low values are white
    frame_rate: float | None  # frames per second for cine
    transfer_syntax: str
    bits_stored: int | None
    burned_in: str  # the header's Burned In Annotation: "YES", "NO" or "" (not declared)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window"] = None if self.window is None else {"center": self.window[0], "width": self.window[1]}
        return data


def hints_of(dataset: Dataset) -> Hints:
    photometric = str(dataset.get("PhotometricInterpretation", "") or "").strip()
    bits = int_or_none(dataset.get("BitsStored"))
    samples = int_or_none(dataset.get("SamplesPerPixel")) or 1
    raw = photometric in MONOCHROME and samples == 1 and (bits or 8) > 8
    meta = getattr(dataset, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""
    return Hints(
        kind=RAW if raw else JPEG,
        window=_window(dataset),
        hounsfield=str(dataset.get("Modality", "")) == "CT" or str(dataset.get("RescaleType", "")).upper() == "HU",
        # The JPEG frames are already inverted by the pipeline; raw values are not.
        invert=raw and photometric == "MONOCHROME1",
        frame_rate=frame_rate(dataset),
        transfer_syntax=UID(syntax).name if syntax else "",
        bits_stored=bits,
        burned_in=str(dataset.get("BurnedInAnnotation", "") or "").strip().upper(),
    )


def frame_rate(dataset: Dataset) -> float | None:
    """Frames per second the modality recommends for a cine loop, if it says."""
    for keyword in ("RecommendedDisplayFrameRate", "CineRate"):
        rate = _float(dataset.get(keyword))
        if rate and 0 < rate <= 1000:
            return rate
    frame_time = _float(dataset.get("FrameTime"))  # milliseconds between frames
    if frame_time and frame_time > 0:
        return round(1000.0 / frame_time, 3)
    return None


def _window(dataset: Dataset) -> tuple[float, float] | None:
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is None or width is None:
        return None
    first_center = _float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
    first_width = _float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
    if first_center is None or not first_width or first_width <= 0:
        return None
    return first_center, first_width


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def header_of(instance: Instance) -> Dataset | None:
    """The stored file's header, pixel data not read; None if the file cannot be read."""
    try:
        with default_storage.open(instance.file.name, "rb") as stored:
            return pydicom.dcmread(stored, stop_before_pixels=True)
    except (OSError, InvalidDicomError, ValueError, EOFError):
        return None


def instance_hints(instance: Instance) -> Hints | None:
    key = f"viewer:hints:{_HINTS_VERSION}:{instance.sha256}"
    cached = cache.get(key)
    if isinstance(cached, Hints):
        return cached
    header = header_of(instance)
    if header is None:
        return None
    hints = hints_of(header)
    cache.set(key, hints, timeout=30 * 24 * 3600)
    return hints


# One frame's values.


def frame_values(source: Any, index: int) -> np.ndarray:
    """Frame `index` (from 0) of a readable, seekable binary file, after the modality LUT; only that frame is
    read and decoded."""
    header = Dataset()
    pixels = pixel_array(source, index=index, ds_out=header)
    return np.asarray(apply_modality_lut(pixels, header))


def values_encode(values: np.ndarray) -> tuple[bytes, str]:
    """Little-endian values, as compact as exact allows, and their type ("int16", "int32" or "float32").

    Integer rows are sent as differences from their left neighbour (wrapping, like PNG's "Sub" filter):
    neighbouring pixels are alike, so the differences are small and gzip shrinks them a third further."""
    if np.issubdtype(values.dtype, np.integer) or np.array_equal(values, np.round(values)):
        low, high = float(values.min()), float(values.max())
        if _INT16.min <= low and high <= _INT16.max:
            dtype = "int16"
        elif _INT32.min <= low and high <= _INT32.max:
            dtype = "int32"
        else:
            return values.astype("<f4").tobytes(), "float32"
        typed = values.astype("<i2" if dtype == "int16" else "<i4")
        rows = typed.reshape(typed.shape[0], -1)
        filtered = rows.copy()
        filtered[:, 1:] = rows[:, 1:] - rows[:, :-1]  # integer arithmetic wraps, so the browser's sum undoes it
        return filtered.tobytes(), dtype
    return values.astype("<f4").tobytes(), "float32"


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)
