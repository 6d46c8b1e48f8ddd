"""Random interleavings of acquire, try, release, cancel, timeout and clock advance.

Invariants checked after every step and at the end:
- in-flight per resource never exceeds its effective max, per endpoint never its static cap;
  at every grant, in-flight <= the current limit and no cooldown blocks the resource (under
  `block_all`, the resource is not cooling down at all);
- the controller's in-flight equals the leases the test holds (none orphaned, none lost);
- every acquire returns its own item's lease;
- after releasing everything and shutting down: zero in flight, zero waiters, no timers, and
  the controller's counters equal the test's reference ledger.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ra_support import CHAT, EMBED, OTHER_CHAT, OTHER_PM, PM
from tests.support.waiting import NotifyingSink, Progress, WatchedClock

from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    CooldownMode,
    RequestAdmissionConfig,
    RequestAdmissionError,
    RequestAdmissionItem,
    RequestAdmissionLease,
    RequestDenialReason,
    RequestReleaseOutcome,
    RequestReleaseOutcomeKind,
)
from rowloom.observability.events import RequestEventEmitter

RESOURCES = (CHAT, EMBED, OTHER_CHAT)
CAPS = {PM: 3, OTHER_PM: 1}

acquire = st.tuples(
    st.just("acquire"),
    st.sampled_from(RESOURCES),
    st.sampled_from([None, 0.0, 0.5, 2.0]),
    st.integers(1, 3),
)
try_acquire = st.tuples(st.just("try"), st.sampled_from(RESOURCES))
release = st.tuples(
    st.just("release"),
    st.integers(0, 50),
    st.sampled_from(list(RequestReleaseOutcomeKind)),
    st.sampled_from([None, 0.25, 1.5]),
)
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
release_then_cancel = st.tuples(st.just("release_then_cancel"), st.integers(0, 50))
advance = st.tuples(st.just("advance"), st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0]))
bad_release = st.tuples(st.just("bad_release"), st.integers(0, 50))
operations = st.lists(
    st.one_of(
        acquire,
        acquire,
        acquire,
        try_acquire,
        release,
        release,
        release_then_cancel,
        cancel,
        advance,
        bad_release,
    ),
    min_size=10,
    max_size=60,
)


@dataclass
class Ledger:
    """What the test itself observed."""

    held: list[RequestAdmissionLease] = field(default_factory=list)
    obtained: int = 0
    released: int = 0
    timeouts: int = 0
    shutdowns: int = 0
    cancelled_tasks: int = 0
    bad_releases: int = 0
    pending: dict[asyncio.Task[RequestAdmissionLease], RequestAdmissionItem] = field(
        default_factory=dict
    )


def outcome_of(kind: RequestReleaseOutcomeKind, retry_after: float | None) -> RequestReleaseOutcome:
    if kind is RequestReleaseOutcomeKind.RATE_LIMITED:
        return RequestReleaseOutcome.rate_limited(retry_after)
    return RequestReleaseOutcome.of(kind)


def collect(ledger: Ledger) -> None:
    for task, it in list(ledger.pending.items()):
        if not task.done():
            continue
        del ledger.pending[task]
        if task.cancelled():
            ledger.cancelled_tasks += 1
            continue
        error = task.exception()
        if error is None:
            lease = task.result()
            assert lease.item is it  # a call returns only its own lease
            ledger.held.append(lease)
            ledger.obtained += 1
        else:
            assert isinstance(error, RequestAdmissionError), error
            if error.reason is RequestDenialReason.TIMEOUT:
                ledger.timeouts += 1
            else:
                assert error.reason is RequestDenialReason.SHUTDOWN
                ledger.shutdowns += 1


def quiet(c: AdaptiveRequestAdmissionController, ledger: Ledger) -> bool:
    """Every acquire has ended or waits in the controller's queue: none is granted but not yet
    resumed, none has a cancellation still to process, none has yet to take its first step."""
    open_ = [t for t in ledger.pending if not t.done()]
    return all(t.cancelling() == 0 for t in open_) and len(open_) == c.waiters_total()


def check_invariants(c: AdaptiveRequestAdmissionController, ledger: Ledger) -> None:
    assert c.in_flight_total() == len(ledger.held)
    assert c.waiters_total() <= len(ledger.pending)
    for snap in c.pressure.snapshots().values():
        assert snap.in_flight <= snap.effective_max
        assert 1 <= snap.current_limit <= snap.effective_max
    for g in c.pressure.global_snapshots().values():
        assert g.aggregate_in_flight <= g.static_cap
    by_provider: dict[str, int] = {}
    for g in c.pressure.global_snapshots().values():
        by_provider[g.provider_model.provider_name] = (
            by_provider.get(g.provider_model.provider_name, 0) + g.aggregate_in_flight
        )
    for snap in c.pressure.snapshots().values():
        assert snap.provider_in_flight == by_provider[snap.resource.provider_model.provider_name]
        if snap.provider_limit is not None:
            assert snap.provider_limit >= 1


async def scenario(
    ops: list[tuple[object, ...]], ramp: float, mode: CooldownMode, provider_limits: bool = True
) -> None:
    progress = Progress()
    clock = WatchedClock(progress)
    sink = NotifyingSink(progress)
    config = RequestAdmissionConfig(
        static_caps=CAPS,
        resources=RESOURCES,
        initial_limits={CHAT: 1, EMBED: 2},
        successes_until_increase=2,
        cooldown_seconds=1.0,
        startup_ramp_seconds=ramp,
        cooldown_mode=mode,
        provider_limits=provider_limits,
    )
    c = AdaptiveRequestAdmissionController(
        config, clock=clock, events=RequestEventEmitter(sink, clock.monotonic)
    )
    ledger = Ledger()

    def pick(index: object, seq: list[RequestAdmissionLease]) -> RequestAdmissionLease | None:
        return seq.pop(int(index) % len(seq)) if seq else None  # type: ignore[call-overload]

    for op in ops:
        name = op[0]
        if name == "acquire":
            _, resource, timeout, weight = op
            it = RequestAdmissionItem.for_resource(resource, weight=weight, timeout=timeout)  # type: ignore[arg-type]
            ledger.pending[progress.spawn(c.acquire_async(it))] = it
        elif name == "try":
            decision = c.try_acquire(RequestAdmissionItem.for_resource(op[1]))  # type: ignore[arg-type]
            if isinstance(decision, RequestAdmissionLease):
                ledger.held.append(decision)
                ledger.obtained += 1
        elif name == "release":
            lease = pick(op[1], ledger.held)
            if lease is not None:
                assert c.release(lease, outcome_of(op[2], op[3])).released  # type: ignore[arg-type]
                ledger.released += 1
        elif name in ("cancel", "release_then_cancel"):
            if name == "release_then_cancel":
                lease = pick(op[1], ledger.held)
                if lease is not None:
                    c.release(lease, RequestReleaseOutcome.success())
                    ledger.released += 1
            waiting = [t for t in ledger.pending if not t.done()]
            if waiting:
                waiting[int(op[1]) % len(waiting)].cancel()  # type: ignore[call-overload]
        elif name == "advance":
            clock.advance(op[1])  # type: ignore[arg-type]
        elif name == "bad_release" and ledger.held:
            lease = ledger.held[int(op[1]) % len(ledger.held)]  # type: ignore[call-overload]
            probe = c.release(
                RequestAdmissionLease(
                    f"rq{c.controller_generation}-{10**9}",
                    lease.item,
                    lease.acquired_at,
                    lease.current_limit,
                    lease.effective_max,
                    c.controller_generation,
                ),
                RequestReleaseOutcome.success(),
            )
            assert not probe.released
            ledger.bad_releases += 1
        await progress.wait_until(lambda: quiet(c, ledger), what="acquires done or waiting")
        collect(ledger)
        check_invariants(c, ledger)

    # Wind down: release what is held (which may grant waiters), then shut down.
    while ledger.held or any(not t.done() for t in ledger.pending):
        while ledger.held:
            c.release(ledger.held.pop(), RequestReleaseOutcome.success())
            ledger.released += 1
        c.shutdown()
        await progress.wait_until(lambda: quiet(c, ledger), what="acquires done or waiting")
        collect(ledger)

    assert c.in_flight_total() == 0
    assert c.waiters_total() == 0
    assert clock.pending_timers == 0
    n = c.counters()
    assert n.leases_granted == ledger.obtained + n.cancelled_after_grant
    assert n.leases_released == ledger.released + n.cancelled_after_grant
    assert n.immediate_grants + n.waits_completed == n.leases_granted
    assert n.wait_timeouts == ledger.timeouts
    assert n.waits_shutdown == ledger.shutdowns
    assert n.wait_cancellations + n.cancelled_after_grant == ledger.cancelled_tasks
    assert n.waits_started == (
        n.waits_completed + n.wait_timeouts + n.wait_cancellations + n.waits_shutdown
    )
    assert n.bad_releases == ledger.bad_releases

    for event in sink.of_kind("request_lease_acquired"):
        snap = event.snapshot
        assert isinstance(snap, dict)
        assert snap["in_flight"] <= snap["current_limit"]
        assert snap["provider_model_in_flight"] <= snap["static_cap"]
        if snap["provider_limit"] is not None:
            assert snap["provider_in_flight"] <= snap["provider_limit"]
        assert snap["blocked_until_monotonic"] is None
        if mode == "block_all":
            assert snap["cooldown_remaining_seconds"] == 0
    acquired = len(sink.of_kind("request_lease_acquired"))
    released = len(sink.of_kind("request_lease_released"))
    assert acquired == released == n.leases_granted


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    ops=operations,
    ramp=st.sampled_from([0.0, 2.0]),
    mode=st.sampled_from(["reduced_limit", "block_all"]),
    provider_limits=st.booleans(),
)
def test_random_interleavings_keep_the_ledger_exact(
    ops: list[tuple[object, ...]], ramp: float, mode: CooldownMode, provider_limits: bool
) -> None:
    asyncio.run(scenario(ops, ramp, mode, provider_limits))
