"""Inline SVG charts for the run report: no script, no network, escaped text only.

Each function returns one `<svg>` element as a string. Coordinates are data units mapped to a
fixed viewBox, so charts scale with the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH = 760
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 12, 14, 30


@dataclass(frozen=True, slots=True)
class Line:
    """One series: `(x, y)` points drawn as a step function (or straight segments)."""

    label: str
    points: Sequence[tuple[float, float]]
    color: str
    dashed: bool = False
    step: bool = True
    fill: bool = False
    width: float = 1.6


@dataclass(frozen=True, slots=True)
class Chart:
    """A time chart: lines, shaded x-bands (cooldowns) and x-markers (429s with counts)."""

    title: str
    lines: Sequence[Line]
    x_max: float
    y_label: str = ""
    bands: Sequence[tuple[float, float]] = ()
    band_label: str = ""
    markers: Sequence[tuple[float, int]] = ()
    marker_label: str = ""
    y_max: float | None = None
    notes: Sequence[str] = field(default_factory=tuple)


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _fmt(v: float) -> str:
    if v == int(v):
        return f"{int(v)}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def time_chart(chart: Chart) -> str:
    """A line chart over run time (seconds) with legend, bands and markers."""
    y_top = chart.y_max
    if y_top is None:
        y_top = max((y for ln in chart.lines for _, y in ln.points), default=1.0)
    y_ticks = nice_ticks(max(y_top, 1.0))
    x_ticks = nice_ticks(max(chart.x_max, 1e-3), 6)
    y_max, x_max = y_ticks[-1], x_ticks[-1]
    pw, ph = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + pw * min(max(x, 0.0), x_max) / x_max

    def sy(y: float) -> float:
        return _TOP + ph * (1 - min(max(y, 0.0), y_max) / y_max)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(chart.title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for y in y_ticks:
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" '
            f'class="grid"/><text x="{_LEFT - 6}" y="{sy(y) + 4:.1f}" class="tick" '
            f'text-anchor="end">{_fmt(y)}</text>'
        )
    for x in x_ticks:
        parts.append(
            f'<text x="{sx(x):.1f}" y="{HEIGHT - _BOTTOM + 16}" class="tick" '
            f'text-anchor="middle">{_fmt(x)}s</text>'
        )
    for lo, hi in chart.bands:
        parts.append(
            f'<rect x="{sx(lo):.1f}" y="{_TOP}" width="{max(sx(hi) - sx(lo), 1.0):.1f}" '
            f'height="{ph}" class="band"><title>{escape(chart.band_label)} '
            f"{_fmt(round(lo, 2))}s to {_fmt(round(hi, 2))}s</title></rect>"
        )
    for ln in chart.lines:
        parts.append(_path(ln, sx, sy))
    for x, n in chart.markers:
        parts.append(
            f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{_TOP + ph}" y2="{_TOP + ph - 10}" '
            f'class="marker"><title>{n} {escape(chart.marker_label)} near {_fmt(round(x, 2))}s'
            "</title></line>"
        )
    parts.append(
        f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{_TOP + ph}" class="axis"/>'
        f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_TOP + ph}" y2="{_TOP + ph}" '
        'class="axis"/>'
    )
    if chart.y_label:
        parts.append(
            f'<text x="12" y="{_TOP + ph / 2:.1f}" class="tick" text-anchor="middle" '
            f'transform="rotate(-90 12 {_TOP + ph / 2:.1f})">{escape(chart.y_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(chart: Chart) -> str:
    """An HTML legend for a chart's lines, bands and markers."""
    items = [
        f'<span class="key"><i style="background:{escape(ln.color)}"'
        f"{' class=dash' if ln.dashed else ''}></i>{escape(ln.label)}</span>"
        for ln in chart.lines
    ]
    if chart.bands:
        items.append(f'<span class="key"><i class="bandkey"></i>{escape(chart.band_label)}</span>')
    if chart.markers:
        total = sum(n for _, n in chart.markers)
        items.append(
            f'<span class="key"><i class="markerkey"></i>{escape(chart.marker_label)} '
            f"({total})</span>"
        )
    return '<div class="legend">' + "".join(items) + "</div>"


def _path(ln: Line, sx: Callable[[float], float], sy: Callable[[float], float]) -> str:
    if not ln.points:
        return ""
    pts = [(f"{sx(x):.1f}", f"{sy(y):.1f}") for x, y in ln.points]
    (mx, my), rest = pts[0], pts[1:]
    if ln.step:
        # a step to the height it is already at draws nothing: the next H covers it
        last = len(rest) - 1
        keep = [p for i, p in enumerate(rest) if i == last or p[1] != pts[i][1]]
        d = f"M{mx},{my}" + "".join(f"H{x}V{y}" for x, y in keep)
    else:
        d = f"M{mx},{my}" + "".join(f"L{x},{y}" for x, y in rest)
    dash = ' stroke-dasharray="6 4"' if ln.dashed else ""
    title = f"<title>{escape(ln.label)}</title>"
    if ln.fill:
        x0, x1 = sx(ln.points[0][0]), sx(ln.points[-1][0])
        base = sy(0.0)
        return (
            f'<path d="{d}V{base:.1f}H{x0:.1f}Z" fill="{ln.color}" fill-opacity="0.18" '
            f'stroke="none"/><path d="{d}" fill="none" stroke="{ln.color}" '
            f'stroke-width="{ln.width}"{dash}>{title}</path>'
            if x1 >= x0
            else ""
        )
    return (
        f'<path d="{d}" fill="none" stroke="{ln.color}" stroke-width="{ln.width}"{dash}>'
        f"{title}</path>"
    )


def bar_rows(rows: Sequence[tuple[str, float, str]], *, unit: str = "") -> str:
    """Horizontal bars as HTML (label, value, caption), scaled to the largest value."""
    top = max((v for _, v, _ in rows), default=0.0)
    out = ['<div class="bars">']
    for label, value, caption in rows:
        pct = 0.0 if top <= 0 else 100.0 * value / top
        out.append(
            f'<div class="bar"><span class="bl">{escape(label)}</span>'
            f'<span class="bt"><span class="bf" style="width:{pct:.1f}%"></span></span>'
            f'<span class="bv">{escape(caption)}{escape(unit)}</span></div>'
        )
    out.append("</div>")
    return "".join(out)
