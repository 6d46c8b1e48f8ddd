"""Request events: every kind request admission owns is emitted by a real path, with context."""

from __future__ import annotations

import json

import pytest
from ra_support import CHAT, OK, PM, MakeHarness, item, lease_of
from tests.support.waiting import Progress

from rowloom.clock import ManualClock
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestAdmissionError,
    RequestReleaseOutcome,
)
from rowloom.models.request_admission import ledger as ledger_module
from rowloom.models.request_admission.shares import ShareGrant
from rowloom.observability.events import REQUEST_EVENT_KINDS, RequestEventEmitter

EXECUTOR_KINDS = {
    "model_request_started",
    "model_request_straggler_cancelled",
    "model_request_completed",
}
OWNED_KINDS = set(REQUEST_EVENT_KINDS) - EXECUTOR_KINDS


async def test_every_owned_request_event_kind_is_emitted(make: MakeHarness) -> None:
    h = make(
        cap=4,
        initial={CHAT: 2},
        clamps={CHAT: 3},
        successes_until_increase=1,
        cooldown_seconds=1.0,
        default_limit_rule="aimd_v1",  # climbs straight past the last ceiling
    )
    c = h.controller
    c.set_max_limit_clamp(CHAT, 4)  # request_effective_cap_changed (3 -> 4)
    a = lease_of(c.try_acquire(item()))
    b = lease_of(c.try_acquire(item()))
    c.try_acquire(item())  # request_acquire_denied
    waiter = await h.start_waiter(item())  # request_queue_formed, request_wait_started
    timed = await h.start_waiter(item(timeout=0.5))
    cancelled = await h.start_waiter(item())
    cancelled.cancel()  # request_wait_cancelled
    h.clock.advance(0.5)  # request_wait_timeout
    await h.ended(cancelled, timed)
    c.release(a, RequestReleaseOutcome.rate_limited())  # rate_limited, limit 2 -> 1
    h.clock.advance(1.0)  # cooldown over
    assert c.waiters_total() == 1
    c.release(b, OK)  # limit 1 -> 2 and grants the waiter: queue drained
    lease = await h.granted(waiter)
    c.release(lease, OK)  # 2 -> 3: soft ceiling (2) recovered
    c.release(lease, OK)  # request_release_diagnostic (duplicate)
    c.release(lease_of(c.try_acquire(item())), OK)  # 3 -> 4: fully recovered
    c.attach_shares({CHAT.as_key_str(): 4})  # a Ray worker's fleet share
    c.set_shares({CHAT.as_key_str(): ShareGrant(2, 1, 1, limit=4)})  # request_share_changed
    assert isinstance(timed.exception(), RequestAdmissionError)
    assert cancelled.cancelled()
    emitted = set(h.kinds())
    assert emitted >= OWNED_KINDS, OWNED_KINDS - emitted
    assert not emitted & EXECUTOR_KINDS
    sequences = [e.sequence for e in h.sink.events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    for event in h.sink.events:
        json.dumps(event.as_json(), allow_nan=False)  # JSON-normalised at construction


async def test_immediate_grant_emits_zero_wait_then_lease_with_item_context(
    make: MakeHarness,
) -> None:
    h = make(default_limit_rule="aimd_v1")
    c = h.controller
    lease = lease_of(c.try_acquire(item(attempt="ra-7")))
    kinds = h.kinds()[-3:]
    assert kinds == ["request_wait_started", "request_wait_completed", "request_lease_acquired"]
    started, completed, acquired = h.sink.events[-3:]
    assert completed.diagnostics["wait_seconds"] == 0.0
    for event in (started, completed, acquired):
        assert event.request_attempt_id == "ra-7"
        assert event.captured_correlation == {"run_id": "run-1"}
        assert event.request_resource_key == "prov/model-a/chat"
        assert event.request_group_key == "prov/model-a/chat"
        assert event.diagnostics["task_execution_id"] == "task-exec-1"
    assert acquired.request_lease_id == lease.lease_id
    assert isinstance(acquired.snapshot, dict) and acquired.snapshot["in_flight"] == 1
    c.release(lease, RequestReleaseOutcome.rate_limited(2.0))
    released, limited = (
        h.of_kind("request_lease_released")[-1],
        h.of_kind("request_rate_limited")[-1],
    )
    assert released.reason == "rate_limited" and released.request_lease_id == lease.lease_id
    assert limited.request_attempt_id == "ra-7"
    assert limited.diagnostics["retry_after_seconds"] == 2.0
    decreased = h.of_kind("request_limit_decreased")[-1]
    assert decreased.request_attempt_id == "ra-7"  # the release that caused it lends context
    assert (decreased.diagnostics["before"], decreased.diagnostics["after"]) == (4, 3)


async def test_a_queued_grant_reports_its_wait(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    held = lease_of(c.try_acquire(item()))
    task = await h.start_waiter(item(attempt="ra-w"))
    h.clock.advance(1.5)
    c.release(held, OK)
    await h.ended(task)
    completed = h.of_kind("request_wait_completed")[-1]
    assert completed.request_attempt_id == "ra-w"
    assert completed.diagnostics["wait_seconds"] == pytest.approx(1.5)
    formed = h.of_kind("request_queue_formed")
    assert len(formed) == 1 and formed[0].reason == "no_capacity"
    assert h.of_kind("request_queue_drained")[-1].request_resource_key == "prov/model-a/chat"
    c.release(task.result(), OK)


async def test_events_are_emitted_after_state_changes(make: MakeHarness) -> None:
    h = make(initial={CHAT: 1})
    c = h.controller
    seen: list[tuple[str, int, int]] = []

    class Probe:
        def emit(self, event: object) -> None:
            kind = event.event_kind  # type: ignore[attr-defined]
            seen.append((kind, c.in_flight_total(), c.waiters_total()))

    probe_controller = AdaptiveRequestAdmissionController(
        c.config, clock=h.clock, events=RequestEventEmitter(Probe(), h.clock.monotonic)
    )
    c = probe_controller
    lease = lease_of(c.try_acquire(item()))
    assert ("request_lease_acquired", 1, 0) in seen
    c.release(lease, OK)
    assert seen[-1] == ("request_lease_released", 0, 0)


async def test_no_snapshots_are_built_without_a_sink(
    make: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make(initial={CHAT: 1}, events=False)
    c = h.controller

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("a snapshot was built with no sink attached")

    monkeypatch.setattr(ledger_module, "resource_snapshot", forbidden)
    monkeypatch.setattr("rowloom.models.request_admission.operation.resource_snapshot", forbidden)
    lease = await c.acquire_async(item(attempt="ra-1"))
    task = h.progress.spawn(c.acquire_async(item()))  # no events: it may wait or not
    c.release(lease, RequestReleaseOutcome.rate_limited(1.0))
    h.clock.advance(1.0)
    await h.ended(task)
    c.release(task.result(), OK)
    c.release(task.result(), OK)  # duplicate: diagnostics only in the result
    assert c.in_flight_total() == 0 and c.waiters_total() == 0


async def test_a_failing_sink_never_interrupts_admission() -> None:
    progress = Progress()

    class Broken:
        def emit(self, event: object) -> None:
            progress.notify()
            raise RuntimeError("sink down")

    clock = ManualClock()
    emitter = RequestEventEmitter(Broken(), clock.monotonic)
    config = RequestAdmissionConfig(static_caps={PM: 1}, resources=(CHAT,))
    c = AdaptiveRequestAdmissionController(config, clock=clock, events=emitter)
    lease = await c.acquire_async(item())
    waiter = progress.spawn(c.acquire_async(item()))
    await progress.wait_until(lambda: c.waiters_total() == 1, what="a waiter")
    assert c.release(lease, OK).released
    await progress.wait_until(waiter.done, what="the waiter's lease")
    c.release(waiter.result(), OK)
    assert emitter.sink_failures > 0 and c.in_flight_total() == 0
