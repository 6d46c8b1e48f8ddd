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
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Final

from rowloom.clock import Clock, SystemClock
from rowloom.models.request_admission import _events as ev
from rowloom.models.request_admission import fleet
from rowloom.models.request_admission._events import Pending
from rowloom.models.request_admission.config import RequestAdmissionConfig
from rowloom.models.request_admission.decisions import (
    HARD_DENIALS,
    RequestAdmissionDecision,
    RequestAdmissionDenied,
    RequestAdmissionError,
    RequestAdmissionLease,
    RequestDenialReason,
)
from rowloom.models.request_admission.ledger import (
    LedgerPressureView,
    RequestLedger,
    ResourceRecord,
    SettledLease,
    resource_snapshot,
)
from rowloom.models.request_admission.limit_state import (
    LIMIT_DECREASED,
    LIMIT_INCREASED,
    LimitTransition,
    RateLimitEffect,
)
from rowloom.models.request_admission.limits import RequestLimitRuleFactory
from rowloom.models.request_admission.outcomes import (
    ReleaseReason,
    ReleaseResult,
    RequestReleaseOutcome,
    RequestReleaseOutcomeKind,
)
from rowloom.models.request_admission.policy import RequestAdmissionPolicy
from rowloom.models.request_admission.pressure import (
    RequestPressureSnapshotProvider,
    RequestResourcePressureSnapshot,
)
from rowloom.models.request_admission.queue import (
    RequestFairQueue,
    RequestQueueView,
    RequestWaiter,
)
from rowloom.models.request_admission.resources import RequestAdmissionItem, RequestResourceKey
from rowloom.models.request_admission.rules import configured_rule_factory
from rowloom.models.request_admission.shares import ShareGate, ShareGrant, ShareReport
from rowloom.models.request_admission.views import (
    RequestAdmissionCapacityView,
    RequestAdmissionCounters,
    RequestAdmissionObservedMaxima,
    RequestAdmissionRuntimeSnapshot,
    build_observed_maxima,
    build_runtime_snapshot,
)
from rowloom.models.request_admission.wakeups import WaiterWakeups
from rowloom.observability.events import RequestEventEmitter

_GENERATIONS = itertools.count(1)
_RELEASED: Final = ReleaseResult(True, ReleaseReason.RELEASED)
_LOCAL_CANCELLED: Final = RequestReleaseOutcome(RequestReleaseOutcomeKind.LOCAL_CANCELLED)
_UNEXPECTED: Final = RequestReleaseOutcome(RequestReleaseOutcomeKind.UNEXPECTED_EXCEPTION)
_PROVIDER_FAILURES: Final = frozenset(
    {RequestReleaseOutcomeKind.PROVIDER_FAILURE, RequestReleaseOutcomeKind.PROVIDER_TIMEOUT}
)


@dataclass(slots=True)
class _Counts:
    leases_granted: int = 0
    immediate_grants: int = 0
    waits_started: int = 0
    waits_completed: int = 0
    wait_timeouts: int = 0
    wait_cancellations: int = 0
    waits_shutdown: int = 0
    cancelled_after_grant: int = 0
    acquire_denials: int = 0
    leases_released: int = 0
    rate_limited: int = 0
    bad_releases: int = 0


class AdaptiveRequestAdmissionController:
    """The request controller: adaptive limits per resource, static caps per endpoint.

    Admits a call only if its resource's in-flight count is below the current limit, no
    cooldown blocks the resource, its endpoint's in-flight count over all domains is below the
    static cap, and rate-limit pacing allows it. `limit_rule_factory` picks each resource's
    `RequestLimitRule` (default: the rule the config names per resource, see `rules.py`).
    Use it from one event loop.
    """

    def __init__(
        self,
        config: RequestAdmissionConfig,
        *,
        clock: Clock | None = None,
        events: RequestEventEmitter | None = None,
        limit_rule_factory: RequestLimitRuleFactory | None = None,
    ) -> None:
        self._config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._emitter = events
        self._generation = next(_GENERATIONS)
        self._ledger = RequestLedger(
            config, limit_rule_factory or configured_rule_factory, self._generation
        )
        self._queue = RequestFairQueue()
        self._policy = RequestAdmissionPolicy()
        self._snapshot_sequence = itertools.count(1)
        self._pressure = LedgerPressureView(
            self._ledger, self._queue, self._clock, self._snapshot_sequence.__next__
        )
        self._wakeups = WaiterWakeups(self._clock, self._queue, self._on_timer)
        self._waiter_ids = itertools.count(1)
        self._closed = False
        self._n = _Counts()
        self._gates: dict[str, ShareGate] = {}
        self._on_share_cut: Callable[[], None] | None = None
        now = self._clock.monotonic()
        pending = ev.new_pending(events)
        for resource in config.resources:
            self._register(resource, now, pending)
        ev.flush(events, pending)

    # -- reads ---------------------------------------------------------------------------

    @property
    def config(self) -> RequestAdmissionConfig:
        return self._config

    @property
    def controller_generation(self) -> int:
        """Identifies this controller; leases of other controllers are `wrong_generation`."""
        return self._generation

    @property
    def pressure(self) -> RequestPressureSnapshotProvider:
        return self._pressure

    @property
    def is_shutdown(self) -> bool:
        return self._closed

    def in_flight_total(self) -> int:
        """Active leases over all resources."""
        return self._ledger.in_flight_total()

    def waiters_total(self) -> int:
        """Queued waiters over all resources."""
        return len(self._queue)

    def queue_view(self) -> RequestQueueView:
        return self._queue.view()

    def counters(self) -> RequestAdmissionCounters:
        """Lifetime counters (see `RequestAdmissionCounters`)."""
        n = self._n
        return RequestAdmissionCounters(**{f.name: getattr(n, f.name) for f in fields(n)})

    def runtime_snapshot(self) -> RequestAdmissionRuntimeSnapshot:
        """Current limits, effective max, cooldown ends and in-flight counts."""
        return build_runtime_snapshot(self._ledger, self._queue, self._clock.monotonic())

    def limit_rules(self) -> Mapping[RequestResourceKey, str]:
        """The name of each registered resource's active limit rule (read-only)."""
        records = sorted(self._ledger.records(), key=lambda r: r.key)
        return MappingProxyType({r.key: r.limits.rule.name for r in records})

    def observed_maxima(self) -> RequestAdmissionObservedMaxima:
        """The highest waiters, in-flight counts and limits seen so far."""
        return build_observed_maxima(self._ledger)

    def capacity_view(self) -> RequestAdmissionCapacityView:
        """Configured values, runtime snapshot and observed maxima for the capacity plan."""
        return RequestAdmissionCapacityView(
            self._config, self.runtime_snapshot(), self.observed_maxima()
        )

    # -- acquire -------------------------------------------------------------------------

    def try_acquire(self, item: RequestAdmissionItem) -> RequestAdmissionDecision:
        """A lease now, or a typed denial. Never waits and never jumps queued waiters."""
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        result, record = self._admit_now(item, now, pending)
        if isinstance(result, RequestAdmissionLease):
            self._settle(now, pending)
            return result
        denied = self._denied(item, result, record, now)
        self._n.acquire_denials += 1
        if pending is not None:
            ev.item_event(
                pending, "request_acquire_denied", item, reason=result, snapshot=denied.snapshot
            )
        self._settle(now, pending)
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
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        result, record = self._admit_now(item, now, pending)
        if isinstance(result, RequestAdmissionLease):
            self._settle(now, pending)
            return result
        if result in HARD_DENIALS or record is None:
            denied = self._denied(item, result, record, now)
            self._n.acquire_denials += 1
            if pending is not None:
                ev.item_event(pending, "request_acquire_denied", item, reason=result)
            self._settle(now, pending)
            raise RequestAdmissionError(denied)
        timeout = item.timeout
        if timeout is None:
            timeout = self._config.default_queue_wait_timeout_seconds
        deadline = None if timeout is None else now + timeout
        self._n.waits_started += 1
        if deadline is not None and deadline <= now:
            denied = self._denied(item, RequestDenialReason.TIMEOUT, record, now)
            self._n.wait_timeouts += 1
            if pending is not None:
                ev.item_event(pending, "request_wait_started", item, reason=result)
                ev.item_event(
                    pending,
                    "request_wait_timeout",
                    item,
                    reason="timeout",
                    snapshot=denied.snapshot,
                )
            self._settle(now, pending)
            raise RequestAdmissionError(denied)
        completion: asyncio.Future[RequestAdmissionLease] = (
            asyncio.get_running_loop().create_future()
        )
        waiter = RequestWaiter(next(self._waiter_ids), item, now, deadline, completion)
        self._queue.enqueue(waiter)
        waiting = self._queue.queued_for_resource(item.resource)
        record.max_waiters = max(record.max_waiters, waiting)
        self._wakeups.add_deadline(waiter)
        if pending is not None:
            snapshot = self._snap(record, now)
            if waiting == 1:
                ev.resource_event(
                    pending, "request_queue_formed", record.key, reason=result, snapshot=snapshot
                )
            ev.item_event(pending, "request_wait_started", item, reason=result, snapshot=snapshot)
        self._settle(now, pending)
        try:
            return await completion
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
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        result = self._release(lease, outcome, now, pending)
        self._settle(now, pending)
        return result

    def set_max_limit_clamp(self, resource: RequestResourceKey, clamp: int | None) -> None:
        """Change a resource's clamp at run time (effective max = min(static cap, clamp)).

        Emits `request_effective_cap_changed`; a lower max lowers the current limit, a higher
        one lets additive increase go further. Raises `KeyError` for an unknown endpoint.
        """
        if clamp is not None and clamp < 1:
            raise ValueError("a max limit clamp must be >= 1")
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        record = self._ledger.record(resource) or self._register(resource, now, pending)
        if record is None:
            raise KeyError(resource.as_key_str())
        cap = record.pm.static_cap
        self._apply(
            record,
            record.limits.set_effective_max(cap if clamp is None else min(cap, clamp), now),
            now,
            pending,
        )
        self._dispatch(now, pending)
        self._settle(now, pending)

    # -- fleet shares (Ray workers) ------------------------------------------------------

    def attach_shares(
        self, keys: Mapping[str, int], on_cut: Callable[[], None] | None = None
    ) -> tuple[str, ...]:
        """Admit within fleet shares on `keys` (`fleet.share_keys`); each is 0 until granted.

        `on_cut` runs after a 429 cut a share, so the worker can report at once.
        """
        self._gates = fleet.attach(self._ledger, keys)
        self._on_share_cut = on_cut
        return tuple(self._gates)

    def share_reports(self) -> dict[str, ShareReport]:
        """Each share's report since the last one (its counters start again)."""
        return fleet.reports(self._ledger, self._queue)

    def shares(self) -> dict[str, int]:
        """Each share key's share in force."""
        return {key: gate.share for key, gate in self._gates.items()}

    def set_shares(self, grants: Mapping[str, ShareGrant]) -> None:
        """Adopt the coordinator's grants; emits `request_share_changed`; grants waiters."""
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        changed = fleet.apply(self._ledger, grants, now)
        if pending is not None:
            fleet.share_events(pending, self._ledger, changed, grants)
        self._dispatch(now, pending)
        self._settle(now, pending)

    def orphan_shares(self) -> None:
        """The coordinator is lost: every share keeps its last value (at least 1)."""
        for gate in self._gates.values():
            gate.orphan()
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        self._dispatch(now, pending)
        self._settle(now, pending)

    def shutdown(self) -> None:
        """Fail every queued waiter with a `shutdown` denial; later acquires are denied.

        Active leases stay valid and must still be released. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        for waiter in self._queue.waiters():
            self._queue.remove(waiter.waiter_id)
            record = self._record_of(waiter)
            if not waiter.completion.done():
                denied = self._denied(waiter.item, RequestDenialReason.SHUTDOWN, record, now)
                self._n.waits_shutdown += 1
                waiter.completion.set_exception(RequestAdmissionError(denied))
                if pending is not None:
                    ev.item_event(pending, "request_acquire_denied", waiter.item, reason="shutdown")
            self._left_queue(record, now, pending)
        self._wakeups.stop()
        self._settle(now, pending)

    # -- internals: admission ------------------------------------------------------------

    def _admit_now(
        self, item: RequestAdmissionItem, now: float, pending: Pending | None
    ) -> tuple[RequestAdmissionLease | RequestDenialReason, ResourceRecord | None]:
        record = self._ledger.record(item.resource)
        if self._closed:
            return RequestDenialReason.SHUTDOWN, record
        if record is None:
            record = self._register(item.resource, now, pending)
            if record is None:
                return RequestDenialReason.UNKNOWN_RESOURCE, None
        self._apply(record, record.limits.refresh(now), now, pending)
        if self._queue:
            self._dispatch(now, pending)
        if self._queue.queued_for_resource(item.resource):
            return RequestDenialReason.QUEUED_WAITERS_AHEAD, record
        reason = self._policy.evaluate(record, now)
        if reason is not None:
            return reason, record
        lease = self._ledger.grant(item, record, now)
        self._n.leases_granted += 1
        self._n.immediate_grants += 1
        if pending is not None:
            ev.item_event(pending, "request_wait_started", item)
            ev.item_event(
                pending, "request_wait_completed", item, diagnostics={"wait_seconds": 0.0}
            )
            ev.item_event(
                pending,
                "request_lease_acquired",
                item,
                lease_id=lease.lease_id,
                snapshot=self._snap(record, now),
            )
        return lease, record

    def _dispatch(self, now: float, pending: Pending | None) -> None:
        """Grant queued waiters in fair order while any is eligible."""
        if not self._queue or self._closed:
            return
        for resource in self._queue.resources():
            record = self._ledger.record(resource)
            if record is not None:
                self._apply(record, record.limits.refresh(now), now, pending)

        policy = self._policy

        def eligible(item: RequestAdmissionItem) -> bool:
            record = self._ledger.record(item.resource)
            return record is not None and policy.evaluate(record, now) is None

        while (selection := self._queue.select_next(eligible)) is not None:
            waiter = self._queue.commit(selection)
            if waiter is None:
                break
            record = self._record_of(waiter)
            if not waiter.completion.done():
                lease = self._ledger.grant(waiter.item, record, now)
                self._n.leases_granted += 1
                self._n.waits_completed += 1
                waiter.completion.set_result(lease)
                if pending is not None:
                    ev.item_event(
                        pending,
                        "request_wait_completed",
                        waiter.item,
                        diagnostics={"wait_seconds": now - waiter.enqueued_at},
                    )
                    ev.item_event(
                        pending,
                        "request_lease_acquired",
                        waiter.item,
                        lease_id=lease.lease_id,
                        snapshot=self._snap(record, now),
                    )
            self._left_queue(record, now, pending)

    def _on_waiter_cancelled(self, waiter: RequestWaiter) -> None:
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        completion = waiter.completion
        removed = self._queue.remove(waiter.waiter_id) is not None
        if removed or completion.cancelled():
            self._n.wait_cancellations += 1
            record = self._record_of(waiter)
            if pending is not None:
                ev.item_event(
                    pending,
                    "request_wait_cancelled",
                    waiter.item,
                    reason="cancelled",
                    diagnostics={"wait_seconds": now - waiter.enqueued_at},
                )
            if removed:
                self._left_queue(record, now, pending)
                self._dispatch(now, pending)
        elif completion.done() and completion.exception() is None:
            self._n.cancelled_after_grant += 1
            self._release(completion.result(), _LOCAL_CANCELLED, now, pending, after_grant=True)
        self._settle(now, pending)

    def _on_timer(self) -> None:
        self._wakeups.fired()
        now = self._clock.monotonic()
        pending = ev.new_pending(self._emitter)
        for record in list(self._ledger.records()):
            self._apply(record, record.limits.refresh(now), now, pending)
        self._dispatch(now, pending)  # at one instant, a grant wins over a timeout
        expired = self._wakeups.expired(now)
        for waiter in expired:
            self._queue.remove(waiter.waiter_id)
            record = self._record_of(waiter)
            if not waiter.completion.done():
                denied = self._denied(waiter.item, RequestDenialReason.TIMEOUT, record, now)
                self._n.wait_timeouts += 1
                waiter.completion.set_exception(RequestAdmissionError(denied))
                if pending is not None:
                    ev.item_event(
                        pending,
                        "request_wait_timeout",
                        waiter.item,
                        reason="timeout",
                        snapshot=denied.snapshot,
                        diagnostics={"wait_seconds": now - waiter.enqueued_at},
                    )
            self._left_queue(record, now, pending)
        if expired:
            self._dispatch(now, pending)
        self._settle(now, pending)

    # -- internals: release --------------------------------------------------------------

    def _release(
        self,
        lease: RequestAdmissionLease,
        outcome: RequestReleaseOutcome,
        now: float,
        pending: Pending | None,
        *,
        after_grant: bool = False,
    ) -> ReleaseResult:
        verdict = self._ledger.check_release(lease)
        if verdict is not ReleaseReason.RELEASED:
            return self._bad_release(lease, outcome, verdict, pending)
        if not isinstance(outcome, RequestReleaseOutcome):
            outcome = _UNEXPECTED  # release never raises, even on a malformed outcome
        settled = self._ledger.settle(lease)
        record, ordinal = settled.record, settled.ordinal
        self._n.leases_released += 1
        kind = outcome.kind
        record.last_outcome = kind.value
        limits = record.limits
        if outcome.rate_limit is not None and self._config.header_pacing:
            record.pacer.observe(now, outcome.rate_limit, record.grants - ordinal - 1)
        effect: RateLimitEffect | None = None
        if kind is RequestReleaseOutcomeKind.RATE_LIMITED:
            self._n.rate_limited += 1
            effect = limits.on_rate_limited(
                now,
                lease.current_limit,
                outcome.retry_after_seconds,
                granted_in_cooldown=ordinal >= record.cooldown_mark,
                lease_in_flight=settled.in_flight_at_grant,
            )
            if effect.cooldown_started:
                record.cooldown_mark = record.grants
            transitions = effect.transitions
        elif kind is RequestReleaseOutcomeKind.SUCCESS:
            transitions = limits.on_success(
                now, now - lease.acquired_at, record.in_flight, lease.current_limit
            )
        else:
            if kind in _PROVIDER_FAILURES:
                limits.on_provider_failure()
            transitions = limits.refresh(now)
        if pending is not None:
            diagnostics: dict[str, Any] = {"held_seconds": now - lease.acquired_at}
            if outcome.status_code is not None:
                diagnostics["status_code"] = outcome.status_code
            if outcome.error_class is not None:
                diagnostics["error_class"] = outcome.error_class
            if after_grant:
                diagnostics["cancelled_after_grant"] = True
            ev.item_event(
                pending,
                "request_lease_released",
                lease.item,
                lease_id=lease.lease_id,
                reason=kind.value,
                diagnostics=diagnostics,
            )
            if effect is not None:
                ev.item_event(
                    pending,
                    "request_rate_limited",
                    lease.item,
                    lease_id=lease.lease_id,
                    reason="rate_limited",
                    snapshot=self._snap(record, now),
                    diagnostics={
                        "retry_after_seconds": outcome.retry_after_seconds,
                        "new_cascade": effect.new_cascade,
                        "lease_limit": lease.current_limit,
                        "cooldown_mode": limits.cooldown_mode,
                        "admission_blocked": effect.blocked,
                        "status_code": outcome.status_code,
                    },
                )
        self._apply(record, transitions, now, pending, cause=lease.item)
        if kind is RequestReleaseOutcomeKind.SUCCESS or effect is not None:
            self._observe_provider(settled, effect is not None, now, pending, lease.item)
            cut = self._gates and fleet.observe(
                settled, effect is not None, outcome.retry_after_seconds
            )
            if cut and self._on_share_cut is not None:
                self._on_share_cut()
        self._dispatch(now, pending)
        return _RELEASED

    def _observe_provider(
        self,
        settled: SettledLease,
        rate_limited: bool,
        now: float,
        pending: Pending | None,
        cause: RequestAdmissionItem,
    ) -> None:
        """Fold a success or a 429 into the provider's learned limit; note a change as a limit
        event of the resource whose release caused it (`reason`: `provider_limit`)."""
        provider = settled.record.pm.provider
        before = provider.observe(
            now, rate_limited, settled.provider_ordinal, settled.provider_in_flight_at_grant
        )
        if before is None or pending is None:
            return
        after = provider.limit
        assert after is not None
        ev.resource_event(
            pending,
            LIMIT_DECREASED if after < before else LIMIT_INCREASED,
            settled.record.key,
            cause=cause,
            reason="provider_limit",
            snapshot=self._snap(settled.record, now),
            diagnostics={
                "scope": "provider",
                "provider": provider.name,
                "before": before,
                "after": after,
            },
        )

    def _bad_release(
        self,
        lease: object,
        outcome: RequestReleaseOutcome,
        verdict: ReleaseReason,
        pending: Pending | None,
    ) -> ReleaseResult:
        self._n.bad_releases += 1
        diagnostics: dict[str, Any] = {
            "lease_id": getattr(lease, "lease_id", None),
            "lease_generation": getattr(lease, "controller_generation", None),
            "controller_generation": self._generation,
            "outcome": getattr(getattr(outcome, "kind", None), "value", None),
        }
        if pending is not None:
            if isinstance(lease, RequestAdmissionLease):
                ev.item_event(
                    pending,
                    "request_release_diagnostic",
                    lease.item,
                    lease_id=lease.lease_id,
                    reason=verdict.value,
                    diagnostics=diagnostics,
                )
            else:
                ev.bare_event(
                    pending,
                    "request_release_diagnostic",
                    reason=verdict.value,
                    diagnostics=diagnostics,
                )
        return ReleaseResult(False, verdict, MappingProxyType(diagnostics))

    # -- internals: bookkeeping ----------------------------------------------------------

    def _register(
        self, resource: RequestResourceKey, now: float, pending: Pending | None
    ) -> ResourceRecord | None:
        record = self._ledger.register(resource, now)
        if record is not None and pending is not None:
            ev.resource_event(
                pending,
                "request_resource_registered",
                resource,
                snapshot=self._snap(record, now),
                diagnostics={
                    "initial_limit": record.limits.initial_limit,
                    "effective_max": record.limits.effective_max,
                    "static_cap": record.pm.static_cap,
                    "max_limit_clamp": self._config.max_limit_clamp(resource),
                    "startup_ramp_seconds": self._config.startup_ramp_seconds,
                },
            )
        return record

    def _apply(
        self,
        record: ResourceRecord,
        transitions: tuple[LimitTransition, ...],
        now: float,
        pending: Pending | None,
        *,
        cause: RequestAdmissionItem | None = None,
    ) -> None:
        """Note limit maxima and queue the transitions' events."""
        if not transitions:
            return
        record.max_limit = max(record.max_limit, record.limits.current_limit)
        if pending is None:
            return
        snapshot = self._snap(record, now)
        for t in transitions:
            ev.resource_event(
                pending,
                t.event_kind,
                record.key,
                cause=cause,
                reason=t.cause,
                snapshot=snapshot,
                diagnostics={"before": t.before, "after": t.after},
            )

    def _left_queue(self, record: ResourceRecord, now: float, pending: Pending | None) -> None:
        if pending is not None and not self._queue.queued_for_resource(record.key):
            ev.resource_event(
                pending,
                "request_queue_drained",
                record.key,
                snapshot=self._snap(record, now),
            )

    def _snap(self, record: ResourceRecord, now: float) -> RequestResourcePressureSnapshot:
        return resource_snapshot(record, self._queue, now, next(self._snapshot_sequence))

    def _record_of(self, waiter: RequestWaiter) -> ResourceRecord:
        record = self._ledger.record(waiter.item.resource)
        assert record is not None, "a queued waiter's resource is always registered"
        return record

    def _denied(
        self,
        item: RequestAdmissionItem,
        reason: RequestDenialReason,
        record: ResourceRecord | None,
        now: float,
    ) -> RequestAdmissionDenied:
        if record is None:
            return RequestAdmissionDenied(item, reason)
        until = record.limits.blocked_until(now)
        if until is None and reason is RequestDenialReason.PACED:
            until = record.paced_until(now)
        return RequestAdmissionDenied(
            item,
            reason,
            retry_after_seconds=None if until is None else until - now,
            available_after_monotonic=until,
            snapshot=self._snap(record, now),
        )

    def _settle(self, now: float, pending: Pending | None) -> None:
        """End of an operation: re-arm the wake-up timer, then emit the queued events."""
        self._rearm(now)
        ev.flush(self._emitter, pending)

    def _rearm(self, now: float) -> None:
        """Re-arm the wake-up timer for the queued resources' next time-driven change."""
        if self._closed or not self._queue:
            self._wakeups.stop()
            return
        earliest: float | None = None
        for resource in self._queue.resources():
            record = self._ledger.record(resource)
            if record is None:
                continue
            for at in (
                record.limits.next_change_at(now),
                record.paced_until(now),
                fleet.paused_until(record, now),
            ):
                if at is not None and (earliest is None or at < earliest):
                    earliest = at
        self._wakeups.rearm(earliest)
