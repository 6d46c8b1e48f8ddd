"""Request admission: may this provider/model/domain call go out now?

`AdaptiveRequestAdmissionController` hands out one `RequestAdmissionLease` per concrete call
attempt, under an adaptive limit per resource (the rule `RequestAdmissionConfig.limit_rule`
names), a static cap per endpoint and, when providers send rate-limit headers, a pacer; it
queues blocked callers in a `RequestFairQueue`. It is event-driven: waiters await their own
completion handle; one clock timer at the earliest deadline (queue timeout, end of a blocking
cooldown, ramp step, paced admission) wakes them; releases, cooldown ends and limit increases
grant waiters in fair-queue order. There is no polling loop. Events are emitted after each
operation's state change is complete.

Concurrency model: one event loop; every method runs to completion without awaiting, so the
ledger, queue and limits change atomically with respect to other coroutines. Not thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Final

from rowloom.clock import Clock, SystemClock
from rowloom.leases import ReleaseResult
from rowloom.models.request_admission import fleet, granting, releasing
from rowloom.models.request_admission.config import RequestAdmissionConfig
from rowloom.models.request_admission.decisions import (
    HARD_DENIALS,
    RequestAdmissionDecision,
    RequestAdmissionDenied,
    RequestAdmissionError,
    RequestAdmissionLease,
    RequestDenialReason,
)
from rowloom.models.request_admission.limits import RequestLimitRuleFactory
from rowloom.models.request_admission.operation import AdmissionState, Operation
from rowloom.models.request_admission.outcomes import (
    RequestReleaseOutcome,
    RequestReleaseOutcomeKind,
)
from rowloom.models.request_admission.pressure import RequestPressureSnapshotProvider
from rowloom.models.request_admission.queue import RequestQueueView, RequestWaiter
from rowloom.models.request_admission.resources import RequestAdmissionItem, RequestResourceKey
from rowloom.models.request_admission.rules import configured_rule_factory
from rowloom.models.request_admission.shares import ShareGrant, ShareReport
from rowloom.models.request_admission.views import (
    RequestAdmissionCapacityView,
    RequestAdmissionCounters,
    RequestAdmissionObservedMaxima,
    RequestAdmissionRuntimeSnapshot,
    build_observed_maxima,
    build_runtime_snapshot,
)
from rowloom.observability.events import RequestEventEmitter

_GENERATIONS = itertools.count(1)
_LOCAL_CANCELLED: Final = RequestReleaseOutcome(RequestReleaseOutcomeKind.LOCAL_CANCELLED)


class AdaptiveRequestAdmissionController:
    """The request controller: adaptive limits per resource, static caps per endpoint.

    Admits a call only if its resource's in-flight count is below the current limit, no
    cooldown blocks the resource, its endpoint's in-flight count over all domains is below the
    static cap, and rate-limit pacing allows it. `limit_rule_factory` picks each resource's
    `RequestLimitRule` (default: the rule the config names per resource, see `rules.py`).
    Each public call is one `Operation` made of the named steps of `granting.py` and
    `releasing.py`. Use it from one event loop.
    """

    def __init__(
        self,
        config: RequestAdmissionConfig,
        *,
        clock: Clock | None = None,
        events: RequestEventEmitter | None = None,
        limit_rule_factory: RequestLimitRuleFactory | None = None,
    ) -> None:
        self._s = AdmissionState(
            config,
            clock if clock is not None else SystemClock(),
            events,
            limit_rule_factory or configured_rule_factory,
            next(_GENERATIONS),
            self._on_timer,
        )
        op = Operation(self._s)
        for resource in config.resources:
            op.register(resource)
        op.finish()

    # -- reads ---------------------------------------------------------------------------

    @property
    def config(self) -> RequestAdmissionConfig:
        return self._s.config

    @property
    def controller_generation(self) -> int:
        """Identifies this controller; leases of other controllers are `wrong_generation`."""
        return self._s.generation

    @property
    def pressure(self) -> RequestPressureSnapshotProvider:
        return self._s.pressure

    @property
    def is_shutdown(self) -> bool:
        return self._s.closed

    def in_flight_total(self) -> int:
        """Active leases over all resources."""
        return self._s.ledger.in_flight_total()

    def waiters_total(self) -> int:
        """Queued waiters over all resources."""
        return len(self._s.queue)

    def queue_view(self) -> RequestQueueView:
        return self._s.queue.view()

    def counters(self) -> RequestAdmissionCounters:
        """Lifetime counters (a copy; see `RequestAdmissionCounters`)."""
        return replace(self._s.counts)

    def runtime_snapshot(self) -> RequestAdmissionRuntimeSnapshot:
        """Current limits, effective max, cooldown ends and in-flight counts."""
        s = self._s
        return build_runtime_snapshot(s.ledger, s.queue, s.clock.monotonic())

    def limit_rules(self) -> Mapping[RequestResourceKey, str]:
        """The name of each registered resource's active limit rule (read-only)."""
        records = sorted(self._s.ledger.records(), key=lambda r: r.key)
        return MappingProxyType({r.key: r.limits.rule.name for r in records})

    def observed_maxima(self) -> RequestAdmissionObservedMaxima:
        """The highest waiters, in-flight counts and limits seen so far."""
        return build_observed_maxima(self._s.ledger)

    def capacity_view(self) -> RequestAdmissionCapacityView:
        """Configured values, runtime snapshot and observed maxima for the capacity plan."""
        return RequestAdmissionCapacityView(
            self._s.config, self.runtime_snapshot(), self.observed_maxima()
        )

    # -- acquire -------------------------------------------------------------------------

    def try_acquire(self, item: RequestAdmissionItem) -> RequestAdmissionDecision:
        """A lease now, or a typed denial. Never waits and never jumps queued waiters."""
        op = Operation(self._s)
        result, record = granting.admit_now(op, item)
        if isinstance(result, RequestAdmissionLease):
            op.finish()
            return result
        denied = op.denied(item, result, record)
        self._s.counts.acquire_denials += 1
        op.item_event("request_acquire_denied", item, reason=result, snapshot=denied.snapshot)
        op.finish()
        return denied

    def acquire_sync(self, item: RequestAdmissionItem) -> RequestAdmissionLease:
        """A lease now, or `RequestAdmissionError` carrying the denial.

        Usable from synchronous code (on the loop thread or with no loop at all): it never
        waits, because a synchronous caller cannot wait for a release without blocking the
        event loop that would deliver it. Sync callers that must wait retry on
        `denied.available_after_monotonic` or move to `acquire_async`.
        """
        decision = self.try_acquire(item)
        if isinstance(decision, RequestAdmissionDenied):
            raise RequestAdmissionError(decision)
        return decision

    async def acquire_async(self, item: RequestAdmissionItem) -> RequestAdmissionLease:
        """Wait in the fair queue for this item's own lease.

        Raises `RequestAdmissionError` on queue-wait timeout, shutdown or a hard denial; never
        returns None. Cancellation while queued removes the waiter and re-raises; if the lease
        was granted in the same instant the call is cancelled, that lease is released as
        `local_cancelled` before the cancellation propagates, so it is never orphaned.
        """
        op = Operation(self._s)
        result, record = granting.admit_now(op, item)
        if isinstance(result, RequestAdmissionLease):
            op.finish()
            return result
        if result in HARD_DENIALS or record is None:
            denied = op.denied(item, result, record)
            self._s.counts.acquire_denials += 1
            op.item_event("request_acquire_denied", item, reason=result)
            op.finish()
            raise RequestAdmissionError(denied)
        waiter = granting.wait_in_queue(op, item, record, result)
        op.finish()
        if isinstance(waiter, RequestAdmissionDenied):
            raise RequestAdmissionError(waiter)
        try:
            return await waiter.completion
        except asyncio.CancelledError:
            self._on_waiter_cancelled(waiter)
            raise

    # -- release -------------------------------------------------------------------------

    def release(
        self, lease: RequestAdmissionLease, outcome: RequestReleaseOutcome
    ) -> ReleaseResult:
        """Return the lease's capacity exactly once and apply the outcome to its limit.

        Never raises. Duplicate, stale, wrong-generation and unknown leases are answered with
        `released=False` and a `request_release_diagnostic` event, and add no capacity.
        """
        op = Operation(self._s)
        result = self._release(op, lease, outcome)
        op.finish()
        return result

    def set_max_limit_clamp(self, resource: RequestResourceKey, clamp: int | None) -> None:
        """Change a resource's clamp at run time (effective max = min(static cap, clamp)).

        Emits `request_effective_cap_changed`; a lower max lowers the current limit, a higher
        one lets additive increase go further. Raises `KeyError` for an unknown endpoint.
        """
        if clamp is not None and clamp < 1:
            raise ValueError("a max limit clamp must be >= 1")
        op = Operation(self._s)
        record = self._s.ledger.record(resource) or op.register(resource)
        if record is None:
            raise KeyError(resource.as_key_str())
        cap = record.pm.static_cap
        top = cap if clamp is None else min(cap, clamp)
        op.apply(record, record.limits.set_effective_max(top, op.now))
        granting.grant_waiters(op)
        op.finish()

    # -- fleet shares (Ray workers) ------------------------------------------------------

    def attach_shares(
        self, keys: Mapping[str, int], on_cut: Callable[[], None] | None = None
    ) -> tuple[str, ...]:
        """Admit within fleet shares on `keys` (`fleet.share_keys`); each is 0 until granted.

        `on_cut` runs after a 429 cut a share, so the worker can report at once.
        """
        self._s.gates = fleet.attach(self._s.ledger, keys)
        self._s.on_share_cut = on_cut
        return tuple(self._s.gates)

    def share_reports(self) -> dict[str, ShareReport]:
        """Each share's report since the last one (its counters start again)."""
        return fleet.reports(self._s.ledger, self._s.queue, self._s.clock.monotonic())

    def shares(self) -> dict[str, int]:
        """Each share key's share in force."""
        return {key: gate.share for key, gate in self._s.gates.items()}

    def set_shares(self, grants: Mapping[str, ShareGrant]) -> None:
        """Adopt the coordinator's grants; emits `request_share_changed`; grants waiters."""
        op = Operation(self._s)
        changed = fleet.apply(self._s.ledger, grants, op.now)
        if op.pending is not None:
            fleet.share_events(op.pending, self._s.ledger, changed, grants)
        granting.grant_waiters(op)
        op.finish()

    def orphan_shares(self) -> None:
        """The coordinator is lost: every share keeps its last value (at least 1)."""
        for gate in self._s.gates.values():
            gate.orphan()
        op = Operation(self._s)
        granting.grant_waiters(op)
        op.finish()

    def shutdown(self) -> None:
        """Fail every queued waiter with a `shutdown` denial; later acquires are denied.

        Active leases stay valid and must still be released. Idempotent.
        """
        if self._s.closed:
            return
        self._s.closed = True
        op = Operation(self._s)
        granting.drop_waiters(op, self._s.queue.waiters(), RequestDenialReason.SHUTDOWN)
        self._s.wakeups.stop()
        op.finish()

    # -- internals -----------------------------------------------------------------------

    def _release(
        self,
        op: Operation,
        lease: RequestAdmissionLease,
        outcome: RequestReleaseOutcome,
        *,
        after_grant: bool = False,
    ) -> ReleaseResult:
        result = releasing.release(op, lease, outcome, after_grant=after_grant)
        if result.released:
            granting.grant_waiters(op)
        return result

    def _on_waiter_cancelled(self, waiter: RequestWaiter) -> None:
        op = Operation(self._s)
        lease = granting.cancel_waiter(op, waiter)
        if lease is not None:
            self._release(op, lease, _LOCAL_CANCELLED, after_grant=True)
        op.finish()

    def _on_timer(self) -> None:
        """The wake-up timer: time-driven limit changes, grants, then expired deadlines."""
        s = self._s
        s.wakeups.fired()
        op = Operation(s)
        for record in list(s.ledger.records()):
            op.refresh(record)
        granting.grant_waiters(op)  # at one instant, a grant wins over a timeout
        expired = s.wakeups.expired(op.now)
        granting.drop_waiters(op, expired, RequestDenialReason.TIMEOUT)
        if expired:
            granting.grant_waiters(op)
        op.finish()
