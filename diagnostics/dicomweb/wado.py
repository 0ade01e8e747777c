"""WADO-RS: what retrieval reads from a stored file (Django's storage API; no local paths assumed).

Files are served as they were stored (no transcoding). Frames are decoded by pydicom one at a time, as it
decodes them for display: colour as RGB, interleaved, so the metadata says so too (Photometric
Interpretation RGB, Planar Configuration 0), and a client interprets the frames it is given.
"""

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from django.db.models.fields.files import FieldFile
from django.utils.translation import gettext as _
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_windowing, pack_bits, pixel_array

from diagnostics.dicom import MONOCHROME, display_frame
from diagnostics.models import Instance

CHUNK = 1024 * 1024
# Binary values longer than this (icons, overlays, waveforms, private blobs) are left out of metadata;
# palette colour lookup tables (up to 128 KiB each) stay in, as a viewer needs them.
MAX_INLINE_BINARY = 256 * 1024
# Pixel Data and its kin: served as frames, never in metadata.
_PIXEL_TAGS = {0x7FE00008, 0x7FE00009, 0x7FE00010}
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"}
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
MAX_VIEWPORT = 4096


class FrameUnavailable(ValueError):
    """The stored image cannot give these frames; the message says why, for a person."""


def file_chunks(file: FieldFile) -> Iterator[bytes]:
    """The stored file's bytes, a chunk at a time (opened only when the first chunk is asked for)."""
    with file.storage.open(str(file.name), "rb") as stored:
        while chunk := stored.read(CHUNK):
            yield chunk


def header(file: FieldFile) -> Dataset:
    with file.storage.open(str(file.name), "rb") as stored:
        return pydicom.dcmread(stored, stop_before_pixels=True)


def metadata(instance: Instance) -> dict[str, Any]:
    """The instance's header as DICOM JSON, without its pixel data and long binary values, describing
    the frames as /frames serves them."""
    dataset = header(instance.file)
    dataset.walk(_drop_bulk)
    if int(dataset.get("SamplesPerPixel", 1) or 1) == 3:
        if str(dataset.get("PhotometricInterpretation", "")).startswith("YBR"):
            dataset.PhotometricInterpretation = "RGB"
        dataset.PlanarConfiguration = 0
    return dataset.to_json_dict(suppress_invalid_tags=True)


def _drop_bulk(dataset: Dataset, element: Any) -> None:
    long_binary = element.VR in _BINARY_VRS and element.value is not None and len(element.value) > MAX_INLINE_BINARY
    if element.tag in _PIXEL_TAGS or long_binary:
        del dataset[element.tag]


def frame_numbers(text: str, frames: int) -> list[int]:
    """Frame numbers from a path's "1,2,3" (counted from 1, as DICOM does); FrameUnavailable when one
    is no number or beyond the image."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise FrameUnavailable(
            _("“%(frames)s” is not a list of frame numbers such as 1,2,3.") % {"frames": text[:40]}
        ) from None
    beyond = [n for n in numbers if not 1 <= n <= frames]
    if beyond:
        raise FrameUnavailable(
            _("The image has %(count)s frame(s), numbered from 1; there is no frame %(frame)s.")
            % {"count": frames, "frame": beyond[0]}
        )
    return numbers


def frames_native(instance: Instance, numbers: list[int]) -> Iterator[bytes]:
    """Each frame's decoded pixels, little endian (Explicit VR Little Endian's native form), decoding one
    frame at a time."""
    with instance.file.storage.open(instance.file.name, "rb") as stored:
        bits = int(pydicom.dcmread(stored, stop_before_pixels=True).get("BitsAllocated", 8) or 8)
        for number in numbers:
            stored.seek(0)
            frame = _decoded(stored, number)
            if bits == 1:
                yield pack_bits(frame)
            else:
                yield frame.astype(frame.dtype.newbyteorder("<"), copy=False).tobytes()


def _decoded(stored: Any, number: int) -> np.ndarray:
    try:
        return pixel_array(stored, index=number - 1)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError, TypeError) as exc:
        raise FrameUnavailable(_("The image cannot be decoded: %(reason)s") % {"reason": str(exc)[:300]}) from None


@dataclass(frozen=True)
class Rendering:
    media_type: str  # image/jpeg or image/png
    window: tuple[float, float, str] | None = None  # center, width, VOI LUT function
    viewport: tuple[int, int] | None = None  # width, height to fit into
    quality: int = 90


def rendered(instance: Instance, number: int, rendering: Rendering) -> bytes:
    """One frame as a display-ready JPEG or PNG: the header's window (or a robust one) unless the request
    gives its own, fitted into the viewport with its aspect ratio kept."""
    with instance.file.storage.open(instance.file.name, "rb") as stored:
        dataset = pydicom.dcmread(stored, stop_before_pixels=True)
        stored.seek(0)
        frame = _decoded(stored, number)
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if rendering.window is not None and frame.ndim == 2 and photometric in MONOCHROME:
        pixels = windowed(apply_modality_lut(frame, dataset), *rendering.window)
        if photometric == "MONOCHROME1":
            pixels = 255 - pixels
    else:
        pixels = display_frame(dataset, frame, photometric)
    image = Image.fromarray(pixels)
    if rendering.viewport is not None:
        width, height = rendering.viewport
        scale = min(width / image.width, height / image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if rendering.media_type == "image/png":
        image.save(out, format="PNG")
    else:
        image.save(out, format="JPEG", quality=rendering.quality)
    return out.getvalue()


def windowed(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """Values through a window (PS3.3 C.11.2.1.2: LINEAR, LINEAR_EXACT or SIGMOID) onto 0..255, by
    pydicom's windowing with an 8-bit output range."""
    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored = 8
    voi.PixelRepresentation = 0
    voi.WindowCenter = f"{center:.8g}"  # a decimal string (DS) holds 16 characters at most
    voi.WindowWidth = f"{width:.8g}"
    voi.VOILUTFunction = function
    try:
        out = apply_windowing(np.asarray(values, dtype=np.float64), voi)
    except ValueError as exc:
        raise FrameUnavailable(str(exc)) from None
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
