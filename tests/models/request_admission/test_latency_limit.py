"""`LatencyLimitRule` against a model of a queueing server (FIFO, N slots), without asyncio.

The model is a small discrete-event simulation: callers always have work, a request is sent
whenever in-flight < limit, the server serves N at a time and queues the rest in order. Times
are plain numbers; nothing sleeps.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom.models.request_admission import (
    LatencyLimitRule,
    RequestLimitRule,
    RequestLimitSample,
    SettlingAimdLimitRule,
)


@dataclass
class QueueRun:
    limits: list[int]
    latencies: list[float]
    completed: int
    duration: float

    def tail(self, values: list[float] | list[int]) -> list[float]:
        return [float(v) for v in values[len(values) // 3 :]]

    def p95_latency(self) -> float:
        tail = sorted(self.tail(self.latencies))
        return tail[int(0.95 * (len(tail) - 1))]

    def median_limit(self) -> float:
        tail = sorted(self.tail(self.limits))
        return tail[len(tail) // 2]


def queueing_server(
    rule: RequestLimitRule,
    *,
    slots: int,
    service: float = 0.2,
    sigma: float = 0.0,
    requests: int = 6_000,
    seed: int = 0,
    service_after: tuple[int, float] | None = None,
) -> QueueRun:
    """Drive `rule` with a saturated caller against a FIFO server of `slots` slots."""
    rng = random.Random(seed)
    now, in_flight, busy = 0.0, 0, 0
    waiting: list[tuple[float, int]] = []
    events: list[tuple[float, int, float, int]] = []
    order = 0
    limits: list[int] = []
    latencies: list[float] = []
    mean = service

    def draw() -> float:
        if sigma == 0:
            return mean
        return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)

    def send() -> None:
        nonlocal in_flight, busy, order
        while in_flight < rule.limit:
            in_flight += 1
            order += 1
            if busy < slots:
                busy += 1
                heapq.heappush(events, (now + draw(), order, now, rule.limit))
            else:
                waiting.append((now, rule.limit))

    send()
    completed = 0
    while completed < requests:
        now, _, sent_at, lease_limit = heapq.heappop(events)
        in_flight -= 1
        completed += 1
        if service_after is not None and completed == service_after[0]:
            mean = service_after[1]
        if waiting:
            queued_at, queued_limit = waiting.pop(0)
            order += 1
            heapq.heappush(events, (now + draw(), order, queued_at, queued_limit))
        else:
            busy -= 1
        latency = now - sent_at
        latencies.append(latency)
        rule.update(RequestLimitSample(now, False, latency, in_flight, lease_limit))
        limits.append(rule.limit)
        send()
    return QueueRun(limits, latencies, completed, now)


@pytest.mark.parametrize("slots", [2, 4, 8, 32])
def test_the_limit_settles_between_the_slots_and_twice_the_slots(slots: int) -> None:
    run = queueing_server(LatencyLimitRule(8 * slots, 8 * slots), slots=slots)
    assert slots <= run.median_limit() <= 2 * slots
    assert run.p95_latency() <= 2 * 0.2 + 1e-9
    throughput = run.completed / run.duration
    assert throughput >= 0.9 * slots / 0.2


def test_loss_based_aimd_piles_requests_into_the_queue_instead() -> None:
    run = queueing_server(SettlingAimdLimitRule(64, 64), slots=8)
    assert run.median_limit() == 64  # no 429 ever comes
    assert run.p95_latency() >= 7 * 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_noisy_latency_it_keeps_the_server_busy_and_latency_near_unloaded(
    seed: int,
) -> None:
    slots = 8
    run = queueing_server(
        LatencyLimitRule(64, 64), slots=slots, sigma=0.25, seed=seed, requests=8_000
    )
    unloaded = queueing_server(LatencyLimitRule(1, 1), slots=slots, sigma=0.25, seed=seed)
    assert slots <= run.median_limit() <= 2 * slots
    assert run.p95_latency() <= 2 * unloaded.p95_latency()
    assert run.completed / run.duration >= 0.9 * slots / 0.2


def test_a_slower_workload_does_not_leave_the_limit_collapsed() -> None:
    run = queueing_server(
        LatencyLimitRule(32, 32), slots=4, requests=8_000, service_after=(2_000, 0.6)
    )
    assert 4 <= run.median_limit() <= 8
    assert run.completed / run.duration >= 0.8 * 4 / 0.6


def test_slow_start_begins_at_two_and_doubles_while_nothing_queues() -> None:
    rule = LatencyLimitRule(64, 64)
    assert rule.limit == 2 and rule.in_slow_start
    assert rule.reset(64, 64) == 2  # syncing the configured initial limit does not skip it
    seen = []
    for _ in range(80):
        rule.update(RequestLimitSample(0.0, False, 1.0, rule.limit - 1, lease_limit=rule.limit))
        seen.append(rule.limit)
    assert seen[-1] == 64 and not rule.in_slow_start
    assert [v for i, v in enumerate(seen) if i == 0 or v != seen[i - 1]] == [2, 4, 8, 16, 32, 64]


def test_a_rate_limited_sample_cuts_multiplicatively_and_ends_slow_start() -> None:
    rule = LatencyLimitRule(20, 40)
    assert rule.update(RequestLimitSample(0.0, rate_limited=True)) == 1
    assert not rule.in_slow_start
    rule.reset(20, 40)
    assert rule.update(RequestLimitSample(0.0, rate_limited=True)) == 15


def test_samples_granted_above_the_current_limit_are_ignored() -> None:
    rule = LatencyLimitRule(2, 40, window_size=2)
    for _ in range(4):
        rule.update(RequestLimitSample(0.0, False, 1.0, 1, lease_limit=2))
    assert rule.no_load_latency == pytest.approx(1.0)
    for _ in range(50):  # very slow, but measured under a higher, older limit
        rule.update(RequestLimitSample(0.0, False, 50.0, 1, lease_limit=7))
    assert rule.limit == 2


def test_a_probe_halves_the_limit_for_a_window_then_restores_it() -> None:
    rule = LatencyLimitRule(10, 10, window_size=4)
    probes = restores = 0
    before, was_probing = rule.limit, rule.probing
    for _ in range(600):
        rule.update(RequestLimitSample(0.0, False, 1.0, rule.limit - 1, lease_limit=rule.limit))
        if rule.probing and not was_probing:
            probes += 1
            assert rule.limit == before // 2
        if was_probing and not rule.probing:
            restores += 1
            assert rule.limit == 10
        before, was_probing = rule.limit, rule.probing
    assert probes >= 2 and restores >= probes - 1
    assert rule.no_load_latency == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(
    initial=st.integers(1, 64),
    top=st.integers(1, 64),
    samples=st.lists(
        st.tuples(
            st.booleans(),
            st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
            st.integers(0, 80),
            st.one_of(st.none(), st.integers(1, 80)),
        ),
        max_size=400,
    ),
)
def test_the_limit_stays_within_one_and_the_max_under_any_samples(
    initial: int,
    top: int,
    samples: list[tuple[bool, float | None, int, int | None]],
) -> None:
    rule = LatencyLimitRule(initial, top)
    assert 1 <= rule.limit <= top
    for limited, latency, in_flight, lease_limit in samples:
        value = rule.update(RequestLimitSample(0.0, limited, latency, in_flight, lease_limit))
        assert value == rule.limit
        assert 1 <= rule.limit <= rule.max_limit == top
