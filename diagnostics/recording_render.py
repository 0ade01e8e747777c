"""Pictures of a recording and the heart rate of an ECG, from decoded samples (numpy, scipy.signal, Pillow).

No plotting library: a waveform is a min/max envelope per pixel column, a spectrogram an STFT put through a
colour table, an ECG trace drawn on ECG paper at the standard 25 mm/s and 10 mm/mV. R peaks are found by
XQRS from the `wfdb` package (PhysioNet's own detector), which the ECG reader brings anyway.
"""

import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

Samples = np.ndarray[Any, np.dtype[np.floating[Any]]]

WAVEFORM_SIZE = (1200, 160)
SPECTROGRAM_SIZE = (1200, 240)
# Highest frequency a spectrogram shows: heart sounds and murmurs lie below ~600 Hz; breath sounds, wheezes
# and crackles reach ~2 kHz.
SPECTROGRAM_TOP_HZ = {"heart": 1000.0, "lung": 2000.0}
SPECTROGRAM_RANGE_DB = 70.0
# ECG paper: pixels per millimetre, paper speed and gain; strips of ten seconds, at most six of them.
PX_PER_MM = 4
MM_PER_S = 25
MM_PER_MV = 10
STRIP_S = 10
STRIPS_MAX = 6
STRIP_MM = 40
# Plausible beat-to-beat intervals (200 to 25 beats per minute): anything else is a missed or doubled beat.
RR_RANGE_S = (0.3, 2.4)

INK = (29, 42, 51)
PAPER = (255, 255, 255)
GRID_MINOR = (252, 218, 218)
GRID_MAJOR = (240, 160, 160)
TICK = (150, 160, 168)
# Anchors of the viridis colour map (dark blue to yellow), interpolated to 256 entries.
_VIRIDIS = [
    (0.0, (68, 1, 84)),
    (0.25, (59, 82, 139)),
    (0.5, (33, 145, 140)),
    (0.75, (94, 201, 98)),
    (1.0, (253, 231, 37)),
]


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def waveform_png(samples: Samples, sample_rate: float, *, size: tuple[int, int] = WAVEFORM_SIZE) -> bytes:
    """The whole recording as the min and max of the samples under each pixel column, scaled to its peak,
    with a tick at every second (every ten beyond two minutes)."""
    values = np.asarray(samples, dtype=np.float32).ravel()
    width, height = size
    width = max(1, min(width, len(values)))
    edges = np.linspace(0, len(values), width + 1).astype(np.int64)[:-1]
    lows, highs = np.minimum.reduceat(values, edges), np.maximum.reduceat(values, edges)
    peak = max(float(np.max(np.abs(values))) if len(values) else 0.0, 1e-9)
    middle = (height - 1) / 2
    tops = np.round(middle - highs / peak * middle * 0.95).astype(np.int64)
    bottoms = np.round(middle - lows / peak * middle * 0.95).astype(np.int64)
    rows = np.arange(height)[:, np.newaxis]
    ink = (rows >= tops[np.newaxis, :]) & (rows <= bottoms[np.newaxis, :])
    pixels = np.full((height, width, 3), PAPER, dtype=np.uint8)
    pixels[int(middle), :] = TICK
    seconds = len(values) / sample_rate
    step = 1 if seconds <= 120 else 10
    for second in np.arange(step, seconds, step):
        pixels[height - 6 :, min(width - 1, int(second / seconds * width))] = TICK
    pixels[ink] = INK
    return _png(Image.fromarray(pixels))


def spectrogram_png(
    samples: Samples, sample_rate: float, *, top_hz: float, size: tuple[int, int] = SPECTROGRAM_SIZE
) -> bytes:
    """Power over time (left to right) and frequency (bottom to top, up to `top_hz`) in decibels below the
    loudest point, over a range of SPECTROGRAM_RANGE_DB."""
    from scipy import signal

    values = np.asarray(samples, dtype=np.float64).ravel()
    top_hz = min(top_hz, sample_rate / 2)
    factor = int(sample_rate // (2.5 * top_hz))
    if factor > 1:  # fewer samples, same picture: filtered against aliasing, then decimated
        values = signal.resample_poly(values, 1, factor)
        sample_rate /= factor
    window = int(2 ** round(np.log2(max(sample_rate * 0.05, 16))))  # about 50 ms
    window = min(window, max(len(values), 16))
    frequencies, _times, power = signal.spectrogram(
        values, fs=sample_rate, window="hann", nperseg=window, noverlap=window * 3 // 4, mode="psd"
    )
    power = power[frequencies <= top_hz]
    if power.size == 0:
        power = np.zeros((1, 1))
    decibels = 10 * np.log10(power + 1e-20)
    loudest = float(decibels.max())
    scaled = np.clip((decibels - (loudest - SPECTROGRAM_RANGE_DB)) / SPECTROGRAM_RANGE_DB, 0, 1)
    grey = Image.fromarray(np.flipud((scaled * 255).astype(np.uint8)), mode="L").resize(size, Image.Resampling.BILINEAR)
    return _png(Image.fromarray(_colour_table()[np.asarray(grey)]))


def _colour_table() -> np.ndarray[Any, np.dtype[np.uint8]]:
    points = np.linspace(0, 1, 256)
    stops = [stop for stop, _colour in _VIRIDIS]
    channels = [np.interp(points, stops, [colour[c] for _stop, colour in _VIRIDIS]) for c in range(3)]
    return np.stack(channels, axis=1).astype(np.uint8)


def lead_choose(names: list[str]) -> int:
    """The lead to trace and count beats on: II (as a 12-lead ECG's rhythm strip), MLII (Holter), or the first."""
    wanted = [name.strip().upper() for name in names]
    for candidate in ("II", "MLII", "LEAD II", "LEAD_II"):
        if candidate in wanted:
            return wanted.index(candidate)
    return 0


def _baseline_removed(values: Samples, sample_rate: float) -> Samples:
    """Breathing and electrode drift (below 0.5 Hz) taken out for reading, without shifting the waves."""
    from scipy import signal

    if len(values) < sample_rate * 2:
        return values - np.median(values)
    sections = signal.butter(2, 0.5, btype="highpass", fs=sample_rate, output="sos")
    return np.asarray(signal.sosfiltfilt(sections, values), dtype=np.float64)


def ecg_trace_png(samples_mv: Samples, sample_rate: float) -> bytes:
    """One lead on ECG paper (1 mm and 5 mm squares), ten seconds a strip, with a 1 mV calibration pulse."""
    values = _baseline_removed(np.asarray(samples_mv, dtype=np.float64).ravel(), sample_rate)
    per_strip = max(1, round(STRIP_S * sample_rate))
    strips = max(1, min(STRIPS_MAX, int(np.ceil(len(values) / per_strip))))
    pulse_mm = 10
    width = (pulse_mm + STRIP_S * MM_PER_S) * PX_PER_MM
    strip_height = STRIP_MM * PX_PER_MM
    pixels = np.full((strip_height * strips, width, 3), PAPER, dtype=np.uint8)
    pixels[:, ::PX_PER_MM] = GRID_MINOR
    pixels[::PX_PER_MM, :] = GRID_MINOR
    pixels[:, :: PX_PER_MM * 5] = GRID_MAJOR
    pixels[:: PX_PER_MM * 5, :] = GRID_MAJOR
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    px_per_mv = MM_PER_MV * PX_PER_MM
    px_per_s = MM_PER_S * PX_PER_MM
    for strip in range(strips):
        base = strip * strip_height + strip_height * 0.6
        left = pulse_mm * PX_PER_MM
        # Calibration: 1 mV high, 0.2 s wide, so the reader can check the gain.
        pulse = [(4, base), (12, base), (12, base - px_per_mv), (32, base - px_per_mv), (32, base), (left, base)]
        draw.line(pulse, fill=INK, width=2)
        piece = values[strip * per_strip : (strip + 1) * per_strip]
        if len(piece) < 2:
            continue
        xs = left + np.arange(len(piece)) / sample_rate * px_per_s
        ys = np.clip(base - piece * px_per_mv, strip * strip_height, (strip + 1) * strip_height - 1)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=INK, width=2, joint="curve")
    return _png(image)


def heart_rate(samples_mv: Samples, sample_rate: float) -> tuple[float | None, int]:
    """(beats per minute from the median R-R interval, R peaks found); None when too few beats to say."""
    from wfdb.processing import xqrs_detect

    values = np.asarray(samples_mv, dtype=np.float64).ravel()
    if len(values) < sample_rate * 3 or not np.any(values):
        return None, 0
    peaks = np.asarray(xqrs_detect(values, fs=sample_rate, verbose=False))
    if len(peaks) < 3:
        return None, len(peaks)
    intervals = np.diff(peaks) / sample_rate
    plausible = intervals[(intervals >= RR_RANGE_S[0]) & (intervals <= RR_RANGE_S[1])]
    if len(plausible) < 2:
        return None, len(peaks)
    return round(60.0 / float(np.median(plausible)), 1), len(peaks)
