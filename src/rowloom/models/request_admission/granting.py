"""Granting: the steps that hand out leases, queue waiters and take them off the queue.

Each step runs inside one `Operation` (see `operation.py`) and changes the state completely
before the operation emits its events. The order of checks for one call attempt:

1. `admit_now`: register the resource on first use, apply the changes time made to its limit,
   grant eligible queued waiters first, then answer a lease, or the first reason it may not
   go out now (`queued_waiters_ahead` whenever the resource has waiters: no call jumps them).
2. `wait_in_queue`: otherwise the attempt waits in the fair queue until its deadline.
3. `grant_waiters`: after every change that can free capacity (a release, a cooldown end, a
   ramp step, a new fleet share), waiters are granted in fair-queue order while any is
   eligible.
4. `drop_waiters` (deadline or shutdown) and `cancel_waiter` (the caller was cancelled) take
   waiters off the queue without a lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from rowloom.models.request_admission.decisions import (
    RequestAdmissionDenied,
    RequestAdmissionError,
    RequestAdmissionLease,
    RequestDenialReason,
)
from rowloom.models.request_admission.ledger import ResourceRecord
from rowloom.models.request_admission.operation import Operation
from rowloom.models.request_admission.queue import RequestWaiter
from rowloom.models.request_admission.resources import RequestAdmissionItem

Admission = tuple[RequestAdmissionLease | RequestDenialReason, ResourceRecord | None]
"""A lease, or the reason there is none now, with the resource's record (None: unknown)."""


def admit_now(op: Operation, item: RequestAdmissionItem) -> Admission:
    """A lease for `item` now, or why not (never jumps queued waiters)."""
    state = op.state
    record = state.ledger.record(item.resource)
    if state.closed:
        return RequestDenialReason.SHUTDOWN, record
    if record is None:
        record = op.register(item.resource)
        if record is None:
            return RequestDenialReason.UNKNOWN_RESOURCE, None
    op.refresh(record)
    if state.queue:
        grant_waiters(op)
    if state.queue.queued_for_resource(item.resource):
        return RequestDenialReason.QUEUED_WAITERS_AHEAD, record
    reason = state.policy.evaluate(record, op.now)
    if reason is not None:
        return reason, record
    lease = state.ledger.grant(item, record, op.now)
    state.counts.leases_granted += 1
    state.counts.immediate_grants += 1
    if op.pending is not None:
        op.item_event("request_wait_started", item)
        op.item_event("request_wait_completed", item, diagnostics={"wait_seconds": 0.0})
        op.item_event("request_lease_acquired", item, lease_id=lease.lease_id, record=record)
    return lease, record


def wait_in_queue(
    op: Operation, item: RequestAdmissionItem, record: ResourceRecord, reason: RequestDenialReason
) -> RequestWaiter | RequestAdmissionDenied:
    """Queue `item`'s waiter until its deadline (`item.timeout`, else the config's default),
    or the timeout denial when that deadline has already passed."""
    state, now = op.state, op.now
    timeout = item.timeout
    if timeout is None:
        timeout = state.config.default_queue_wait_timeout_seconds
    deadline = None if timeout is None else now + timeout
    state.counts.waits_started += 1
    if deadline is not None and deadline <= now:
        denied = op.denied(item, RequestDenialReason.TIMEOUT, record)
        state.counts.wait_timeouts += 1
        op.item_event("request_wait_started", item, reason=reason)
        op.item_event("request_wait_timeout", item, reason="timeout", snapshot=denied.snapshot)
        return denied
    completion: asyncio.Future[RequestAdmissionLease] = asyncio.get_running_loop().create_future()
    waiter = RequestWaiter(next(state.waiter_ids), item, now, deadline, completion)
    state.queue.enqueue(waiter)
    waiting = state.queue.queued_for_resource(item.resource)
    record.max_waiters = max(record.max_waiters, waiting)
    state.wakeups.add_deadline(waiter)
    if op.pending is not None:
        snapshot = op.snap(record)
        if waiting == 1:
            op.resource_event("request_queue_formed", record, reason=reason, snapshot=snapshot)
        op.item_event("request_wait_started", item, reason=reason, snapshot=snapshot)
    return waiter


def grant_waiters(op: Operation) -> None:
    """Grant queued waiters in fair order while any is eligible."""
    state, now = op.state, op.now
    if not state.queue or state.closed:
        return
    ledger, policy = state.ledger, state.policy
    for resource in state.queue.resources():
        record = ledger.record(resource)
        if record is not None:
            op.refresh(record)

    def eligible(item: RequestAdmissionItem) -> bool:
        record = ledger.record(item.resource)
        return record is not None and policy.evaluate(record, now) is None

    while (selection := state.queue.select_next(eligible)) is not None:
        waiter = state.queue.commit(selection)
        if waiter is None:
            break
        record = op.record_of(waiter)
        if not waiter.completion.done():
            _grant(op, waiter, record)
        op.left_queue(record)


def _grant(op: Operation, waiter: RequestWaiter, record: ResourceRecord) -> None:
    state = op.state
    lease = state.ledger.grant(waiter.item, record, op.now)
    state.counts.leases_granted += 1
    state.counts.waits_completed += 1
    waiter.completion.set_result(lease)
    if op.pending is not None:
        waited = {"wait_seconds": op.now - waiter.enqueued_at}
        op.item_event("request_wait_completed", waiter.item, diagnostics=waited)
        op.item_event("request_lease_acquired", waiter.item, lease_id=lease.lease_id, record=record)


def drop_waiters(
    op: Operation, waiters: Iterable[RequestWaiter], reason: RequestDenialReason
) -> None:
    """Take `waiters` off the queue, failing each still waiting with a `reason` denial
    (`timeout`: its deadline passed; `shutdown`: the controller shut down)."""
    state = op.state
    for waiter in waiters:
        state.queue.remove(waiter.waiter_id)
        record = op.record_of(waiter)
        if not waiter.completion.done():
            denied = op.denied(waiter.item, reason, record)
            if reason is RequestDenialReason.TIMEOUT:
                state.counts.wait_timeouts += 1
            else:
                state.counts.waits_shutdown += 1
            waiter.completion.set_exception(RequestAdmissionError(denied))
            if reason is not RequestDenialReason.TIMEOUT:
                op.item_event("request_acquire_denied", waiter.item, reason=reason.value)
            elif op.pending is not None:
                op.item_event(
                    "request_wait_timeout",
                    waiter.item,
                    reason="timeout",
                    snapshot=denied.snapshot,
                    diagnostics={"wait_seconds": op.now - waiter.enqueued_at},
                )
        op.left_queue(record)


def cancel_waiter(op: Operation, waiter: RequestWaiter) -> RequestAdmissionLease | None:
    """The waiter's caller was cancelled: take it off the queue. Returns the lease it was
    granted in the same instant (the caller must release it), else None."""
    state = op.state
    completion = waiter.completion
    removed = state.queue.remove(waiter.waiter_id) is not None
    if removed or completion.cancelled():
        state.counts.wait_cancellations += 1
        record = op.record_of(waiter)
        if op.pending is not None:
            op.item_event(
                "request_wait_cancelled",
                waiter.item,
                reason="cancelled",
                diagnostics={"wait_seconds": op.now - waiter.enqueued_at},
            )
        if removed:
            op.left_queue(record)
            grant_waiters(op)
        return None
    if completion.done() and completion.exception() is None:
        state.counts.cancelled_after_grant += 1
        return completion.result()
    return None
