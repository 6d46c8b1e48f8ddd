"""Chart paths: a step line leaves out the steps that draw nothing, and draws the same shape."""

from __future__ import annotations

import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from rowloom.interface.report_charts import Line, _path


def _vertices(d: str) -> list[tuple[float, float]]:
    """The corners of the polyline a path's M/H/V/L commands draw (repeated points and
    points passed straight through removed): what is drawn, not how it is written."""
    pts: list[tuple[float, float]] = []
    for cmd, a, b in re.findall(r"([MLHV])(-?[\d.]+)(?:,(-?[\d.]+))?", d):
        x, y = pts[-1] if pts else (0.0, 0.0)
        if cmd in "ML":
            pts.append((float(a), float(b)))
        else:
            pts.append((float(a), y) if cmd == "H" else (x, float(a)))
    out: list[tuple[float, float]] = []
    for p in pts:
        if out and p == out[-1]:
            continue
        if len(out) >= 2:
            (x0, y0), (x1, y1) = out[-2], out[-1]
            if (x0 == x1 == p[0] and (y0 - y1) * (y1 - p[1]) >= 0) or (
                y0 == y1 == p[1] and (x0 - x1) * (x1 - p[0]) >= 0
            ):
                out[-1] = p
                continue
        out.append(p)
    return out


def _every_step(points: list[tuple[float, float]]) -> str:
    """Each point as its own horizontal-then-vertical step."""
    (x0, y0), *rest = points
    return f"M{x0:.1f},{y0:.1f}" + "".join(f"H{x:.1f}V{y:.1f}" for x, y in rest)


@given(st.lists(st.tuples(st.floats(0, 5), st.sampled_from((0.0, 1.0, 2.5))), min_size=1))
def test_a_step_path_draws_the_same_shape_with_only_the_level_changes(
    steps: list[tuple[float, float]],
) -> None:
    x, points = 0.0, []
    for dx, y in steps:
        x += dx
        points.append((x, y))
    svg = _path(Line("l", points, "#000"), lambda v: v, lambda v: v)
    d = re.search(r'<path d="([^"]+)"', svg)
    assert d is not None
    assert _vertices(d.group(1)) == _vertices(_every_step(points))
    changes = sum(1 for (_, a), (_, b) in itertools.pairwise(points) if a != b)
    assert d.group(1).count("V") <= changes + 1
