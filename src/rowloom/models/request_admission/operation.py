"""What a request controller holds, and one operation on it at one instant.

`AdmissionState` is everything one `AdaptiveRequestAdmissionController` owns: the ledger of
resources and leases, the fair queue of waiters, the admission policy, the wake-up timer, the
lifetime counters and the fleet-share gates. `Operation` is one public call at one instant
(`now`): the steps of `granting.py` and `releasing.py` change the state through it, and it
collects the call's events (`pending`; None when no sink listens, so no snapshot or diagnostic
is built) and emits them in `finish`, after every state change is complete.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from rowloom.clock import Clock
from rowloom.models.request_admission import _events as ev
from rowloom.models.request_admission import fleet
from rowloom.models.request_admission.config import RequestAdmissionConfig
from rowloom.models.request_admission.decisions import RequestAdmissionDenied, RequestDenialReason
from rowloom.models.request_admission.ledger import (
    LedgerPressureView,
    RequestLedger,
    ResourceRecord,
    resource_snapshot,
)
from rowloom.models.request_admission.limit_state import LimitTransition
from rowloom.models.request_admission.limits import RequestLimitRuleFactory
from rowloom.models.request_admission.policy import RequestAdmissionPolicy
from rowloom.models.request_admission.pressure import RequestResourcePressureSnapshot
from rowloom.models.request_admission.queue import RequestFairQueue, RequestWaiter
from rowloom.models.request_admission.resources import RequestAdmissionItem, RequestResourceKey
from rowloom.models.request_admission.shares import ShareGate
from rowloom.models.request_admission.views import RequestAdmissionCounters
from rowloom.models.request_admission.wakeups import WaiterWakeups
from rowloom.observability.events import RequestEventEmitter


class AdmissionState:
    """The state of one request controller (single event loop, no locks)."""

    __slots__ = (
        "clock",
        "closed",
        "config",
        "counts",
        "emitter",
        "gates",
        "generation",
        "ledger",
        "on_share_cut",
        "policy",
        "pressure",
        "queue",
        "snapshot_sequence",
        "waiter_ids",
        "wakeups",
    )

    def __init__(
        self,
        config: RequestAdmissionConfig,
        clock: Clock,
        emitter: RequestEventEmitter | None,
        rule_factory: RequestLimitRuleFactory,
        generation: int,
        on_timer: Callable[[], None],
    ) -> None:
        self.config = config
        self.clock = clock
        self.emitter = emitter
        self.generation = generation
        self.ledger = RequestLedger(config, rule_factory, generation)
        self.queue = RequestFairQueue()
        self.policy = RequestAdmissionPolicy()
        self.snapshot_sequence = itertools.count(1)
        self.pressure = LedgerPressureView(
            self.ledger, self.queue, clock, self.snapshot_sequence.__next__
        )
        self.wakeups = WaiterWakeups(clock, self.queue, on_timer)
        self.waiter_ids = itertools.count(1)
        self.closed = False
        self.counts = RequestAdmissionCounters()
        self.gates: dict[str, ShareGate] = {}
        self.on_share_cut: Callable[[], None] | None = None


class Operation:
    """One controller call at `now`: state changes through its steps, events after it."""

    __slots__ = ("now", "pending", "state")

    def __init__(self, state: AdmissionState) -> None:
        self.state = state
        self.now = state.clock.monotonic()
        self.pending = ev.new_pending(state.emitter)

    # -- events -------------------------------------------------------------------------

    def item_event(
        self,
        kind: str,
        item: RequestAdmissionItem,
        *,
        record: ResourceRecord | None = None,
        snapshot: RequestResourcePressureSnapshot | None = None,
        lease_id: str | None = None,
        reason: str | None = None,
        diagnostics: dict[str, Any] | None = None,
    ) -> None:
        """An event about one call attempt, with a `snapshot` (or that of `record`)."""
        if self.pending is not None:
            if snapshot is None and record is not None:
                snapshot = self.snap(record)
            ev.item_event(
                self.pending,
                kind,
                item,
                lease_id=lease_id,
                reason=reason,
                snapshot=snapshot,
                diagnostics=diagnostics,
            )

    def resource_event(
        self,
        kind: str,
        record: ResourceRecord,
        *,
        cause: RequestAdmissionItem | None = None,
        snapshot: RequestResourcePressureSnapshot | None = None,
        reason: str | None = None,
        diagnostics: dict[str, Any] | None = None,
    ) -> None:
        """An event about a resource, with its snapshot; `cause` lends correlation."""
        if self.pending is not None:
            ev.resource_event(
                self.pending,
                kind,
                record.key,
                cause=cause,
                reason=reason,
                snapshot=self.snap(record) if snapshot is None else snapshot,
                diagnostics=diagnostics,
            )

    def snap(self, record: ResourceRecord) -> RequestResourcePressureSnapshot:
        state = self.state
        return resource_snapshot(record, state.queue, self.now, next(state.snapshot_sequence))

    # -- bookkeeping --------------------------------------------------------------------

    def register(self, resource: RequestResourceKey) -> ResourceRecord | None:
        """The resource's record, registered now if its endpoint has a static cap."""
        state = self.state
        record = state.ledger.register(resource, self.now)
        if record is not None:
            self.resource_event(
                "request_resource_registered",
                record,
                diagnostics={
                    "initial_limit": record.limits.initial_limit,
                    "effective_max": record.limits.effective_max,
                    "static_cap": record.pm.static_cap,
                    "max_limit_clamp": state.config.max_limit_clamp(resource),
                    "startup_ramp_seconds": state.config.startup_ramp_seconds,
                },
            )
        return record

    def refresh(self, record: ResourceRecord) -> None:
        """Apply the changes time alone made to the resource's limit (cooldown end, ramp)."""
        self.apply(record, record.limits.refresh(self.now))

    def apply(
        self,
        record: ResourceRecord,
        transitions: tuple[LimitTransition, ...],
        *,
        cause: RequestAdmissionItem | None = None,
    ) -> None:
        """Note the limit's maximum and one event per transition."""
        if not transitions:
            return
        record.max_limit = max(record.max_limit, record.limits.current_limit)
        if self.pending is None:
            return
        snapshot = self.snap(record)
        for t in transitions:
            ev.resource_event(
                self.pending,
                t.event_kind,
                record.key,
                cause=cause,
                reason=t.cause,
                snapshot=snapshot,
                diagnostics={"before": t.before, "after": t.after},
            )

    def left_queue(self, record: ResourceRecord) -> None:
        """A waiter of the resource left the queue: `request_queue_drained` if it was the last."""
        if self.pending is not None and not self.state.queue.queued_for_resource(record.key):
            self.resource_event("request_queue_drained", record)

    def record_of(self, waiter: RequestWaiter) -> ResourceRecord:
        record = self.state.ledger.record(waiter.item.resource)
        assert record is not None, "a queued waiter's resource is always registered"
        return record

    def denied(
        self,
        item: RequestAdmissionItem,
        reason: RequestDenialReason,
        record: ResourceRecord | None,
    ) -> RequestAdmissionDenied:
        """The typed denial, with when the resource may admit again when that is known."""
        if record is None:
            return RequestAdmissionDenied(item, reason)
        now = self.now
        until = record.limits.blocked_until(now)
        if until is None and reason is RequestDenialReason.PACED:
            until = record.paced_until(now)
        return RequestAdmissionDenied(
            item,
            reason,
            retry_after_seconds=None if until is None else until - now,
            available_after_monotonic=until,
            snapshot=self.snap(record),
        )

    # -- end of the operation -----------------------------------------------------------

    def finish(self) -> None:
        """Re-arm the wake-up timer for the queued resources' next time-driven change, then
        emit the collected events (the emitter shields the caller from sink failures)."""
        state = self.state
        if state.closed or not state.queue:
            state.wakeups.stop()
        else:
            state.wakeups.rearm(self._next_change())
        ev.flush(state.emitter, self.pending)

    def _next_change(self) -> float | None:
        state, now = self.state, self.now
        earliest: float | None = None
        for resource in state.queue.resources():
            record = state.ledger.record(resource)
            if record is None:
                continue
            for at in (
                record.limits.next_change_at(now),
                record.paced_until(now),
                fleet.paused_until(record, now),
            ):
                if at is not None and (earliest is None or at < earliest):
                    earliest = at
        return earliest
