"""Inline SVG dot-and-whisker plots: a figure per line with its interval as a bar."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Final

from dotevals.stats import Interval

__all__ = ["interval_plot"]

_MAX_LABEL_WIDTH: Final = 360
#: About how wide one character of a 12px label is.
_CHAR_WIDTH: Final = 7
_PLOT_WIDTH: Final = 360
_ROW_HEIGHT: Final = 24
_AXIS_HEIGHT: Final = 26


def _bounds(lines: Sequence[tuple[str, Interval | None]], zero: bool) -> tuple[float, float]:
    points = [
        x
        for _, iv in lines
        if iv is not None
        for x in (iv.lo, iv.estimate, iv.hi)
        if x is not None and math.isfinite(x)
    ]
    if zero:
        points.append(0.0)
    if not points:
        return 0.0, 1.0
    low, high = min(points), max(points)
    if zero:
        reach = max(abs(low), abs(high)) or 1.0
        return -reach * 1.1, reach * 1.1
    if 0.0 <= low and high <= 1.0:
        return 0.0, 1.0
    pad = (high - low) * 0.1 or 1.0
    return low - pad, high + pad


def _line(
    y: int, label: str, interval: Interval | None, scale: tuple[float, float], left: int
) -> str:
    low, high = scale

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * _PLOT_WIDTH

    parts = [f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{escape(label)}</text>']
    estimate = None if interval is None else interval.estimate
    if interval is None or estimate is None or not math.isfinite(estimate):
        parts.append(f'<text x="{left + 4}" y="{y + 4}" class="na">n/a</text>')
        return "".join(parts)
    if interval.lo is not None and interval.hi is not None:
        parts.append(
            f'<line x1="{x(interval.lo):.1f}" x2="{x(interval.hi):.1f}" '
            f'y1="{y}" y2="{y}" class="ci"/>'
        )
    parts.append(f'<circle cx="{x(estimate):.1f}" cy="{y}" r="4" class="dot"/>')
    return "".join(parts)


def interval_plot(
    title: str, lines: Sequence[tuple[str, Interval | None]], zero: bool = False
) -> str:
    """An SVG with one labelled dot and interval bar per line; ``zero`` centres the axis on 0."""
    scale = _bounds(lines, zero)
    height = _ROW_HEIGHT * len(lines) + _AXIS_HEIGHT + 18
    axis_y = height - _AXIS_HEIGHT + 6
    left = min(
        _MAX_LABEL_WIDTH, 16 + _CHAR_WIDTH * max((len(label) for label, _ in lines), default=0)
    )
    right = left + _PLOT_WIDTH
    body = [
        _line(30 + i * _ROW_HEIGHT, label, iv, scale, left) for i, (label, iv) in enumerate(lines)
    ]
    ticks = [
        f'<text x="{left}" y="{axis_y + 16}" text-anchor="middle">{scale[0]:.2f}</text>',
        f'<text x="{right}" y="{axis_y + 16}" text-anchor="middle">{scale[1]:.2f}</text>',
    ]
    if zero:
        mid = (left + right) / 2
        ticks.append(f'<line x1="{mid}" x2="{mid}" y1="14" y2="{axis_y}" class="zero"/>')
        ticks.append(f'<text x="{mid}" y="{axis_y + 16}" text-anchor="middle">0</text>')
    return (
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{right + 20}" '
        f'height="{height}" role="img" aria-label="{escape(title)}">'
        f'<text x="4" y="14" class="title">{escape(title)}</text>'
        + "".join(body)
        + f'<line x1="{left}" x2="{right}" y1="{axis_y}" y2="{axis_y}" class="axis"/>'
        + "".join(ticks)
        + "</svg>"
    )
