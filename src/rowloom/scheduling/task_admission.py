"""Task admission: may this ready task become a running worker now?

`TaskAdmissionController` owns the hard ledger of scheduler resources (`submission`, `local`,
...), hands out one `TaskAdmissionLease` per admitted task, and asks its
`TaskAdmissionPolicy` for fairness decisions. Policy state (borrow debt) is kept beside the
ledger and changed only through `PolicyStateDelta`s applied in the same step as the lease
acquire or release; it never changes resource availability. Like the queue, it belongs to one
event loop: no locks, and nothing here awaits.

Guarantees:

- leased units never exceed a resource's limit and never go negative;
- `release` never raises; a duplicate, stale, wrong-generation or unknown release returns a
  diagnostic `ReleaseResult` and adds no capacity;
- `is_eligible` and `try_acquire` agree: an eligible candidate is acquired when nothing changed
  in between;
- `is_eligible` refuses every candidate that needs more of some resource than is free before
  asking the policy, and answers such a refusal with `Refusal(resource, free)`, so the queue
  skips every queued group blocked on that resource without asking it;
- a denial the policy marks as advisory (`AdvisorySkip`, e.g. request pressure) is recorded
  once per skip episode of its group (until the group is admitted again, or the reason
  changes) and handed out by `drain_advisory_skips`, so the caller emits the events.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from rowloom.clock import Clock
from rowloom.leases import ReleaseReason, ReleaseResult
from rowloom.scheduling.admission_view import (
    GroupAdmissionFacts,
    TaskAdmissionLease,
    TaskAdmissionView,
)
from rowloom.scheduling.policy_factory import build_policy
from rowloom.scheduling.queue import Eligibility, QueueView, Refusal
from rowloom.scheduling.resources import (
    SUBMISSION,
    SchedulableTask,
    SchedulerResourceKey,
    TaskGroupKey,
    TaskGroupSpec,
)
from rowloom.scheduling.task_policies import (
    NO_CHANGE,
    AdvisorySkip,
    PolicyStateDelta,
    StrictFairPolicyConfig,
    TaskAdmissionDenialReason,
    TaskAdmissionPolicy,
    TaskAdmissionPolicyConfig,
    TaskAdmissionPolicyDecision,
)

_EMPTY: Final[Mapping[Any, Any]] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    return _EMPTY


_GENERATIONS = itertools.count(1)
_MAX_UNDRAINED_SKIPS: Final = 4096
_MAX_KEY_CACHE: Final = 4096


@dataclass(frozen=True, slots=True)
class TaskAdmissionConfig:
    """Engine-internal task-stage capacity: submission slots, other resource limits, policy.

    Resources not named here are unlimited (still counted in the ledger).
    """

    submission_capacity: int
    resource_limits: Mapping[SchedulerResourceKey, int] = field(default_factory=dict)
    policy: TaskAdmissionPolicyConfig = field(default_factory=StrictFairPolicyConfig)

    def __post_init__(self) -> None:
        if self.submission_capacity < 1:
            raise ValueError("submission_capacity must be >= 1")
        for key, limit in self.resource_limits.items():
            if limit < 1:
                raise ValueError(f"limit of {key!r} must be >= 1, got {limit}")
        if self.resource_limits.get(SUBMISSION, self.submission_capacity) != (
            self.submission_capacity
        ):
            raise ValueError("set the submission limit through submission_capacity")

    def limits(self) -> dict[SchedulerResourceKey, int]:
        """Every limited resource and its limit."""
        return {SUBMISSION: self.submission_capacity, **self.resource_limits}


@dataclass(frozen=True, slots=True)
class TaskAdmissionDenied:
    """Why a candidate was not admitted; `available_after` is a monotonic deadline if known."""

    item: SchedulableTask
    reason: TaskAdmissionDenialReason
    available_after: float | None
    snapshot: TaskAdmissionView | None
    diagnostics: Mapping[str, Any] = field(default_factory=_empty)


TaskAdmissionDecision: TypeAlias = TaskAdmissionLease | TaskAdmissionDenied


@dataclass(frozen=True, slots=True)
class TaskAdmissionBlockSummary:
    """Why no queued task can be admitted: reasons ordered by how many queued tasks they block."""

    queued_count: int
    dominant_reasons: tuple[TaskAdmissionDenialReason, ...]
    available_after: float | None
    diagnostics: Mapping[str, Any] = field(default_factory=_empty)


_RELEASED: Final = ReleaseResult(True, ReleaseReason.RELEASED)


class _GroupLedger:
    """Mutable per-group accounting (internal). Zero entries are deleted, never kept."""

    __slots__ = ("debt", "group", "leased", "leases")

    def __init__(self, group: TaskGroupSpec) -> None:
        self.group = group
        self.leases = 0
        self.leased: dict[SchedulerResourceKey, int] = {}
        self.debt: dict[SchedulerResourceKey, int] = {}


class _LiveFacts:
    """Read-only `AdmissionFacts` over the controller's current state.

    The controller keeps `running_weight` and `running_set_token` current; policies only read.
    """

    __slots__ = (
        "_controller",
        "_held",
        "_ledgers",
        "limits",
        "running_set_token",
        "running_weight",
    )

    def __init__(
        self, controller: TaskAdmissionController, limits: Mapping[SchedulerResourceKey, int]
    ) -> None:
        self._controller = controller
        self._ledgers = controller._ledgers  # the controller's live dicts (never rebound)
        self._held = controller._held
        self.limits = limits
        self.running_set_token: object = object()
        self.running_weight = 0

    @property
    def now(self) -> float:
        return self._controller._clock.monotonic()

    @property
    def version(self) -> int:
        return self._controller._version

    def leased_by_group(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        ledger = self._ledgers.get(group)
        return 0 if ledger is None else ledger.leased.get(resource, 0)

    def running_count(self, group: TaskGroupKey) -> int:
        ledger = self._ledgers.get(group)
        return 0 if ledger is None else ledger.leases

    def debt(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        ledger = self._ledgers.get(group)
        return 0 if ledger is None else ledger.debt.get(resource, 0)

    def running_groups(self) -> Iterable[TaskGroupSpec]:
        return [ledger.group for ledger in self._held.values() if ledger.leases]


class TaskAdmissionController:
    """Scheduler-resource ledger, task leases and policy state (see the module docstring).

    Single-threaded: one event loop owns it; every method runs to completion (policies are
    called from inside it and must not call back). Policies read a live `AdmissionFacts`
    reader during `evaluate`; `view()` returns an immutable `TaskAdmissionView` snapshot. The
    clock stamps `acquired_at`. Advisory skips are kept in a small journal until drained.
    """

    def __init__(
        self,
        config: TaskAdmissionConfig,
        clock: Clock,
        policy: TaskAdmissionPolicy | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._monotonic = clock.monotonic
        self._policy = policy if policy is not None else build_policy(config.policy)
        self._generation = next(_GENERATIONS)
        self._prefix = f"tl{self._generation}-"
        self._limits = config.limits()
        self._limits_view: Mapping[SchedulerResourceKey, int] = MappingProxyType(dict(self._limits))
        self._leased: dict[SchedulerResourceKey, int] = dict.fromkeys(self._limits, 0)
        self._max_leased: dict[SchedulerResourceKey, int] = dict.fromkeys(self._limits, 0)
        self._ledgers: dict[TaskGroupKey, _GroupLedger] = {}  # every group that held a lease
        self._held: dict[int, _GroupLedger] = {}  # by id: ledgers with a lease or policy debt
        # id(group key) -> (that key, its ledger): skips hashing keys on the hot path
        self._ledger_of: dict[int, tuple[TaskGroupKey, _GroupLedger]] = {}
        self._active: dict[str, TaskAdmissionLease] = {}
        self._issued = 0
        self._shutdown = False
        self._policy_counters: Counter[str] = Counter()
        self._version = 0
        self._facts = _LiveFacts(self, self._limits_view)
        self._view: TaskAdmissionView | None = None
        # the last positive is_eligible verdict: (item, queue view, ledger version, decision)
        self._memo: tuple[SchedulableTask, QueueView, int, TaskAdmissionPolicyDecision] | None = (
            None
        )
        self._skipping: dict[TaskGroupKey, str] = {}  # groups in a skip episode -> why
        self._skips: list[AdvisorySkip] = []  # episodes not yet drained

    @property
    def controller_generation(self) -> int:
        """Token stamped on every lease of this controller."""
        return self._generation

    @property
    def policy(self) -> TaskAdmissionPolicy:
        """The active policy."""
        return self._policy

    @property
    def active_leases(self) -> int:
        """Leases acquired and not yet released."""
        return len(self._active)

    # -- decisions --------------------------------------------------------------------------

    def is_eligible(self, item: SchedulableTask, queue_view: QueueView) -> Eligibility:
        """Would `try_acquire(item, queue_view)` admit it now? Changes no admission state.

        True or False, or `Refusal(resource, free)` when `item` needs more of `resource` than
        the `free` units left: every candidate needing more than that is refused too until a
        lease is released (the queue skips them without asking).
        """
        if self._shutdown:
            return False
        limits, leased = self._limits, self._leased
        for resource, amount in item.resource_request.amounts.items():
            limit = limits.get(resource)
            if limit is not None:
                free = limit - leased[resource]
                if amount > free:
                    return Refusal(resource, free)
        decision = self._policy.evaluate(item, queue_view, self._facts)
        if decision.allowed:
            self._memo = (item, queue_view, self._version, decision)
        elif decision.advisory is not None:
            self._note_skip(decision.advisory)
        return decision.allowed

    def try_acquire(self, item: SchedulableTask, queue_view: QueueView) -> TaskAdmissionDecision:
        """Lease `item`'s resources, or say why not (no waiting, no queueing here)."""
        memo = self._memo
        if (
            memo is not None
            and memo[0] is item
            and memo[1] is queue_view
            and memo[2] == self._version  # shutdown changes the version too
        ):
            return self._grant(item, memo[3])
        if self._shutdown:
            return self._denied(item, "shutdown")
        if not self._fits(item):
            return self._denied(item, "no_capacity")
        decision = self._policy.evaluate(item, queue_view, self._facts)
        if not decision.allowed:
            if decision.advisory is not None:
                self._note_skip(decision.advisory)
            return self._denied(
                item,
                decision.reason or "policy_denied",
                decision.available_after,
                decision.diagnostics,
            )
        return self._grant(item, decision)

    def _grant(
        self, item: SchedulableTask, decision: TaskAdmissionPolicyDecision
    ) -> TaskAdmissionLease:
        """Book a lease for `item`, admitted under `decision`: ledger, group, policy state."""
        self._issued = issued = self._issued + 1
        amounts = item.resource_request.amounts
        lease_id = f"{self._prefix}{issued}"
        lease = TaskAdmissionLease(lease_id, item, amounts, self._monotonic(), self._generation)
        self._active[lease_id] = lease
        spec = item.group
        key = spec.key
        if self._skipping:
            self._skipping.pop(key, None)  # the group's skip episode ends
        cached = self._ledger_of.get(id(key))  # `_ledger`, inlined for the common case
        ledger = cached[1] if cached is not None and cached[0] is key else self._ledger(key, spec)
        if not ledger.leases:
            self._held[id(ledger)] = ledger
            facts = self._facts
            facts.running_set_token = object()
            facts.running_weight += spec.weight
        ledger.leases += 1
        leased, maxima = self._leased, self._max_leased
        group_leased = ledger.leased
        for resource, amount in amounts.items():
            now = leased.get(resource, 0) + amount
            leased[resource] = now
            if now > maxima.get(resource, 0):
                maxima[resource] = now
            group_leased[resource] = group_leased.get(resource, 0) + amount
        delta = self._policy.on_acquire(lease, decision)
        if delta is not NO_CHANGE:
            self._apply_delta(delta, key, ledger)
        self._version += 1
        self._view = None
        return lease

    def release(self, lease: TaskAdmissionLease) -> ReleaseResult:
        """Return a lease's resources exactly once. Never raises."""
        try:
            return self._release(lease)
        except Exception as exc:  # pragma: no cover - defensive: release must never raise
            return ReleaseResult(False, ReleaseReason.UNKNOWN_LEASE, {"error": repr(exc)})

    def shutdown(self) -> None:
        """Deny every further acquisition (`shutdown`); releases keep working."""
        self._shutdown = True
        self._version += 1
        self._view = None

    def drain_advisory_skips(self) -> tuple[AdvisorySkip, ...]:
        """Advisory skip episodes recorded since the last drain, oldest first (each once)."""
        if not self._skips:
            return ()
        skips = tuple(self._skips)
        self._skips.clear()
        self._policy_counters["advisory_skip_episodes"] += len(skips)
        self._view = None
        return skips

    # -- reads ------------------------------------------------------------------------------

    def view(self) -> TaskAdmissionView:
        """The current consistent snapshot (O(groups holding leases or debt))."""
        return self._view or self._build_view()

    def explain_blocked(self, queue_view: QueueView) -> TaskAdmissionBlockSummary:
        """Why the head task of each queued group cannot be admitted (O(queued groups)).

        Heads blocked on the hard ledger cost one check per distinct request; only heads that
        fit are put to the policy.
        """
        if queue_view.queued_total == 0:
            return TaskAdmissionBlockSummary(0, (), None)
        groups_by_reason: Counter[TaskAdmissionDenialReason] = Counter()
        queued_by_reason: Counter[TaskAdmissionDenialReason] = Counter()
        eligible_groups = 0
        available_after: float | None = None
        fits: dict[int, bool] = {}  # by id of a head's request (the view holds them)
        for _, queued, head in queue_view.heads():
            reason, after = self._denial(head, queue_view, fits)
            if reason is None:
                eligible_groups += 1
                continue
            groups_by_reason[reason] += 1
            queued_by_reason[reason] += queued
            if after is not None and (available_after is None or after < available_after):
                available_after = after
        dominant = tuple(sorted(queued_by_reason, key=lambda r: (-queued_by_reason[r], r)))
        view = self._build_view()
        return TaskAdmissionBlockSummary(
            queue_view.queued_total,
            dominant,
            available_after,
            {
                "blocked_groups_by_reason": dict(groups_by_reason),
                "queued_by_reason": dict(queued_by_reason),
                "eligible_groups": eligible_groups,
                "available": dict(view.available),
                "leased": dict(view.leased),
                "policy": self._policy.name,
            },
        )

    # -- internals --------------------------------------------------------------------------

    def _fits(self, item: SchedulableTask) -> bool:
        limits, leased = self._limits, self._leased
        for resource, amount in item.resource_request.amounts.items():
            limit = limits.get(resource)
            if limit is not None and leased[resource] + amount > limit:
                return False
        return True

    def _denial(
        self, item: SchedulableTask, queue_view: QueueView, fits: dict[int, bool]
    ) -> tuple[TaskAdmissionDenialReason | None, float | None]:
        if self._shutdown:
            return "shutdown", None
        request = id(item.resource_request)
        ok = fits.get(request)
        if ok is None:
            ok = fits[request] = self._fits(item)
        if not ok:
            return "no_capacity", None
        decision = self._policy.evaluate(item, queue_view, self._facts)
        if decision.allowed:
            return None, None
        if decision.advisory is not None:
            self._note_skip(decision.advisory)
        return decision.reason or "policy_denied", decision.available_after

    def _note_skip(self, skip: AdvisorySkip) -> None:
        """Record `skip` if it starts a new skip episode for its group."""
        key = skip.item.group.key
        if self._skipping.get(key) != skip.why:
            self._skipping[key] = skip.why
            if len(self._skips) < _MAX_UNDRAINED_SKIPS:  # nobody drains: stay bounded
                self._skips.append(skip)

    def _denied(
        self,
        item: SchedulableTask,
        reason: TaskAdmissionDenialReason,
        available_after: float | None = None,
        diagnostics: Mapping[str, Any] = _EMPTY,
    ) -> TaskAdmissionDenied:
        return TaskAdmissionDenied(item, reason, available_after, self._build_view(), diagnostics)

    def _release(self, lease: TaskAdmissionLease) -> ReleaseResult:
        if lease.controller_generation != self._generation:
            return ReleaseResult(
                False,
                ReleaseReason.WRONG_GENERATION,
                {
                    "lease_id": lease.lease_id,
                    "lease_generation": lease.controller_generation,
                    "controller_generation": self._generation,
                },
            )
        lease_id = lease.lease_id
        active = self._active.pop(lease_id, None)
        if active is None:
            issued = self._issued_number(lease_id)
            reason = ReleaseReason.DUPLICATE if issued is not None else ReleaseReason.UNKNOWN_LEASE
            return ReleaseResult(False, reason, {"lease_id": lease_id})
        if active is not lease and active != lease:
            self._active[lease_id] = active
            return ReleaseResult(False, ReleaseReason.STALE_LEASE, {"lease_id": lease_id})
        spec = active.item.group
        key = spec.key
        cached = self._ledger_of.get(id(key))  # `_ledger`, inlined for the common case
        ledger = cached[1] if cached is not None and cached[0] is key else self._ledger(key, spec)
        leased, group_leased = self._leased, ledger.leased
        for resource, amount in active.resources.items():
            leased[resource] -= amount
            left = group_leased[resource] - amount
            if left:
                group_leased[resource] = left
            else:
                del group_leased[resource]
        ledger.leases -= 1
        if not ledger.leases:
            facts = self._facts
            facts.running_set_token = object()
            facts.running_weight -= spec.weight
        diagnostics: Mapping[str, Any] = _EMPTY
        try:
            delta = self._policy.on_release(active)
            if delta is not NO_CHANGE:
                self._apply_delta(delta, key, ledger)
        except Exception as exc:
            diagnostics = {"policy_error": repr(exc)}
        if not ledger.leases and not ledger.debt:
            del self._held[id(ledger)]
        self._version += 1
        self._view = None
        return (
            _RELEASED
            if diagnostics is _EMPTY
            else ReleaseResult(True, ReleaseReason.RELEASED, diagnostics)
        )

    def _ledger(self, key: TaskGroupKey, spec: TaskGroupSpec) -> _GroupLedger:
        """`key`'s ledger, created on first use (found by the key object's identity first)."""
        cached = self._ledger_of.get(id(key))
        if cached is not None and cached[0] is key:
            return cached[1]
        ledger = self._ledgers.get(key)
        if ledger is None:
            ledger = self._ledgers[key] = _GroupLedger(spec)
        if len(self._ledger_of) >= _MAX_KEY_CACHE:  # many equal key objects: start afresh
            self._ledger_of.clear()
        self._ledger_of[id(key)] = (key, ledger)  # holds `key`, so its id is not reused
        return ledger

    def _issued_number(self, lease_id: str) -> int | None:
        """The sequence number of a lease id this controller issued, else None."""
        if not lease_id.startswith(self._prefix):
            return None
        tail = lease_id[len(self._prefix) :]
        if not tail.isdigit():
            return None
        number = int(tail)
        return number if 1 <= number <= self._issued else None

    def _apply_delta(
        self, delta: PolicyStateDelta, key: TaskGroupKey, ledger: _GroupLedger
    ) -> None:
        """Apply a policy delta; `ledger` is `key`'s ledger (the lease's own group)."""
        if delta.debt:
            for (group, resource), change in delta.debt.items():
                target = ledger if group is key else self._ledgers.get(group)
                if target is None or id(target) not in self._held:
                    continue  # debt is kept only for groups holding a lease or debt
                debt = target.debt
                before = debt.get(resource, 0)
                if not before and change <= 0:  # repaying nothing: the common release case
                    continue
                now = before + change
                if now > 0:
                    debt[resource] = now
                else:
                    debt.pop(resource, None)
        if delta.counters:
            for name, value in delta.counters.items():
                self._policy_counters[name] += value

    def _build_view(self) -> TaskAdmissionView:
        view = self._view
        if view is not None:
            return view
        limits, leased = self._limits, self._leased
        running: dict[TaskGroupKey, dict[SchedulerResourceKey, int]] = {}
        for lease in self._active.values():  # O(leases): views are for reports, not hot paths
            by_resource = running.setdefault(lease.item.group.key, {})
            for resource in lease.resources:
                by_resource[resource] = by_resource.get(resource, 0) + 1
        groups = {
            ledger.group.key: GroupAdmissionFacts(
                ledger.group,
                ledger.leases,
                MappingProxyType(dict(ledger.leased)),
                MappingProxyType(running.get(ledger.group.key, {})),
                MappingProxyType(dict(ledger.debt)),
            )
            for ledger in self._held.values()
        }
        view = TaskAdmissionView(
            self._version,
            self._generation,
            self._limits_view,
            MappingProxyType({r: limits[r] - leased[r] for r in limits}),
            MappingProxyType({r: n for r, n in leased.items() if n or r in limits}),
            MappingProxyType(groups),
            MappingProxyType(dict(self._max_leased)),
            len(self._active),
            self._shutdown,
            MappingProxyType(dict(self._policy_counters)),
            self._facts.running_set_token,
            self._clock.monotonic(),
        )
        self._view = view
        return view
