"""A simulated fleet: many virtual workers sharing one provider, on a `ManualClock`.

No Ray, no sockets, no asyncio: every request, answer, report and grant is a timer on one
`ManualClock`, so 1,000 workers x 10,000 slots x a minute of traffic run in seconds and the same
seed gives the same figures. What it exercises is the real share logic: each virtual worker
admits through a `ShareGate` and reports to a `ShareCoordinator` exactly as a Ray worker does
(a report every `report_interval` with a random phase, and at once after a 429 that cut its
share; one report in flight per worker; the grant lands one round trip later).

The provider has `slots` concurrent slots (fewer during a storm); a request beyond them is
refused at once with a 429 and `retry_after` seconds of Retry-After, which the refused task waits
out before it asks again (as the engine's executor does). Served requests take a lognormal
latency around `latency_seconds`. Each worker runs `demand` tasks that always want one more
request; every second worker runs `demand_skew` times more, so fairness between unequal
workers shows.

`mode="independent"` is the baseline: each worker runs the engine's own per-resource adaptive
limit (`AdaptiveRequestLimitState` with the settling AIMD, max `max_limit`) and no coordinator,
i.e. N engines against one provider.

With `rpm`, the provider also accepts at most `rpm` requests per sliding 60 s window (as the
`mock-server --rpm` does): beyond it a 429 whose Retry-After is the time until the window has
room, and every answer carries the `x-ratelimit-*-requests` headers. `pacing="fleet"`: the
workers forward the headers to the coordinator, which splits the key's budget into admit caps
(`FleetBudget`); `pacing="worker"`: each worker paces on its own answers alone
(`RateLimitPacer`, the engine's pacer on one machine), the baseline.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rowloom.clock import ManualClock
from rowloom.distributed.coordinator import ShareCoordinator, ShareKeyConfig
from rowloom.models.request_admission.limit_state import AdaptiveRequestLimitState
from rowloom.models.request_admission.pacing import RateLimitPacer
from rowloom.models.request_admission.settling_aimd import SettlingAimdLimitRule
from rowloom.models.request_admission.shares import ShareGate, ShareGrant
from rowloom.provider_wire import RateLimitHeaders

KEY = "provider"
FleetMode = Literal["shared", "independent"]
PacingMode = Literal["fleet", "worker"]
RPM_WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class FleetSimConfig:
    """One simulated fleet (see the module docstring); times in seconds."""

    workers: int
    slots: int
    latency_seconds: float = 1.0
    latency_sigma: float = 0.5
    overcommit: float = 4 / 3
    demand: int | None = None
    demand_skew: int = 3
    duration_seconds: float = 60.0
    report_interval: float = 0.2
    report_rtt: float = 0.002
    retry_after: float = 1.0
    reject_latency: float = 0.005
    storm_at: float | None = None
    storm_seconds: float = 10.0
    storm_fraction: float = 0.5
    mode: FleetMode = "shared"
    rpm: int | None = None
    pacing: PacingMode = "fleet"
    seed: int = 0
    bucket_seconds: float = 1.0

    @property
    def max_limit(self) -> int:
        """What each model is configured at: `overcommit` times the provider's slots."""
        return max(1, math.ceil(self.slots * self.overcommit))

    def demands(self) -> list[int]:
        """Tasks per worker: together about twice the slots, every second worker skewed."""
        base = self.demand
        if base is None:
            base = max(1, math.ceil(2 * self.slots / (self.workers * (1 + self.demand_skew) / 2)))
        return [base * (self.demand_skew if i % 2 else 1) for i in range(self.workers)]

    def capacity_at(self, t: float) -> int:
        if self.storm_at is not None and self.storm_at <= t < self.storm_at + self.storm_seconds:
            return max(1, math.floor(self.slots * self.storm_fraction))
        return self.slots


@dataclass(slots=True)
class _Buckets:
    ok: list[int]
    refused: list[int]
    limit_seconds: list[float]

    @classmethod
    def empty(cls, n: int) -> _Buckets:
        return cls([0] * n, [0] * n, [0.0] * n)


@dataclass
class FleetSimResult:
    """Figures of one simulated fleet (see `summary`)."""

    config: FleetSimConfig
    ok: list[int]
    refused: list[int]
    mean_limit: list[float]
    per_worker_ok: list[int]
    demands: list[int]
    reports: int
    coordinator_cpu_seconds: float
    wall_seconds: float
    cuts: int
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """The figures the bench reports: 429 fractions, goodput, settling, fairness, CPU."""
        cfg = self.config
        b = cfg.bucket_seconds
        ideal = cfg.slots / _mean_latency(cfg)  # successes per second at full capacity
        storm = _storm_buckets(cfg)
        steady = [i for i in range(len(self.ok)) if i not in storm]
        settle = _settle_index(self.ok, ideal * b, steady)
        after = [i for i in steady if i >= settle]
        total_ok, total_refused = sum(self.ok), sum(self.refused)
        out = {
            "rate_limited_fraction": _frac(total_refused, total_ok + total_refused),
            "time_to_settle_seconds": settle * b if settle < len(self.ok) else math.inf,
            "rate_limited_fraction_after_settling": _frac(
                sum(self.refused[i] for i in after),
                sum(self.ok[i] + self.refused[i] for i in after),
            ),
            "goodput_ratio_after_settling": (
                sum(self.ok[i] for i in after) / (len(after) * b * ideal) if after else 0.0
            ),
            "fairness_jain": _jain(self.per_worker_ok, self._fair_shares()),
            "skewed_vs_small_throughput": _class_ratio(self.per_worker_ok),
            "coordinator_cpu_us_per_report": (
                1e6 * self.coordinator_cpu_seconds / self.reports if self.reports else 0.0
            ),
            "reports_per_second": self.reports / cfg.duration_seconds,
            "coordinator_cpu_fraction": self.coordinator_cpu_seconds / cfg.duration_seconds,
            "fleet_limit_cuts": float(self.cuts),
            "sim_wall_seconds": self.wall_seconds,
        }
        if cfg.rpm is not None:  # the most a sliding window lets through in the run
            out["goodput_vs_rpm"] = total_ok / (cfg.rpm * math.ceil(cfg.duration_seconds / 60))
        if storm:
            s_ok = sum(self.ok[i] for i in storm)
            s_ref = sum(self.refused[i] for i in storm)
            out["rate_limited_fraction_in_storm"] = _frac(s_ref, s_ok + s_ref)
        return out

    def _fair_shares(self) -> list[float]:
        return fair_shares(float(self.config.slots), self.demands)


def fair_shares(capacity: float, demands: list[int]) -> list[float]:
    """Each worker's max-min fair share of `capacity` (real-valued water filling)."""
    order = sorted(range(len(demands)), key=lambda i: demands[i])
    out = [0.0] * len(demands)
    left = capacity
    for pos, i in enumerate(order):
        level = left / (len(order) - pos)
        out[i] = min(float(demands[i]), level)
        left -= out[i]
    return out


def _mean_latency(cfg: FleetSimConfig) -> float:
    return cfg.latency_seconds  # lognormal draws are scaled to this mean


def _frac(a: float, b: float) -> float:
    return a / b if b else 0.0


def _storm_buckets(cfg: FleetSimConfig) -> set[int]:
    """Buckets touched by the storm and the recovery window after it (2 x Retry-After)."""
    if cfg.storm_at is None:
        return set()
    first = math.floor(cfg.storm_at / cfg.bucket_seconds)
    end = cfg.storm_at + cfg.storm_seconds + 2 * max(cfg.retry_after, cfg.latency_seconds)
    return set(range(first, math.ceil(end / cfg.bucket_seconds)))


def _settle_index(ok: list[int], ideal_per_bucket: float, steady: list[int]) -> int:
    """The first steady bucket from which goodput reaches 90% of capacity (len if never)."""
    for i in steady:
        if ok[i] >= 0.9 * ideal_per_bucket:
            return i
    return len(ok)


def _jain(done: list[int], fair: list[float]) -> float:
    """Jain's index of each worker's throughput relative to its max-min fair share."""
    xs = [d / f for d, f in zip(done, fair, strict=True) if f > 0]
    if not xs:
        return 1.0
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs)) if any(xs) else 0.0


def _class_ratio(done: list[int]) -> float:
    small = [d for i, d in enumerate(done) if i % 2 == 0]
    big = [d for i, d in enumerate(done) if i % 2 == 1]
    if not small or not big or sum(small) == 0:
        return 0.0
    return (sum(big) / len(big)) / (sum(small) / len(small))


class _Provider:
    def __init__(self, cfg: FleetSimConfig, rng: random.Random) -> None:
        self.cfg = cfg
        self.in_flight = 0
        self._rng = rng
        sigma = cfg.latency_sigma
        self._mu = math.log(cfg.latency_seconds) - sigma * sigma / 2
        self._window: deque[float] = deque()

    def serve(self, now: float) -> tuple[float | None, float, RateLimitHeaders | None]:
        """(latency of an accepted request or None for a 429, its Retry-After, the answer's
        rate-limit headers)."""
        rpm = self.cfg.rpm
        if rpm is not None:
            window = self._window
            while window and window[0] <= now - RPM_WINDOW:
                window.popleft()
            if len(window) >= rpm:
                wait = window[0] + RPM_WINDOW - now
                return None, wait, self._headers(now)
        if self.in_flight >= self.cfg.capacity_at(now):
            return None, self.cfg.retry_after, self._headers(now)
        self.in_flight += 1
        if rpm is not None:
            self._window.append(now)
        headers = self._headers(now)
        if self.cfg.latency_sigma <= 0:
            return self.cfg.latency_seconds, 0.0, headers
        return self._rng.lognormvariate(self._mu, self.cfg.latency_sigma), 0.0, headers

    def _headers(self, now: float) -> RateLimitHeaders | None:
        rpm = self.cfg.rpm
        if rpm is None:
            return None
        window = self._window
        return RateLimitHeaders(
            limit_requests=rpm,
            remaining_requests=max(0, rpm - len(window)),
            reset_requests_seconds=max(0.0, window[0] + RPM_WINDOW - now) if window else 0.0,
        )


class _Fleet:
    """The event-driven simulation (one instance per run)."""

    def __init__(self, cfg: FleetSimConfig) -> None:
        self.cfg = cfg
        self.clock = ManualClock(start=0.0)
        self.rng = random.Random(cfg.seed)
        self.provider = _Provider(cfg, self.rng)
        n = math.ceil(cfg.duration_seconds / cfg.bucket_seconds)
        self.buckets = _Buckets.empty(n)
        self.coordinator = ShareCoordinator(
            {KEY: ShareKeyConfig(cfg.max_limit)}, epoch=1 + cfg.seed
        )
        self.cpu = 0.0
        self.workers = [_Worker(self, i, d) for i, d in enumerate(cfg.demands())]

    def bucket(self, now: float) -> int:
        return min(len(self.buckets.ok) - 1, int(now / self.cfg.bucket_seconds))

    def run(self) -> FleetSimResult:
        started = time.perf_counter()
        for w in self.workers:
            w.start()
        self._sample_limit()
        self.clock.advance(self.cfg.duration_seconds)
        view = self.coordinator.view()[KEY]
        b = self.buckets
        return FleetSimResult(
            config=self.cfg,
            ok=b.ok,
            refused=b.refused,
            mean_limit=[s / self.cfg.bucket_seconds for s in b.limit_seconds],
            per_worker_ok=[w.ok for w in self.workers],
            demands=[w.demand for w in self.workers],
            reports=self.coordinator.reports,
            coordinator_cpu_seconds=self.cpu,
            wall_seconds=time.perf_counter() - started,
            cuts=view.cuts if self.cfg.mode == "shared" else sum(w.cuts for w in self.workers),
            extra={"final_limit": view.limit, "ceiling": view.ceiling},
        )

    def _sample_limit(self) -> None:
        """Every 50 ms: integrate the fleet's limit (sum of the limits in force) over time."""
        step = 0.05
        if self.cfg.mode == "shared":
            limit = float(sum(w.gate.share for w in self.workers))
        else:
            limit = float(sum(w.local_limit() for w in self.workers))
        now = self.clock.monotonic()
        self.buckets.limit_seconds[self.bucket(now)] += limit * step
        self.clock.call_at(now + step, self._sample_limit)

    def report(self, worker: _Worker) -> dict[str, ShareGrant]:
        now = self.clock.monotonic()
        report = worker.gate.take_report(
            worker.in_flight, worker.waiting, admitted=worker.admitted, now=now
        )
        reports = {KEY: report}
        t0 = time.process_time()
        grants = self.coordinator.report(worker.name, reports, self.clock.monotonic())
        self.cpu += time.process_time() - t0
        return grants


class _Worker:
    """One virtual worker: `demand` tasks, a share gate (or its own limit), reports."""

    def __init__(self, fleet: _Fleet, index: int, demand: int) -> None:
        self.fleet = fleet
        self.cfg = fleet.cfg
        self.name = f"w{index}"
        self.demand = demand
        self.gate = ShareGate()
        self.limits: AdaptiveRequestLimitState | None = None
        self.in_flight = 0
        self.waiting = demand
        self.admitted = 0
        self.ok = 0
        self.cuts = 0
        self.reporting = False
        self.report_again = False
        self.pacer = RateLimitPacer() if self.cfg.pacing == "worker" and self.cfg.rpm else None

    def start(self) -> None:
        cfg = self.cfg
        clock = self.fleet.clock
        if cfg.mode == "independent":
            top = cfg.max_limit
            self.limits = AdaptiveRequestLimitState(
                SettlingAimdLimitRule(top, top),
                initial_limit=top,
                effective_max=top,
                cooldown_seconds=cfg.retry_after,
                startup_ramp_seconds=0.0,
                now=clock.monotonic(),
                cooldown_mode="reduced_limit",
            )
            self._admit()
            return
        phase = self.fleet.rng.random() * cfg.report_interval
        self.send_report()
        clock.call_at(clock.monotonic() + phase, self._tick)

    def local_limit(self) -> int:
        assert self.limits is not None
        return self.limits.current_limit

    def _tick(self) -> None:
        self.send_report()
        clock = self.fleet.clock
        clock.call_at(clock.monotonic() + self.cfg.report_interval, self._tick)

    def send_report(self) -> None:
        if self.reporting:
            self.report_again = True
            return
        self.reporting = True
        clock = self.fleet.clock
        half = self.cfg.report_rtt / 2

        def deliver() -> None:
            grants = self.fleet.report(self)
            clock.call_at(clock.monotonic() + half, lambda: self._granted(grants[KEY]))

        clock.call_at(clock.monotonic() + half, deliver)

    def _granted(self, grant: ShareGrant) -> None:
        self.gate.grant(grant, admitted=self.admitted, now=self.fleet.clock.monotonic())
        self.reporting = False
        if self.report_again:
            self.report_again = False
            self.send_report()
        self._admit()

    def _admits(self, now: float) -> bool:
        if self.pacer is not None and self.pacer.not_before(now) is not None:
            return False
        if self.limits is None:
            return self.gate.admits(self.in_flight, now, self.admitted)
        return self.in_flight < self.limits.current_limit and not self.limits.admission_blocked(now)

    def _admit(self) -> None:
        clock = self.fleet.clock
        now = clock.monotonic()
        while self.waiting and self._admits(now):
            self.waiting -= 1
            ordinal = self.admitted
            self.admitted += 1
            self.in_flight += 1
            if self.pacer is not None:
                self.pacer.on_admit(now)
            lease = (ordinal, self.in_flight, self.local_limit() if self.limits else 0)
            latency, retry, headers = self.fleet.provider.serve(now)
            if latency is None:
                done = self._done_callback(lease, now, ok=False, retry=retry, headers=headers)
                clock.call_at(now + self.cfg.reject_latency, done)
            else:
                done = self._done_callback(lease, now, ok=True, headers=headers)
                clock.call_at(now + latency, done)
        if self.waiting:
            self._arm_unblock(now)

    def _arm_unblock(self, now: float) -> None:
        """A timer for the end of a block, a pacer's wait or a fleet pause (grants also wake
        a shared worker every report)."""
        ends = []
        if self.limits is not None:
            ends.append(self.limits.blocked_until(now))
        if self.pacer is not None:
            ends.append(self.pacer.not_before(now))
        if self.limits is None and self.gate.paused_until > now:
            ends.append(self.gate.paused_until)
        until = min((e for e in ends if e is not None), default=None)
        if until is not None:
            self.fleet.clock.call_at(until, self._admit)

    def _done_callback(
        self,
        lease: tuple[int, int, int],
        started: float,
        *,
        ok: bool,
        retry: float = 0.0,
        headers: RateLimitHeaders | None = None,
    ) -> Callable[[], None]:
        def done() -> None:
            self._observe(lease[0], started, ok, retry, headers)
            self._done(lease, started, ok, retry)

        return done

    def _observe(
        self, ordinal: int, started: float, ok: bool, retry: float, headers: RateLimitHeaders | None
    ) -> None:
        """Fold an answer's rate-limit headers into the worker's pacer, or its gate (fleet)."""
        if headers is None:
            return
        if self.pacer is not None:
            now = self.fleet.clock.monotonic()
            self.pacer.observe(now, headers, self.admitted - ordinal - 1)
        elif self.limits is None and self.cfg.pacing == "fleet":
            urgent = self.gate.observe_budget(headers, started, ordinal, None if ok else retry)
            if urgent:
                self.send_report()

    def _done(self, lease: tuple[int, int, int], started: float, ok: bool, retry: float) -> None:
        fleet = self.fleet
        now = fleet.clock.monotonic()
        self.in_flight -= 1
        b = fleet.bucket(now)
        ordinal, in_flight_at_grant, lease_limit = lease
        if ok:
            fleet.provider.in_flight -= 1
            fleet.buckets.ok[b] += 1
            self.ok += 1
            self.waiting += 1
            if self.limits is not None:
                self.limits.on_success(now, now - started, self.in_flight, lease_limit)
            else:
                self.gate.on_success()
        else:
            fleet.buckets.refused[b] += 1
            self._refused(ordinal, in_flight_at_grant, lease_limit, now, retry)
            fleet.clock.call_at(now + retry, self._retry)
        self._admit()

    def _refused(
        self, ordinal: int, in_flight_at_grant: int, lease_limit: int, now: float, retry: float
    ) -> None:
        if self.limits is not None:
            effect = self.limits.on_rate_limited(
                now, lease_limit, retry, lease_in_flight=in_flight_at_grant
            )
            self.cuts += int(effect.new_cascade)
            return
        cut = self.gate.on_rate_limited(ordinal, admitted=self.admitted, retry_after_seconds=retry)
        if cut:
            self.send_report()

    def _retry(self) -> None:
        self.waiting += 1
        self._admit()


def simulate_fleet(cfg: FleetSimConfig) -> FleetSimResult:
    """Run one simulated fleet to the end of `cfg.duration_seconds`."""
    if cfg.workers < 1 or cfg.slots < 1:
        raise ValueError("a fleet needs at least one worker and one slot")
    return _Fleet(cfg).run()
