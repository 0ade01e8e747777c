"""Trend charts of lab results, drawn by the server as inline SVG: no script, no charting library, no CDN.

A chart shows one test over time: a time axis, a value axis with a few round ticks, the reference range
as a shaded band, the results as points joined by a line, critical ones in red, each point's time, value
and flag in its <title> (the browser's tooltip, and what a screen reader reads).
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import dateformat, timezone
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 12, 30  # margins around the plot area, in SVG units
VALUE_TICKS = 5


@dataclass(frozen=True)
class Point:
    at: datetime
    value: Decimal
    label: str  # the value as the results table writes it ("<0.01", "7.2")
    flag: str = ""  # Observation.Flag
    flag_label: str = ""


def _n(coordinate: float) -> str:
    return f"{coordinate:.1f}"


def _round_step(span: float, ticks: int) -> float:
    """A step of 1, 2 or 5 times a power of ten that cuts `span` into about `ticks` parts."""
    raw = span / max(ticks - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _value_axis(values: list[float], low: float | None, high: float | None) -> tuple[float, float, float]:
    """(bottom, top, step) of the value axis: the points and the range, padded, on round ticks."""
    candidates = values + [bound for bound in (low, high) if bound is not None]
    bottom, top = min(candidates), max(candidates)
    if math.isclose(bottom, top):
        pad = abs(top) * 0.1 or 1.0
        bottom, top = bottom - pad, top + pad
    step = _round_step(top - bottom, VALUE_TICKS)
    bottom = math.floor(bottom / step) * step
    top = math.ceil(top / step) * step
    if min(values) >= 0 and bottom < 0:  # results of these tests are not negative
        bottom = 0.0
    return bottom, top, step


def _step_decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step))) if step < 1 else 0


def trend_svg(
    points: list[Point],
    *,
    title: str,
    unit: str,
    low: Decimal | None = None,
    high: Decimal | None = None,
) -> SafeString:
    """An SVG line chart of `points` (oldest first). Empty for fewer than two points: no trend to show."""
    if len(points) < 2:
        return SafeString("")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    first, last = points[0].at, points[-1].at
    span = (last - first).total_seconds() or 1.0
    low_f = float(low) if low is not None else None
    high_f = float(high) if high is not None else None
    bottom, top, step = _value_axis([float(point.value) for point in points], low_f, high_f)

    def x(at: datetime) -> float:
        if first == last:
            return LEFT + plot_w / 2
        return LEFT + plot_w * (at - first).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_h * (top - min(max(value, bottom), top)) / (top - bottom)

    parts: list[SafeString] = []
    if low_f is not None or high_f is not None:
        band_top = y(high_f) if high_f is not None else TOP
        band_bottom = y(low_f) if low_f is not None else TOP + plot_h
        parts.append(
            format_html(
                '<rect class="trend-band" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
                LEFT,
                _n(band_top),
                plot_w,
                _n(max(band_bottom - band_top, 0.5)),
                _("Reference range"),
            )
        )
    decimals = _step_decimals(step)
    ticks = []
    tick = bottom
    while tick <= top + step / 1000:
        ticks.append(tick)
        tick += step
    parts.append(
        format_html_join(
            "",
            '<line class="trend-grid" x1="{0}" y1="{1}" x2="{2}" y2="{1}"/>'
            '<text class="trend-tick" x="{3}" y="{1}" text-anchor="end" dominant-baseline="middle">{4}</text>',
            (
                (
                    LEFT,
                    _n(y(value)),
                    LEFT + plot_w,
                    LEFT - 6,
                    number_format(round(value, decimals), decimal_pos=decimals),
                )
                for value in ticks
            ),
        )
    )
    parts.append(
        format_html(
            '<line class="trend-axis" x1="{0}" y1="{1}" x2="{0}" y2="{2}"/>'
            '<line class="trend-axis" x1="{0}" y1="{2}" x2="{3}" y2="{2}"/>',
            LEFT,
            TOP,
            TOP + plot_h,
            LEFT + plot_w,
        )
    )
    short = (last - first) < timedelta(days=2)
    time_format = "H:i" if short else "d.m.y"
    times = (
        [(first, "middle")]
        if first == last
        else [(first, "start"), (first + (last - first) / 2, "middle"), (last, "end")]
    )
    parts.append(
        format_html_join(
            "",
            '<text class="trend-tick" x="{}" y="{}" text-anchor="{}">{}</text>',
            (
                (_n(x(at)), HEIGHT - 10, anchor, dateformat.format(timezone.localtime(at), time_format))
                for at, anchor in times
            ),
        )
    )
    if short:
        parts.append(
            format_html(
                '<text class="trend-tick" x="{}" y="{}" text-anchor="end">{}</text>',
                LEFT - 6,
                HEIGHT - 10,
                dateformat.format(timezone.localtime(first), "d.m"),
            )
        )
    parts.append(
        format_html(
            '<polyline class="trend-line" points="{}"/>',
            " ".join(f"{x(point.at):.1f},{y(float(point.value)):.1f}" for point in points),
        )
    )
    parts.append(
        format_html_join(
            "",
            '<circle class="trend-point{}" cx="{}" cy="{}" r="{}" data-testid="trend-point">'
            "<title>{}: {} {}{}</title></circle>",
            (
                (
                    " critical" if point.flag in ("critical_low", "critical_high") else "",
                    _n(x(point.at)),
                    _n(y(float(point.value))),
                    5 if point.flag in ("critical_low", "critical_high") else 4,
                    dateformat.format(timezone.localtime(point.at), "d.m.Y H:i"),
                    point.label,
                    unit,
                    f" ({point.flag_label})" if point.flag_label else "",
                )
                for point in points
            ),
        )
    )
    return format_html(
        '<svg class="trend" viewBox="0 0 {} {}" role="img" aria-label="{}" data-testid="trend-chart" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        WIDTH,
        HEIGHT,
        title,
        title,
        format_html_join("", "{}", ((part,) for part in parts)),  # each part is already escaped
    )
