"""`AdaptiveRequestAdmissionController`: admission rules, AIMD through releases, timed wakeups.

Every timed behaviour runs on a ManualClock; tests wait for the state they need (ra_support).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from ra_support import (
    CHAT,
    EMBED,
    OK,
    OTHER_CHAT,
    PM,
    MakeHarness,
    denial_of,
    item,
    lease_of,
    next_granted,
)
from tests.support.waiting import NotifyingSink, Progress

from rowloom.clock import ManualClock, TimerHandle
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestAdmissionError,
    RequestDenialReason,
    RequestDomain,
    RequestPressureSnapshotProvider,
    RequestReleaseOutcome,
    RequestResourceKey,
)
from rowloom.observability.events import RequestEventEmitter


async def test_admits_up_to_the_current_limit(make: MakeHarness) -> None:
    h = make(initial={CHAT: 2})
    c = h.controller
    a = lease_of(c.try_acquire(item()))
    lease_of(c.try_acquire(item()))
    denied = denial_of(c.try_acquire(item()))
    assert denied.reason is RequestDenialReason.NO_CAPACITY
    assert denied.snapshot is not None and denied.snapshot.in_flight == 2
    assert (a.current_limit, a.effective_max, a.controller_generation) == (
        2,
        4,
        c.controller_generation,
    )
    c.release(a, OK)
    lease_of(c.try_acquire(item()))


async def test_effective_max_is_min_of_static_cap_and_clamp(make: MakeHarness) -> None:
    h = make(cap=5, clamps={CHAT: 3})
    c = h.controller
    leases = [lease_of(c.try_acquire(item())) for _ in range(3)]
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.NO_CAPACITY
    assert leases[0].effective_max == 3
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and (snap.current_limit, snap.effective_max, snap.static_cap) == (
        3,
        3,
        5,
    )


async def test_aggregate_cap_spans_all_domains_of_an_endpoint(make: MakeHarness) -> None:
    h = make(cap=3)
    c = h.controller
    chat = [lease_of(c.try_acquire(item(CHAT))) for _ in range(2)]
    lease_of(c.try_acquire(item(EMBED)))
    # Each domain is below its own limit (4), but the endpoint is at its static cap (3).
    assert denial_of(c.try_acquire(item(EMBED))).reason is RequestDenialReason.AGGREGATE_CAP
    assert denial_of(c.try_acquire(item(CHAT))).reason is RequestDenialReason.AGGREGATE_CAP
    # A different endpoint is unaffected.
    lease_of(c.try_acquire(item(OTHER_CHAT)))
    g = c.pressure.global_snapshot(PM.provider_name, PM.model_id)
    assert g is not None and g.aggregate_in_flight == 3 and g.available == 0
    assert g.domain_in_flight == {RequestDomain.CHAT: 2, RequestDomain.EMBEDDING: 1}
    c.release(chat[0], OK)
    lease_of(c.try_acquire(item(EMBED)))


async def test_a_waiter_blocked_by_the_aggregate_cap_is_woken_by_another_domain(
    make: MakeHarness,
) -> None:
    h = make(cap=1)
    c = h.controller
    chat = lease_of(c.try_acquire(item(CHAT)))
    task = await h.start_waiter(item(EMBED))
    assert not task.done() and c.waiters_total() == 1
    c.release(chat, OK)
    lease = await h.granted(task)
    assert lease.resource == EMBED
    c.release(lease, OK)


async def test_rate_limit_cuts_once_per_cascade_through_the_controller(make: MakeHarness) -> None:
    h = make(initial={CHAT: 4}, cooldown_seconds=1.0, default_limit_rule="aimd_v1")
    c = h.controller
    leases = [lease_of(c.try_acquire(item())) for _ in range(4)]
    for lease in leases:
        c.release(lease, RequestReleaseOutcome.rate_limited())
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None
    assert snap.current_limit == 3  # floor(4 * 0.75), once
    assert snap.rate_limited_total == 4 and snap.consecutive_rate_limits == 4
    assert snap.rate_limit_ceiling == 4
    assert len(h.of_kind("request_rate_limited")) == 4
    assert len(h.of_kind("request_limit_decreased")) == 1
    cascade = [e.diagnostics["new_cascade"] for e in h.of_kind("request_rate_limited")]
    assert cascade == [True, False, False, False]


async def test_cooldown_blocks_then_expiry_wakes_waiters_without_any_release(
    make: MakeHarness,
) -> None:
    h = make(initial={CHAT: 4}, cooldown_mode="block_all", default_limit_rule="aimd_v1")  # V1
    c = h.controller
    c.release(lease_of(c.try_acquire(item())), RequestReleaseOutcome.rate_limited(3.0))
    denied = denial_of(c.try_acquire(item()))
    assert denied.reason is RequestDenialReason.COOLDOWN
    assert denied.retry_after_seconds == pytest.approx(3.0)
    assert denied.available_after_monotonic == pytest.approx(h.clock.monotonic() + 3.0)
    tasks = [await h.start_waiter(item()) for _ in range(2)]
    h.clock.advance(2.9)
    assert c.waiters_total() == 2 and not any(t.done() for t in tasks)
    released_before = c.counters().leases_released
    h.clock.advance(0.1)
    leases = [await h.granted(t) for t in tasks]
    assert c.counters().leases_released == released_before  # no release was needed
    for lease in leases:
        c.release(lease, OK)
    assert h.clock.pending_timers == 0


async def test_successes_outside_cooldown_raise_the_limit_and_grant_more_waiters(
    make: MakeHarness,
) -> None:
    h = make(initial={CHAT: 1}, successes_until_increase=1)
    c = h.controller
    first = lease_of(c.try_acquire(item()))
    waiting = [await h.start_waiter(item()) for _ in range(2)]
    assert c.waiters_total() == 2
    c.release(first, OK)  # frees one slot and raises the limit 1 -> 2: both waiters go
    assert c.waiters_total() == 0
    leases = [await h.granted(t) for t in waiting]
    assert all(lease.current_limit == 2 for lease in leases)
    assert [e.reason for e in h.of_kind("request_limit_increased")] == ["additive_increase"]
    for lease in leases:
        c.release(lease, OK)


async def test_limit_never_exceeds_effective_max(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1}, clamps={CHAT: 2}, successes_until_increase=1)
    c = h.controller
    for _ in range(10):
        c.release(lease_of(c.try_acquire(item())), OK)
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.current_limit == 2


async def test_startup_ramp_opens_capacity_over_time_for_waiters(make: MakeHarness) -> None:
    h = make(initial={CHAT: 3}, startup_ramp_seconds=4.0)
    c = h.controller
    first = lease_of(c.try_acquire(item()))
    assert first.current_limit == 1
    tasks = [await h.start_waiter(item()) for _ in range(2)]
    h.clock.advance(2.0)  # ramp reaches 2
    assert c.waiters_total() == 1
    await h.granted(tasks[0])
    assert not tasks[1].done()
    h.clock.advance(2.0)  # ramp reaches 3
    await h.granted(tasks[1])
    increases = [
        e.reason
        for e in h.of_kind("request_limit_increased")
        if e.request_resource_key == "prov/model-a/chat"
    ]
    assert increases == ["startup_ramp"] * 2
    for lease in (first, tasks[0].result(), tasks[1].result()):
        c.release(lease, OK)
    assert h.clock.pending_timers == 0


async def test_a_rate_limit_aborts_the_startup_ramp(make: MakeHarness) -> None:
    h = make(
        initial={CHAT: 4},
        startup_ramp_seconds=6.0,
        cooldown_seconds=0.0,
        default_limit_rule="aimd_v1",
    )
    c = h.controller
    h.clock.advance(4.0)  # ramp value 3
    lease = lease_of(c.try_acquire(item()))
    assert lease.current_limit == 3
    c.release(lease, RequestReleaseOutcome.rate_limited())
    h.clock.advance(10.0)
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and not snap.in_startup_ramp and snap.current_limit == 2


async def test_other_outcomes_release_capacity_without_touching_the_limit(
    make: MakeHarness,
) -> None:
    h = make(initial={CHAT: 2}, successes_until_increase=1)
    c = h.controller
    for kind in (
        "provider_failure",
        "provider_timeout",
        "local_cancelled",
        "local_timeout",
        "unexpected_exception",
    ):
        c.release(lease_of(c.try_acquire(item())), RequestReleaseOutcome.of(kind))
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None
    assert snap.current_limit == 2 and not snap.in_cooldown and snap.in_flight == 0
    assert snap.provider_failures_total == 2 and snap.rate_limited_total == 0
    assert snap.last_outcome == "unexpected_exception"


async def test_try_acquire_never_jumps_queued_waiters(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    task = await h.start_waiter(item())
    denied = denial_of(c.try_acquire(item()))
    assert denied.reason is RequestDenialReason.QUEUED_WAITERS_AHEAD
    c.release(held, OK)
    assert c.waiters_total() == 0  # the queued waiter, not a later try_acquire, got the slot
    c.release(await h.granted(task), OK)


class LaggyClock:
    """A clock whose timers fire only when the test says so (like a late loop callback)."""

    def __init__(self) -> None:
        self.now = 50.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def monotonic(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        entry = (when, callback)
        self.timers.append(entry)

        class _Handle:
            def cancel(_self) -> None:
                if entry in self.timers:
                    self.timers.remove(entry)

        return _Handle()


async def test_waiters_go_before_try_acquire_even_when_the_wakeup_timer_is_late() -> None:
    clock = LaggyClock()
    # block_all: the 429's cooldown holds every admission (in reduced_limit the waiter would
    # get the freed slot at once and the late timer would not matter)
    config = RequestAdmissionConfig(
        static_caps={PM: 1}, resources=(CHAT,), cooldown_mode="block_all"
    )
    progress = Progress()
    events = RequestEventEmitter(NotifyingSink(progress), clock.monotonic)
    c = AdaptiveRequestAdmissionController(config, clock=clock, events=events)
    c.release(lease_of(c.try_acquire(item())), RequestReleaseOutcome.rate_limited(2.0))
    task = progress.spawn(c.acquire_async(item()))
    await progress.wait_until(lambda: c.waiters_total() == 1, what="a waiter")
    clock.now += 5.0  # the cooldown is over but its timer has not run yet
    denied = denial_of(c.try_acquire(item()))
    assert denied.reason is RequestDenialReason.NO_CAPACITY
    assert c.waiters_total() == 0  # the waiter got the slot at once
    await progress.wait_until(task.done, what="the waiter's lease")
    c.release(task.result(), OK)


def test_acquire_sync_returns_a_lease_or_raises_without_an_event_loop() -> None:
    config = RequestAdmissionConfig(static_caps={PM: 1}, resources=(CHAT,))
    c = AdaptiveRequestAdmissionController(config)  # SystemClock, no running loop
    lease = c.acquire_sync(item())
    with pytest.raises(RequestAdmissionError) as caught:
        c.acquire_sync(item())
    assert caught.value.denied.reason is RequestDenialReason.NO_CAPACITY
    # A rate-limited release from sync code neither raises nor needs a loop.
    assert c.release(lease, RequestReleaseOutcome.rate_limited(1.0)).released


async def test_unknown_endpoint_is_a_hard_denial(make: MakeHarness) -> None:
    h = make()
    c = h.controller
    stranger = RequestResourceKey.of("nobody", "nothing", "chat")
    assert denial_of(c.try_acquire(item(stranger))).reason is RequestDenialReason.UNKNOWN_RESOURCE
    with pytest.raises(RequestAdmissionError) as caught:
        await c.acquire_async(item(stranger))
    assert caught.value.reason is RequestDenialReason.UNKNOWN_RESOURCE
    assert c.waiters_total() == 0


async def test_undeclared_domain_of_a_known_endpoint_registers_on_first_use(
    make: MakeHarness,
) -> None:
    h = make(resources=(CHAT,))
    c = h.controller
    health = RequestResourceKey(PM, RequestDomain.HEALTHCHECK)
    assert c.pressure.snapshot(health) is None
    lease = await c.acquire_async(item(health))
    assert c.pressure.snapshot(health) is not None
    registered = [e.request_resource_key for e in h.of_kind("request_resource_registered")]
    assert registered == ["prov/model-a/chat", "prov/model-a/healthcheck"]
    c.release(lease, OK)


async def test_weighted_fairness_across_groups_sharing_an_aggregate_cap(
    make: MakeHarness,
) -> None:
    h = make(cap=1)
    c = h.controller
    held = lease_of(c.try_acquire(item(CHAT)))
    tasks = []
    for _ in range(6):
        tasks.append(await h.start_waiter(item(CHAT, weight=2)))
        tasks.append(await h.start_waiter(item(EMBED, weight=1)))
    assert c.waiters_total() == 12
    order = []
    current = held
    for _ in range(9):
        c.release(current, OK)
        assert c.waiters_total() == len(tasks) - 1  # exactly one waiter granted
        current, tasks = await next_granted(h, tasks)
        order.append(current.resource)
    assert order.count(CHAT) == 6 and order.count(EMBED) == 3
    c.shutdown()
    c.release(current, OK)
    await h.ended(*tasks)
    assert len(tasks) == 3
    assert all(isinstance(t.exception(), RequestAdmissionError) for t in tasks)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0


async def test_equal_weights_alternate_between_domains(make: MakeHarness) -> None:
    h = make(cap=1)
    c = h.controller
    current = lease_of(c.try_acquire(item(CHAT)))
    tasks = [await h.start_waiter(item(CHAT)) for _ in range(3)]
    tasks += [await h.start_waiter(item(EMBED)) for _ in range(3)]
    order = []
    for _ in range(6):
        c.release(current, OK)
        assert c.waiters_total() == len(tasks) - 1
        current, tasks = await next_granted(h, tasks)
        order.append(current.resource)
    assert order == [CHAT, EMBED] * 3
    c.release(current, OK)


async def test_pressure_provider_is_read_only(make: MakeHarness) -> None:
    h = make(initial={CHAT: 2})
    c = h.controller
    lease = lease_of(c.try_acquire(item()))
    provider: RequestPressureSnapshotProvider = c.pressure
    public = {name for name in dir(provider) if not name.startswith("_")}
    assert public == {"snapshot", "snapshots", "global_snapshot", "global_snapshots"}
    before = (c.counters(), c.runtime_snapshot().in_flight, c.queue_view())
    for _ in range(3):
        provider.snapshots()
        provider.global_snapshots()
        provider.snapshot(CHAT)
        provider.global_snapshot("prov", "model-a")
    assert (c.counters(), c.runtime_snapshot().in_flight, c.queue_view()) == before
    snaps = provider.snapshots()
    assert list(snaps) == sorted(snaps)
    assert snaps[CHAT].in_flight == 1 and snaps[CHAT].available == 1
    assert provider.global_snapshot("no", "such") is None
    assert snaps[CHAT].sequence < provider.snapshots()[CHAT].sequence
    c.release(lease, OK)


async def test_capacity_view_reports_configured_runtime_and_observed_maxima(
    make: MakeHarness,
) -> None:
    h = make(cap=3, initial={CHAT: 2}, cooldown_seconds=5.0, cooldown_mode="block_all")
    c = h.controller
    a = lease_of(c.try_acquire(item(CHAT)))
    b = lease_of(c.try_acquire(item(CHAT)))
    e = lease_of(c.try_acquire(item(EMBED)))
    waiter = await h.start_waiter(item(CHAT))
    c.release(a, RequestReleaseOutcome.rate_limited())
    view = c.capacity_view()
    rt, om = view.runtime_snapshot, view.observed_maxima
    assert view.config is c.config
    assert rt.current_limits[CHAT] == 1 and rt.effective_max[CHAT] == 3
    assert rt.blocked_until[CHAT] == pytest.approx(h.clock.monotonic() + 5.0)
    assert rt.cooldown_until[CHAT] == rt.blocked_until[CHAT]
    assert dict(rt.limit_rules) == {CHAT: "aimd", EMBED: "aimd", OTHER_CHAT: "aimd"}
    assert c.limit_rules() == rt.limit_rules
    assert rt.provider_model_aggregate_in_flight[PM] == 2
    assert om.request_in_flight_by_resource[CHAT] == 2
    assert om.request_waiters_by_resource[CHAT] == 1
    assert om.provider_model_aggregate_in_flight[PM] == 3
    assert om.request_domain_current_limits[CHAT] == 2
    data = view.as_json()
    assert data["observed_maxima"]["provider_model_aggregate_in_flight"] == {
        "prov/model-a": 3,
        "prov/model-b": 0,
    }
    assert data["configured"]["initial_limits"] == {"prov/model-a/chat": 2}
    assert data["configured"]["cooldown_mode"] == "block_all"
    assert data["runtime_snapshot"]["request_domain_limit_rules"]["prov/model-a/chat"] == "aimd"
    c.shutdown()
    await h.ended(waiter)
    for lease in (b, e):
        c.release(lease, OK)
    assert isinstance(waiter.exception(), RequestAdmissionError)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0


async def test_raising_the_clamp_lets_waiters_in(make: MakeHarness) -> None:
    h = make(cap=4, clamps={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    task = await h.start_waiter(item())
    c.set_max_limit_clamp(CHAT, 2)  # effective max rises; the limit stays until increases
    assert c.waiters_total() == 1 and not task.done()
    changed = h.of_kind("request_effective_cap_changed")
    assert [(e.diagnostics["before"], e.diagnostics["after"]) for e in changed] == [(1, 2)]
    c.release(held, OK)
    c.release(await h.granted(task), OK)
    c.set_max_limit_clamp(CHAT, None)
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.effective_max == 4
    with pytest.raises(KeyError):
        c.set_max_limit_clamp(RequestResourceKey.of("x", "y", "chat"), 2)


async def test_default_clock_is_the_system_clock_and_waiters_wake_on_release() -> None:
    config = RequestAdmissionConfig(static_caps={PM: 1}, resources=(CHAT,))
    progress = Progress()
    events = RequestEventEmitter(NotifyingSink(progress), time.monotonic)
    c = AdaptiveRequestAdmissionController(config, events=events)
    held = await c.acquire_async(item())
    task = progress.spawn(c.acquire_async(item()))
    await progress.wait_until(lambda: c.waiters_total() == 1, what="a waiter")
    c.release(held, OK)
    lease = await task
    c.release(lease, OK)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0


def test_manual_clock_is_used_for_lease_times() -> None:
    clock = ManualClock(start=7.0)
    config = RequestAdmissionConfig(static_caps={PM: 1}, resources=(CHAT,))
    c = AdaptiveRequestAdmissionController(config, clock=clock)
    assert c.acquire_sync(item()).acquired_at == 7.0


async def test_system_clock_timer_wakes_a_waiter_after_a_short_cooldown() -> None:
    config = RequestAdmissionConfig(static_caps={PM: 2}, resources=(CHAT,))
    c = AdaptiveRequestAdmissionController(config)
    c.release(await c.acquire_async(item()), RequestReleaseOutcome.rate_limited(0.01))
    async with asyncio.timeout(10):  # a guard against a hang, not a synchronisation
        lease = await c.acquire_async(item())
    c.release(lease, OK)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0
