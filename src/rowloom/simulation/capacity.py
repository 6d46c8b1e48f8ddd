"""The simulated provider's capacity model, shared by the in-process adapter and the HTTP server.

One `ProviderCapacityModel.serve()` call is one request's life on the simulated server:

1. an optional requests-per-minute gate (sliding 60 s window): over the limit -> `rate_limited`
   with Retry-After = time until the oldest counted request leaves the window;
2. a concurrency limit (`capacity` slots): when full, `overload="reject"` answers `rate_limited`
   with Retry-After = `retry_after_s`; `overload="queue"` waits FIFO for a slot (like vLLM or
   llama.cpp), so latency grows instead;
3. on a slot: a seeded draw injects `server_error` (`fail_rate`, answered at once) or a hang
   (`timeout_rate`: held until the caller's timeout); otherwise the request is served after a
   fixed or lognormal (seeded) latency and answers `ok`.

The caller's `client_timeout` covers the whole life (queue wait and service), like a client's read
timeout; past it the answer is `timeout`. All waits are timers on the injected clock; nothing
polls. A cancelled `serve()` (client gone) gives its slot back exactly once.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from rowloom.clock import Clock, SystemClock, TimerHandle
from rowloom.config.models import SimulationConfig
from rowloom.provider_wire import RateLimitHeaders

__all__ = ["CapacityStats", "OutcomeKind", "ProviderCapacityModel", "ServiceOutcome"]

OutcomeKind: TypeAlias = Literal["ok", "rate_limited", "server_error", "timeout"]
_RPM_WINDOW_S = 60.0
_LATENCY_SAMPLES = 100_000


@dataclass(frozen=True, slots=True)
class ServiceOutcome:
    """How the simulated server answered one request."""

    kind: OutcomeKind
    retry_after_seconds: float | None = None
    rate_limit: RateLimitHeaders | None = None
    latency_seconds: float = 0.0
    queued_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class CapacityStats:
    """Counters since start; latency percentiles over recent successful requests (ms)."""

    requests: int
    accepted: int
    completed: int
    rate_limited: int
    rate_limited_rpm: int
    server_errors: int
    timeouts: int
    cancelled: int
    in_flight: int
    peak_in_flight: int
    queue_depth: int
    peak_queue_depth: int
    latency_mean_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of every field."""
        return asdict(self)


class ProviderCapacityModel:
    """Concurrency slots, overload behaviour, rpm limit and fault injection of one provider."""

    def __init__(
        self, config: SimulationConfig | None = None, *, clock: Clock | None = None
    ) -> None:
        self._config = config if config is not None else SimulationConfig()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._fate_rng = random.Random(f"{self._config.seed}:fate")
        self._latency_rng = random.Random(f"{self._config.seed}:latency")
        sigma = self._config.latency_sigma
        mean_s = self._config.latency_ms / 1000.0
        self._lognormal_mu = math.log(mean_s) - sigma * sigma / 2 if mean_s > 0 else 0.0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._window: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._watchers: list[tuple[Callable[[CapacityStats], bool], asyncio.Future[None]]] = []
        self._requests = self._accepted = self._completed = 0
        self._rate_limited = self._rate_limited_rpm = 0
        self._server_errors = self._timeouts = self._cancelled = 0
        self._in_flight = self._peak_in_flight = 0
        self._queued = self._peak_queued = 0

    @property
    def config(self) -> SimulationConfig:
        return self._config

    @property
    def clock(self) -> Clock:
        return self._clock

    async def serve(self, client_timeout: float | None = None) -> ServiceOutcome:
        """Run one request through the model; see the module docstring for the answer kinds."""
        cfg = self._config
        arrived = self._clock.monotonic()
        deadline = None if client_timeout is None else arrived + client_timeout
        self._requests += 1
        wait_s = self._rpm_wait(arrived)
        if wait_s is not None:
            self._rate_limited += 1
            self._rate_limited_rpm += 1
            self._changed()
            return ServiceOutcome("rate_limited", wait_s, self._rate_limit_headers(arrived))
        full = self._in_flight >= cfg.capacity or self._queued > 0
        if full and cfg.overload == "reject":
            self._rate_limited += 1
            self._changed()
            headers = self._rate_limit_headers(arrived)
            return ServiceOutcome("rate_limited", cfg.retry_after_s, headers)
        if cfg.rpm is not None:
            self._window.append(arrived)
        headers = self._rate_limit_headers(arrived)
        if not full:
            self._take_slot()
        else:
            try:
                granted = await self._wait_for_slot(deadline)
            except asyncio.CancelledError:
                self._cancelled += 1
                self._changed()
                raise
            if not granted:
                self._timeouts += 1
                return self._answer("timeout", arrived, deadline or arrived, headers, deadline)
        return await self._hold_slot(arrived, deadline, headers)

    async def _hold_slot(
        self, arrived: float, deadline: float | None, headers: RateLimitHeaders | None
    ) -> ServiceOutcome:
        """Serve on an acquired slot, giving it back exactly once on every path."""
        cfg = self._config
        started = self._clock.monotonic()
        self._accepted += 1
        self._changed()
        try:
            draw = self._fate_rng.random()
            if draw < cfg.fail_rate:
                self._server_errors += 1
                return self._answer("server_error", arrived, started, headers)
            if draw < cfg.fail_rate + cfg.timeout_rate:
                await self._sleep_until(deadline)
                self._timeouts += 1
                return self._answer("timeout", arrived, started, headers, deadline)
            done_at = started + self._draw_latency()
            if deadline is not None and done_at > deadline:
                await self._sleep_until(deadline)
                self._timeouts += 1
                return self._answer("timeout", arrived, started, headers, deadline)
            if done_at > started:
                await self._sleep_until(done_at)
            else:
                await asyncio.sleep(0)  # a yield point, as real I/O would have
            self._completed += 1
            outcome = self._answer("ok", arrived, started, headers, done_at)
            self._latencies.append(outcome.latency_seconds)
            return outcome
        except asyncio.CancelledError:
            self._cancelled += 1
            raise
        finally:
            self._release_slot()

    def _answer(
        self,
        kind: OutcomeKind,
        arrived: float,
        started: float,
        headers: RateLimitHeaders | None,
        at: float | None = None,
    ) -> ServiceOutcome:
        """An answer given at `at` (the scheduled moment; now when None)."""
        end = self._clock.monotonic() if at is None else at
        return ServiceOutcome(kind, None, headers, end - arrived, started - arrived)

    # -------------------------------------------------------------------------- slots and queue

    async def _wait_for_slot(self, deadline: float | None) -> bool:
        """True once a slot is handed over (FIFO); False when the deadline passes first."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._queued += 1
        self._peak_queued = max(self._peak_queued, self._queued)
        self._changed()
        timer = None
        if deadline is not None:
            timer = self._clock.call_at(deadline, lambda: self._expire_waiter(waiter))
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                self._queued -= 1  # left the queue; its entry is skipped on release
            elif waiter.result():
                self._release_slot()  # granted just before the cancellation landed
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _expire_waiter(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            waiter.set_result(False)
            self._queued -= 1
            self._changed()

    def _release_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the slot passes straight to the oldest waiter
                self._queued -= 1
                self._changed()
                return
        self._in_flight -= 1
        self._changed()

    def _take_slot(self) -> None:
        self._in_flight += 1
        self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    async def _sleep_until(self, when: float | None) -> None:
        """Wait on the clock until `when`; forever (until cancelled) when None."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer: TimerHandle | None = None
        if when is not None:
            timer = self._clock.call_at(when, lambda: _resolve(done))
        try:
            await done
        finally:
            if timer is not None:
                timer.cancel()

    def _draw_latency(self) -> float:
        cfg = self._config
        if cfg.latency_ms <= 0:
            return 0.0
        if cfg.latency_distribution == "lognormal" and cfg.latency_sigma > 0:
            return self._latency_rng.lognormvariate(self._lognormal_mu, cfg.latency_sigma)
        return cfg.latency_ms / 1000.0

    # -------------------------------------------------------------------------- rate limit

    def _rpm_wait(self, now: float) -> float | None:
        """Seconds until the rpm window has room, or None when this request fits."""
        rpm = self._config.rpm
        if rpm is None:
            return None
        window = self._window
        while window and window[0] <= now - _RPM_WINDOW_S:
            window.popleft()
        if len(window) < rpm:
            return None
        return max(0.001, window[0] + _RPM_WINDOW_S - now)

    def _rate_limit_headers(self, now: float) -> RateLimitHeaders | None:
        rpm = self._config.rpm
        if rpm is None:
            return None
        window = self._window
        reset = max(0.0, window[0] + _RPM_WINDOW_S - now) if window else 0.0
        return RateLimitHeaders(
            limit_requests=rpm,
            remaining_requests=max(0, rpm - len(window)),
            reset_requests_seconds=reset,
        )

    # -------------------------------------------------------------------------- stats

    def stats(self) -> CapacityStats:
        """Counters and latency percentiles now."""
        snapshot = self._snapshot()
        if not self._latencies:
            return snapshot
        samples = np.fromiter(self._latencies, dtype=float) * 1000.0
        p50, p95, p99 = (float(x) for x in np.percentile(samples, [50, 95, 99]))
        return CapacityStats(
            **{
                **asdict(snapshot),
                "latency_mean_ms": float(samples.mean()),
                "latency_p50_ms": p50,
                "latency_p95_ms": p95,
                "latency_p99_ms": p99,
            }
        )

    async def wait_until(self, predicate: Callable[[CapacityStats], bool]) -> CapacityStats:
        """Wait (event-driven) until `predicate` holds for the counters (latencies omitted)."""
        snapshot = self._snapshot()
        if predicate(snapshot):
            return snapshot
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, done)
        self._watchers.append(entry)
        try:
            await done
        finally:
            if entry in self._watchers:
                self._watchers.remove(entry)
        return self._snapshot()

    def _snapshot(self) -> CapacityStats:
        return CapacityStats(
            requests=self._requests,
            accepted=self._accepted,
            completed=self._completed,
            rate_limited=self._rate_limited,
            rate_limited_rpm=self._rate_limited_rpm,
            server_errors=self._server_errors,
            timeouts=self._timeouts,
            cancelled=self._cancelled,
            in_flight=self._in_flight,
            peak_in_flight=self._peak_in_flight,
            queue_depth=self._queued,
            peak_queue_depth=self._peak_queued,
        )

    def _changed(self) -> None:
        if not self._watchers:
            return
        snapshot = self._snapshot()
        for entry in list(self._watchers):
            predicate, done = entry
            if not done.done() and predicate(snapshot):
                done.set_result(None)
                self._watchers.remove(entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
