"""Waiter lifecycle and lease accounting: timeout, shutdown, cancellation, bad releases."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from ra_support import CHAT, EMBED, OK, MakeHarness, item, lease_of, next_granted

from rowloom.models.request_admission import (
    ReleaseReason,
    RequestAdmissionError,
    RequestDenialReason,
    RequestReleaseOutcome,
)

# -- timeout and shutdown --------------------------------------------------------------------


async def test_queue_wait_timeout_raises_and_removes_the_waiter(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    task = await h.start_waiter(item(timeout=5.0))
    h.clock.advance(4.9)
    assert c.waiters_total() == 1 and not task.done()
    h.clock.advance(0.1)
    await h.ended(task)
    error = task.exception()
    assert isinstance(error, RequestAdmissionError)
    assert error.denied.reason is RequestDenialReason.TIMEOUT
    assert c.waiters_total() == 0 and h.clock.pending_timers == 0
    assert h.kinds()[-2:] == ["request_wait_timeout", "request_queue_drained"]
    # The timed-out waiter does not take the capacity freed later.
    c.release(held, OK)
    assert c.in_flight_total() == 0


async def test_default_queue_wait_timeout_applies_when_the_item_has_none(
    make: MakeHarness,
) -> None:
    h = make(initial={CHAT: 1}, default_queue_wait_timeout_seconds=2.0)
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    task = await h.start_waiter(item())
    h.clock.advance(2.0)
    await h.ended(task)
    assert isinstance(task.exception(), RequestAdmissionError)
    c.release(held, OK)


async def test_zero_timeout_fails_at_once_when_no_lease_is_free(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    with pytest.raises(RequestAdmissionError) as caught:
        await c.acquire_async(item(timeout=0.0))
    assert caught.value.reason is RequestDenialReason.TIMEOUT
    assert c.waiters_total() == 0
    c.release(held, OK)
    lease = await c.acquire_async(item(timeout=0.0))  # free: granted despite the zero timeout
    c.release(lease, OK)


async def test_a_grant_at_the_deadline_instant_wins_over_the_timeout(make: MakeHarness) -> None:
    h = make(initial={CHAT: 4})
    c = h.controller
    c.release(lease_of(c.try_acquire(item())), RequestReleaseOutcome.rate_limited(3.0))
    task = await h.start_waiter(item(timeout=3.0))
    h.clock.advance(3.0)
    c.release(await h.granted(task), OK)


async def test_shutdown_fails_every_waiter_and_later_acquires(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1, EMBED: 1})
    c = h.controller
    held = [lease_of(c.try_acquire(item(r))) for r in (CHAT, EMBED)]
    tasks = [await h.start_waiter(item(r, timeout=30.0)) for r in (CHAT, CHAT, EMBED)]
    c.shutdown()
    c.shutdown()  # idempotent
    await h.ended(*tasks)
    for task in tasks:
        error = task.exception()
        assert isinstance(error, RequestAdmissionError)
        assert error.denied.reason is RequestDenialReason.SHUTDOWN
    assert c.waiters_total() == 0 and h.clock.pending_timers == 0
    with pytest.raises(RequestAdmissionError):
        await c.acquire_async(item())
    assert c.try_acquire(item()).reason is RequestDenialReason.SHUTDOWN  # type: ignore[union-attr]
    # Leases out at shutdown are still released normally.
    for lease in held:
        assert c.release(lease, OK).released
    assert c.in_flight_total() == 0 and c.counters().waits_shutdown == 3


# -- cancellation ----------------------------------------------------------------------------


async def test_cancel_before_grant_removes_the_waiter_and_reraises(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    task = await h.start_waiter(item(attempt="ra-9", timeout=10.0))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert c.waiters_total() == 0 and h.clock.pending_timers == 0
    cancelled = h.of_kind("request_wait_cancelled")
    assert len(cancelled) == 1 and cancelled[0].request_attempt_id == "ra-9"
    c.release(held, OK)
    assert c.in_flight_total() == 0  # the cancelled waiter was not granted
    assert c.counters().wait_cancellations == 1


async def test_cancelled_waiter_is_skipped_when_capacity_frees_before_it_runs(
    make: MakeHarness,
) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    first = await h.start_waiter(item())
    second = await h.start_waiter(item())
    first.cancel()  # its completion is cancelled now; its coroutine has not run yet
    c.release(held, OK)  # same loop iteration: the slot must go to `second`
    await h.ended(first, second)
    assert first.cancelled()
    lease = second.result()
    assert c.in_flight_total() == 1
    c.release(lease, OK)
    counters = c.counters()
    assert counters.wait_cancellations == 1 and counters.cancelled_after_grant == 0


async def test_granted_then_cancelled_in_the_same_iteration_releases_as_local_cancelled(
    make: MakeHarness,
) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    first = await h.start_waiter(item(attempt="ra-1"))
    second = await h.start_waiter(item(attempt="ra-2"))
    c.release(held, OK)  # grants `first`: its lease is set, its coroutine not yet resumed
    first.cancel()  # ... and it is cancelled before it can return the lease
    await h.ended(first, second)
    assert first.cancelled()
    # The orphan-to-be was released as local_cancelled, and its slot went to `second`.
    releases = h.of_kind("request_lease_released")
    assert releases[-1].reason == "local_cancelled"
    assert releases[-1].request_attempt_id == "ra-1"
    assert releases[-1].diagnostics["cancelled_after_grant"] is True
    lease = second.result()
    assert lease.item.event_context is not None
    assert lease.item.event_context.request_attempt_id == "ra-2"  # only its own lease
    c.release(lease, OK)
    assert c.in_flight_total() == 0
    assert c.counters().cancelled_after_grant == 1


async def test_cancel_after_a_timeout_was_delivered_keeps_accounting(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    task = await h.start_waiter(item(timeout=1.0))
    h.clock.advance(1.0)  # the timeout is delivered to the waiter's completion
    task.cancel()  # and the task is cancelled before it sees it
    await h.ended(task)
    assert task.cancelled()
    counters = c.counters()
    assert counters.wait_timeouts == 1 and counters.wait_cancellations == 0
    c.release(held, OK)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0


async def test_a_call_returns_only_its_own_lease(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    items = [item(attempt=f"ra-{i}") for i in range(4)]
    tasks = [await h.start_waiter(it) for it in items]
    current = held
    for _ in items:
        c.release(current, OK)
        assert c.waiters_total() == len(tasks) - 1  # exactly one waiter granted
        current, tasks = await next_granted(h, tasks)
    c.release(current, OK)
    for it in items:
        ids = [e.request_attempt_id for e in h.of_kind("request_lease_acquired")]
        assert ids.count(it.event_context.request_attempt_id) == 1  # type: ignore[union-attr]


# -- bad releases --------------------------------------------------------------------------


async def test_bad_releases_never_add_capacity_and_never_raise(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    other = make(initial={CHAT: 1}).controller
    lease = lease_of(c.try_acquire(item()))
    foreign = lease_of(other.try_acquire(item()))

    cases = {
        ReleaseReason.STALE_LEASE: dataclasses.replace(lease, current_limit=99),
        ReleaseReason.UNKNOWN_LEASE: dataclasses.replace(
            lease, lease_id=f"rq{c.controller_generation}-999999"
        ),
        ReleaseReason.WRONG_GENERATION: foreign,
    }
    for expected, bad in cases.items():
        result = c.release(bad, OK)
        assert (result.released, result.reason) == (False, expected)
        assert c.in_flight_total() == 1
        assert c.try_acquire(item()).reason is RequestDenialReason.NO_CAPACITY  # type: ignore[union-attr]
    garbage = c.release("not a lease", OK)  # type: ignore[arg-type]
    assert garbage.reason is ReleaseReason.UNKNOWN_LEASE

    assert c.release(lease, RequestReleaseOutcome.rate_limited()).released
    duplicate = c.release(lease, OK)
    assert (duplicate.released, duplicate.reason) == (False, ReleaseReason.DUPLICATE)
    assert duplicate.diagnostics["lease_id"] == lease.lease_id
    assert c.in_flight_total() == 0
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.rate_limited_total == 1  # the duplicate changed nothing
    diagnostics = [e.reason for e in h.of_kind("request_release_diagnostic")]
    assert diagnostics == [
        "stale_lease",
        "unknown_lease",
        "wrong_generation",
        "unknown_lease",
        "duplicate",
    ]
    assert c.counters().bad_releases == 5
    other.release(foreign, OK)


async def test_a_malformed_outcome_still_releases_exactly_once(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    lease = lease_of(c.try_acquire(item()))
    result = c.release(lease, None)  # type: ignore[arg-type]
    assert result.released and c.in_flight_total() == 0
    assert h.of_kind("request_lease_released")[-1].reason == "unexpected_exception"
    assert c.release(lease, None).reason is ReleaseReason.DUPLICATE  # type: ignore[arg-type]
