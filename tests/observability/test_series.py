"""Bounded time series and interval helpers used by the view and the report."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowloom.observability.series import CountSeries, StepSeries, merge_interval, overlap

samples = st.lists(
    st.tuples(st.floats(0, 50, allow_nan=False), st.integers(-5, 100)), max_size=300
).map(lambda xs: sorted(xs, key=lambda p: p[0]))


@given(samples, st.integers(2, 64))
def test_step_series_keeps_every_value_inside_its_bucket_bounds(
    points: list[tuple[float, int]], max_buckets: int
) -> None:
    series = StepSeries(0.0, width=0.01, max_buckets=max_buckets)
    for t, v in points:
        series.set(t, v)
    buckets = series.buckets()
    assert len(buckets) <= max_buckets
    for t, v in points:
        # the bucket holding t, tolerant to float rounding at bucket edges
        near = [b for b in buckets if b.start - 1e-9 <= t < b.end + 1e-9]
        assert any(b.low <= v <= b.high for b in near)
    if points:
        assert buckets[-1].last == points[-1][1] == series.value


def test_step_series_carries_values_across_empty_buckets_and_to_the_end() -> None:
    series = StepSeries(10.0, width=1.0)
    series.set(10.5, 3)
    series.set(13.2, 1)
    series.extend_to(16.0)
    assert [(b.low, b.high, b.last) for b in series.buckets()] == [
        (0, 3, 3),
        (3, 3, 3),
        (3, 3, 3),
        (1, 3, 1),
        (1, 1, 1),
        (1, 1, 1),
        (1, 1, 1),
    ]


def test_a_series_without_initial_value_starts_at_its_first_value() -> None:
    series = StepSeries(0.0, width=1.0, initial=None)
    assert series.value is None and series.buckets() == []
    series.extend_to(5.0)
    assert series.buckets() == []
    series.set(2.5, 32)
    assert [b.low for b in series.buckets()] == [32, 32, 32]


@given(st.lists(st.floats(0, 100, allow_nan=False), max_size=200), st.integers(2, 32))
def test_count_series_keeps_the_total(times: list[float], max_buckets: int) -> None:
    series = CountSeries(0.0, width=0.01, max_buckets=max_buckets)
    for t in sorted(times):
        series.add(t)
    assert series.total == len(times) == sum(n for _, n in series.points())


intervals = st.lists(
    st.tuples(st.floats(0, 100, allow_nan=False), st.floats(0, 10, allow_nan=False)),
    max_size=40,
)


def _reference_union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(s for s in spans if s[1] > s[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


@given(intervals, st.floats(0, 110, allow_nan=False), st.floats(0, 30, allow_nan=False))
def test_merged_intervals_equal_the_union_and_overlap_is_exact(
    raw: list[tuple[float, float]], start: float, length: float
) -> None:
    merged: list[tuple[float, float]] = []
    spans = [(lo, lo + d) for lo, d in raw]
    for lo, hi in spans:
        merge_interval(merged, lo, hi)
    assert merged == _reference_union(spans)
    expected = sum(max(0.0, min(hi, start + length) - max(lo, start)) for lo, hi in merged)
    assert overlap(merged, start, start + length) == pytest.approx(expected)
