"""Bounded-memory time series for reports: step functions and counts over a run's wall time.

A series holds at most `max_buckets` fixed-width buckets from an origin. When a sample lands
beyond the last bucket, adjacent buckets are merged pairwise and the width doubles, so memory
stays bounded however long the run, while each bucket keeps what a chart needs: for a step
function its minimum, maximum and last value; for a count series its sum. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DEFAULT_MAX_BUCKETS = 1024
DEFAULT_WIDTH = 0.005


@dataclass(frozen=True, slots=True)
class StepBucket:
    """One bucket of a step function: its span, the extremes reached, and the value at its end."""

    start: float
    end: float
    low: float
    high: float
    last: float


class StepSeries:
    """A step function of time (a count, a limit) sampled into bounded buckets.

    Guarantees: every value the function took inside a bucket lies within `[low, high]` of that
    bucket; `last` is the value at the bucket's end; a bucket nothing happened in carries the
    previous value. Samples earlier than the origin count toward the first bucket.
    """

    __slots__ = ("_buckets", "_high", "_last", "_low", "_max", "_origin", "_value", "_width")

    def __init__(
        self,
        origin: float,
        *,
        initial: float | None = 0.0,
        width: float = DEFAULT_WIDTH,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        if width <= 0 or max_buckets < 2:
            raise ValueError("width must be > 0 and max_buckets >= 2")
        self._origin = origin
        self._width = width
        self._max = max_buckets
        self._value = initial
        start = [] if initial is None else [initial]
        self._low: list[float] = list(start)
        self._high: list[float] = list(start)
        self._last: list[float] = list(start)
        self._buckets: list[StepBucket] | None = None

    @classmethod
    def from_values(
        cls,
        origin: float,
        times: FloatArray,
        values: FloatArray,
        *,
        initial: float | None = 0.0,
        end: float | None = None,
        width: float = DEFAULT_WIDTH,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> StepSeries:
        """The series `set(t, v)` for each sample in order, then `extend_to(end)`, computed
        at once (times in non-decreasing order; otherwise sample by sample)."""
        series = cls(origin, initial=initial, width=width, max_buckets=max_buckets)
        n = len(times)
        if n and np.any(np.diff(times) < 0):
            for t, v in zip(times.tolist(), values.tolist(), strict=True):
                series.set(t, v)
            if end is not None:
                series.extend_to(end)
            return series
        start = float(values[0]) if initial is None and n else initial
        if start is None:
            return series
        top = max(float(times[-1]) if n else origin, origin if end is None else end)
        w = _final_width(origin, top, width, max_buckets)
        idx = np.maximum(0, ((times - origin) / w).astype(np.int64)) if n else np.zeros(0, int)
        count = max(int(idx[-1]) if n else 0, _bucket(origin, end, w)) + 1
        after = np.concatenate(([start], values.astype(np.float64)))  # value after k samples
        bucket_ids = np.arange(count)
        carried = after[np.searchsorted(idx, bucket_ids, side="left")]
        low, high = carried.copy(), carried.copy()
        if n:
            np.minimum.at(low, idx, values)
            np.maximum.at(high, idx, values)
        series._width = w
        series._low = low.tolist()
        series._high = high.tolist()
        series._last = after[np.searchsorted(idx, bucket_ids, side="right")].tolist()
        series._value = float(after[-1])
        return series

    @property
    def value(self) -> float | None:
        """The current (latest) value; None while a series without initial value is unset."""
        return self._value

    def set(self, t: float, value: float) -> None:
        """The function takes `value` from time `t` on (samples must come in time order).

        The first value of a series created without an initial value holds from the origin.
        """
        if self._value is None:
            self._value = value
        self._buckets = None
        i = self._index(t)
        low, high, last = self._low, self._high, self._last
        if value < low[i]:
            low[i] = value
        if value > high[i]:
            high[i] = value
        last[i] = value
        self._value = value

    def add(self, t: float, delta: float) -> None:
        """Shift the function by `delta` from time `t` on (an unset series starts at 0)."""
        self.set(t, (self._value or 0.0) + delta)

    def extend_to(self, t: float) -> None:
        """Carry the current value up to time `t` (so a chart spans the whole run)."""
        if self._value is not None:
            self._buckets = None
            self._index(t)

    def buckets(self) -> list[StepBucket]:
        """The buckets in time order (built once until the series changes; do not mutate)."""
        if self._buckets is None:
            o, w = self._origin, self._width
            self._buckets = [
                StepBucket(o + i * w, o + (i + 1) * w, lo, hi, la)
                for i, (lo, hi, la) in enumerate(
                    zip(self._low, self._high, self._last, strict=True)
                )
            ]
        return self._buckets

    def as_json(self) -> dict[str, Any]:
        """`{origin, width, low[], high[], last[]}`."""
        return {
            "origin": self._origin,
            "width": self._width,
            "low": list(self._low),
            "high": list(self._high),
            "last": list(self._last),
        }

    def _index(self, t: float) -> int:
        i = max(0, int((t - self._origin) / self._width))
        while i >= self._max:
            self._compact()
            i = max(0, int((t - self._origin) / self._width))
        n = len(self._last)
        if i >= n:
            v = self._value
            assert v is not None
            fill = [v] * (i + 1 - n)
            self._low.extend(fill)
            self._high.extend(fill)
            self._last.extend(fill)
        return i

    def _compact(self) -> None:
        low, high, last = self._low, self._high, self._last
        n = len(last)
        self._low = [min(low[i : i + 2]) for i in range(0, n, 2)]
        self._high = [max(high[i : i + 2]) for i in range(0, n, 2)]
        self._last = [last[min(i + 1, n - 1)] for i in range(0, n, 2)]
        self._width *= 2


class CountSeries:
    """Counts of occurrences (429s, completions) per bucket, with the same bounded buckets."""

    __slots__ = ("_counts", "_max", "_origin", "_total", "_width")

    def __init__(
        self, origin: float, *, width: float = DEFAULT_WIDTH, max_buckets: int = DEFAULT_MAX_BUCKETS
    ) -> None:
        if width <= 0 or max_buckets < 2:
            raise ValueError("width must be > 0 and max_buckets >= 2")
        self._origin = origin
        self._width = width
        self._max = max_buckets
        self._counts: list[int] = [0]
        self._total = 0

    @classmethod
    def from_times(
        cls,
        origin: float,
        times: FloatArray,
        *,
        width: float = DEFAULT_WIDTH,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> CountSeries:
        """The series after `add(t)` for each time, computed at once."""
        series = cls(origin, width=width, max_buckets=max_buckets)
        if len(times) == 0:
            return series
        w = _final_width(origin, float(np.max(times)), width, max_buckets)
        idx = np.maximum(0, ((times - origin) / w).astype(np.int64))
        series._width = w
        series._counts = np.bincount(idx).tolist()
        series._total = len(times)
        return series

    @property
    def total(self) -> int:
        """Occurrences counted so far."""
        return self._total

    def add(self, t: float, n: int = 1) -> None:
        """Count `n` occurrences at time `t`."""
        i = max(0, int((t - self._origin) / self._width))
        while i >= self._max:
            c = self._counts
            self._counts = [sum(c[i : i + 2]) for i in range(0, len(c), 2)]
            self._width *= 2
            i = max(0, int((t - self._origin) / self._width))
        if i >= len(self._counts):
            self._counts.extend([0] * (i + 1 - len(self._counts)))
        self._counts[i] += n
        self._total += n

    def points(self) -> list[tuple[float, int]]:
        """`(bucket start, count)` for every non-empty bucket."""
        o, w = self._origin, self._width
        return [(o + i * w, c) for i, c in enumerate(self._counts) if c]


def _final_width(origin: float, top: float, width: float, max_buckets: int) -> float:
    """The bucket width after the doublings that samples up to `top` cause."""
    while max(0, int((top - origin) / width)) >= max_buckets:
        width *= 2
    return width


def _bucket(origin: float, t: float | None, width: float) -> int:
    return -1 if t is None else max(0, int((t - origin) / width))


def merged_intervals(starts: FloatArray, ends: FloatArray) -> list[tuple[float, float]]:
    """The union of `[start, end]` intervals (empty ones dropped) as sorted disjoint
    intervals; touching intervals merge (as `merge_interval` does)."""
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if len(starts) == 0:
        return []
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.empty(len(starts), dtype=bool)
    new[0] = True
    new[1:] = starts[1:] > reach[:-1]
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(starts) - 1]
    return list(zip(starts[first].tolist(), reach[last].tolist(), strict=True))


def overlaps(
    intervals: list[tuple[float, float]], starts: FloatArray, ends: FloatArray
) -> FloatArray:
    """Seconds of each `[start, end]` covered by sorted disjoint `intervals` (0 when empty)."""
    out = np.zeros(len(starts))
    if not intervals or len(starts) == 0:
        return out
    lo = np.array([a for a, _ in intervals])
    hi = np.array([b for _, b in intervals])
    cum = np.concatenate(([0.0], np.cumsum(hi - lo)))

    def covered(x: FloatArray) -> FloatArray:
        k = np.searchsorted(lo, x, side="right")
        j = np.maximum(k - 1, 0)
        part = cum[j] + np.clip(np.minimum(hi[j], x) - lo[j], 0.0, None)
        return np.where(k > 0, part, 0.0)

    return np.where(ends > starts, covered(ends) - covered(starts), 0.0)


def merge_interval(intervals: list[tuple[float, float]], start: float, end: float) -> None:
    """Add `[start, end]` to a list of disjoint intervals kept sorted by start (in place).

    Intervals arrive roughly in time order, so the merge looks only at the tail of the list.
    """
    if end <= start:
        return
    i = len(intervals)
    while i > 0 and intervals[i - 1][0] > start:
        i -= 1
    if i > 0 and intervals[i - 1][1] >= start:
        i -= 1
        start = intervals[i][0]
        end = max(end, intervals[i][1])
    j = i
    while j < len(intervals) and intervals[j][0] <= end:
        end = max(end, intervals[j][1])
        j += 1
    intervals[i:j] = [(start, end)]


def overlap(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of `[start, end]` covered by sorted disjoint `intervals`."""
    if end <= start or not intervals:
        return 0.0
    total = 0.0
    i = len(intervals) - 1
    while i >= 0 and intervals[i][1] > start:
        lo, hi = intervals[i]
        if lo < end:
            total += min(hi, end) - max(lo, start)
        i -= 1
    return total
