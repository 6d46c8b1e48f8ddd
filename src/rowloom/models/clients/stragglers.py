"""`AttemptWatch`: how long one request attempt may run, and what is in flight right now.

Every attempt is bounded by its model's request timeout (`inference_parameters.timeout`, else
the default of its generation kind). Beyond that, an attempt in flight far longer than its model
usually takes is a *straggler* (a hung connection, a stuck server slot): once the model has
`min_samples` successful attempts, an attempt older than `max(min_seconds, p99_multiple * p99)`
of its recent successful latencies expires, and the executor cancels and retries it, so one
hung connection costs seconds instead of the whole timeout. Attempts already in flight when a
model's p99 becomes known (or drops) get the tighter deadline too. Every deadline is a timer on
the injected clock. The watch also keeps the attempts in flight, oldest first, for the live
progress display.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

from rowloom.clock import Clock, TimerHandle
from rowloom.config.run import StragglerConfig
from rowloom.models.request_admission import RequestResourceKey

WINDOW = 256
"""Recent successful latencies kept per resource."""
RECOMPUTE_EVERY = 16
"""Successful attempts between p99 recomputations (a sort of at most `WINDOW` floats)."""


class WatchedAttempt:
    """One attempt in flight: when it started, its deadline, and whether the deadline is a
    straggler deadline (`straggler`) or the request timeout."""

    __slots__ = (
        "deadline",
        "expired",
        "handle",
        "on_expire",
        "p99",
        "resource",
        "started",
        "straggler",
    )

    def __init__(
        self,
        resource: RequestResourceKey,
        started: float,
        deadline: float,
        on_expire: Callable[[], None],
    ) -> None:
        self.resource = resource
        self.started = started
        self.deadline = deadline
        self.on_expire = on_expire
        self.handle: TimerHandle | None = None
        self.straggler = False
        self.expired = False
        self.p99: float | None = None

    @property
    def limit_seconds(self) -> float:
        """The deadline, in seconds after the start."""
        return self.deadline - self.started


class _Latencies:
    """A ring of recent successful latencies with a p99 recomputed at every sample until
    `warmup` samples, then every `RECOMPUTE_EVERY`."""

    __slots__ = ("count", "p99", "ring", "since", "warmup")

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.ring: list[float] = []
        self.count = 0
        self.since = 0
        self.p99: float | None = None

    def add(self, seconds: float) -> bool:
        """Record a latency; True when the p99 was recomputed."""
        if len(self.ring) < WINDOW:
            self.ring.append(seconds)
        else:
            self.ring[self.count % WINDOW] = seconds
        self.count += 1
        self.since += 1
        if self.count > self.warmup and self.since < RECOMPUTE_EVERY:
            return False
        ordered = sorted(self.ring)
        self.p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
        self.since = 0
        return True


class AttemptWatch:
    """Attempt deadlines (timeout and straggler) and the registry of attempts in flight."""

    def __init__(self, config: StragglerConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._latencies: dict[RequestResourceKey, _Latencies] = {}
        self._in_flight: OrderedDict[str, WatchedAttempt] = OrderedDict()
        self._by_resource: dict[RequestResourceKey, dict[str, WatchedAttempt]] = {}
        self.stragglers_cancelled = 0

    def arm(
        self,
        attempt_id: str,
        resource: RequestResourceKey,
        timeout_seconds: float,
        on_expire: Callable[[], None],
    ) -> WatchedAttempt:
        """Register an attempt starting now; `on_expire` runs (once) at its deadline: the
        timeout, or sooner once its model's p99 is known."""
        now = self._clock.monotonic()
        attempt = WatchedAttempt(resource, now, now + timeout_seconds, on_expire)
        self._in_flight[attempt_id] = attempt
        self._by_resource.setdefault(resource, {})[attempt_id] = attempt
        self._tighten(attempt, self._straggler_seconds(resource))
        if attempt.handle is None:
            attempt.handle = self._clock.call_at(attempt.deadline, lambda: self._expire(attempt))
        return attempt

    def finished(self, attempt_id: str, succeeded: bool) -> None:
        """Forget an attempt; a success's latency feeds its model's p99."""
        attempt = self._in_flight.pop(attempt_id, None)
        if attempt is None:
            return
        if attempt.handle is not None:
            attempt.handle.cancel()
        resource = attempt.resource
        self._by_resource[resource].pop(attempt_id, None)
        if not succeeded:
            return
        stats = self._latencies.get(resource)
        if stats is None:
            stats = self._latencies[resource] = _Latencies(self.config.min_samples)
        if stats.add(self._clock.monotonic() - attempt.started):
            limit = self._straggler_seconds(resource)
            if limit is not None:
                for other in list(self._by_resource[resource].values()):
                    self._tighten(other, limit)

    @property
    def in_flight(self) -> int:
        """Attempts sent and not answered yet."""
        return len(self._in_flight)

    def oldest_age(self) -> float | None:
        """Seconds the oldest attempt in flight has been running (None when none is)."""
        if not self._in_flight:
            return None
        oldest = next(iter(self._in_flight.values()))
        return self._clock.monotonic() - oldest.started

    def p99(self, resource: RequestResourceKey) -> float | None:
        """The running p99 latency of a resource's successful attempts (None before any)."""
        stats = self._latencies.get(resource)
        return None if stats is None else stats.p99

    def _straggler_seconds(self, resource: RequestResourceKey) -> float | None:
        cfg = self.config
        stats = self._latencies.get(resource)
        if not cfg.enabled or stats is None or stats.p99 is None or stats.count < cfg.min_samples:
            return None
        return max(cfg.min_seconds, cfg.p99_multiple * stats.p99)

    def _tighten(self, attempt: WatchedAttempt, limit: float | None) -> None:
        """Move an attempt's deadline to `started + limit` when that is sooner."""
        if limit is None or attempt.expired:
            return
        deadline = attempt.started + limit
        if deadline >= attempt.deadline:
            return
        attempt.deadline = deadline
        attempt.straggler = True
        attempt.p99 = self.p99(attempt.resource)
        if attempt.handle is not None:
            attempt.handle.cancel()
        attempt.handle = self._clock.call_at(deadline, lambda: self._expire(attempt))

    @staticmethod
    def _expire(attempt: WatchedAttempt) -> None:
        if not attempt.expired:
            attempt.expired = True
            attempt.on_expire()
