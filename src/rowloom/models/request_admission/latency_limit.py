"""`LatencyLimitRule`: a gradient-style limit for servers that queue instead of answering 429.

vLLM and llama.cpp accept every request and queue what their slots cannot serve, so loss-based
AIMD never sees a drop and keeps the limit at its max while latency grows without bound. This
rule (named `latency`) compares short-term latency to a no-load estimate:

- slow start: the limit starts at 2 (not at the configured max, whose first burst would queue
  on the server before any answer came back) and doubles every window while requests do not
  queue, until a window shows queueing; from then on it adjusts as below;
- successes are folded into windows of `max(window_size, limit)` samples (about one round trip
  of requests; during slow start, `limit` samples); a window's mean latency is the short-term
  RTT;
- the no-load RTT starts as the mean of the first answers (sent two at a time, so unqueued) and
  is re-measured by a drain probe, as BBR's ProbeRTT does: the limit is halved for a window of
  about two rounds of requests (long enough that the fast answers arriving first do not bias
  it), whose mean over requests that found no queue is averaged into the estimate; then the
  limit is restored. A minimum over noisy windows would sink forever, and a moving average of
  loaded windows would drift up with the queue; the probe does neither. Probes start every 8
  windows and space out to every 128 while the estimate holds steady. At limit 1 every window
  is a probe (nothing of ours can queue);
- short / no-load above `tolerance` means requests queue on the server: the limit is cut toward
  the level that would bring the ratio back to the middle of the band (at most halved);
- a ratio at or below `increase_below` in a window that really ran at the limit adds one;
  in between the limit holds, so it settles where a few requests queue (the server's knee);
- samples from leases granted above the current limit are skipped (they describe the old
  limit's queue), so one overload is not punished twice;
- a rate-limited sample (429, 503, 529) is a drop: multiplicative decrease (and ends slow start).

Pure and deterministic: no clock, no I/O; the limit stays within `[1, max_limit]`.
"""

from __future__ import annotations

import math
from typing import Final

from rowloom.models.request_admission.limits import BoundedLimit, RequestLimitSample

_EPSILON = 1e-9
DEFAULT_TOLERANCE: Final = 1.5
DEFAULT_INCREASE_BELOW: Final = 1.2
DEFAULT_WINDOW: Final = 8
_MAX_CUT: Final = 0.5
_PROBE_EVERY_MIN: Final = 8
_PROBE_EVERY_MAX: Final = 128
_PROBE_ROUNDS: Final = 2
_STEADY: Final = 0.1
"""A probe within this relative distance of the previous estimate spaces the next one out."""
_BOOTSTRAP: Final = 4
"""The first no-load estimate is the mean of this many first answers."""
_FIRST_PROBE: Final = 2
"""Windows before the first probe checks the bootstrap estimate."""
_START_LIMIT: Final = 2
_START_WINDOW: Final = 2


class LatencyLimitRule(BoundedLimit):
    """Short-term vs no-load latency: cut while requests queue, grow while they do not."""

    __slots__ = (
        "_factor",
        "_increase_below",
        "_no_load",
        "_probe_every",
        "_restore",
        "_starting",
        "_tolerance",
        "_until_probe",
        "_w_count",
        "_w_latency",
        "_w_saturated",
        "_window",
    )

    def __init__(
        self,
        initial_limit: int,
        max_limit: int,
        *,
        decrease_factor: float = 0.75,
        tolerance: float = DEFAULT_TOLERANCE,
        increase_below: float = DEFAULT_INCREASE_BELOW,
        window_size: int = DEFAULT_WINDOW,
    ) -> None:
        if not 0 < decrease_factor < 1:
            raise ValueError("decrease_factor must be in (0, 1)")
        if not 1.0 <= increase_below < tolerance:
            raise ValueError("need 1 <= increase_below < tolerance")
        if window_size < 1 or max_limit < 1:
            raise ValueError("window_size and max_limit must be >= 1")
        self._factor = decrease_factor
        self._tolerance = tolerance
        self._increase_below = increase_below
        self._window = window_size
        initial = max(1, min(max_limit, initial_limit))
        super().__init__(min(initial, _START_LIMIT), max_limit)
        self._starting = initial > _START_LIMIT
        self._no_load: float | None = None
        self._probe_every = _PROBE_EVERY_MIN
        self._until_probe = _FIRST_PROBE
        self._restore: int | None = None
        self._clear_window()

    @property
    def name(self) -> str:
        return "latency"

    @property
    def no_load_latency(self) -> float | None:
        """The no-load latency estimate (seconds), once a window has completed."""
        return self._no_load

    @property
    def probing(self) -> bool:
        """A drain probe is measuring the no-load latency (the limit is halved meanwhile)."""
        return self._restore is not None

    @property
    def in_slow_start(self) -> bool:
        """The limit is still doubling from 2 toward the first sign of queueing."""
        return self._starting

    def update(self, sample: RequestLimitSample) -> int:
        if sample.rate_limited:
            base = self._limit if self._restore is None else self._restore
            self._restore = None
            self._starting = False
            self._limit = max(1, math.floor(base * self._factor + _EPSILON))
            self._clear_window()
            return self._limit
        latency = sample.latency_seconds
        if latency is None or not math.isfinite(latency) or latency < 0:
            return self._limit
        if sample.lease_limit is not None and sample.lease_limit > self._limit:
            return self._limit  # granted before the last cut: it measured the old queue
        self._w_count += 1
        self._w_latency += latency
        if sample.in_flight + 1 >= self._limit:
            self._w_saturated = True
        if self._w_count >= self._window_target():
            self._close_window()
        return self._limit

    def reset(self, limit: int, max_limit: int) -> int:
        """Set the limit and its ceiling; during slow start the limit only ever lowers."""
        self._bound(min(limit, self._limit) if self._starting else limit, max_limit)
        self._restore = None
        self._clear_window()
        return self._limit

    def _window_target(self) -> int:
        if self._no_load is None:
            return _BOOTSTRAP
        if self._restore is not None:
            return max(self._window, _PROBE_ROUNDS * self._limit)
        if self._starting:
            return max(_START_WINDOW, self._limit)
        return max(self._window, self._limit)

    def _close_window(self) -> None:
        short = self._w_latency / self._w_count
        saturated = self._w_saturated
        self._clear_window()
        if self._restore is not None:
            self._end_probe(short)  # requests that found no queue of ours
            return
        if self._no_load is None or self._no_load <= 0:
            self._no_load = short
            return
        if self._limit == 1:
            self._end_probe(short)  # one at a time: nothing of ours queued either
        ratio = short / self._no_load
        if self._starting and ratio <= self._tolerance:
            if ratio <= self._increase_below and saturated:
                self._limit = min(self._max, 2 * self._limit)
                self._starting = self._limit < self._max
            return
        self._starting = False
        if ratio > self._tolerance:
            middle = (1.0 + self._tolerance) / 2
            cut = max(_MAX_CUT, middle / ratio)
            cut_to = math.floor(self._limit * cut + _EPSILON)
            self._limit = max(1, min(self._limit - 1, cut_to))
        elif ratio <= self._increase_below and saturated:
            self._limit = min(self._max, self._limit + 1)
        self._until_probe -= 1
        if self._until_probe <= 0 and self._limit > 1:
            self._restore = self._limit
            self._limit = max(1, self._limit // 2)

    def _end_probe(self, measured: float) -> None:
        previous = self._no_load
        steady = previous is not None and abs(measured - previous) <= _STEADY * previous
        if steady:
            self._probe_every = min(_PROBE_EVERY_MAX, 2 * self._probe_every)
        else:
            self._probe_every = _PROBE_EVERY_MIN
        self._until_probe = self._probe_every
        self._no_load = measured if previous is None else (previous + measured) / 2
        restore = self._restore
        self._restore = None
        if restore is not None:
            self._limit = min(self._max, restore)

    def _clear_window(self) -> None:
        self._w_count = 0
        self._w_latency = 0.0
        self._w_saturated = False
