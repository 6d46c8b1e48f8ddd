"""Task admission policies: may this group take another scheduler slot now?

A policy only decides. `evaluate` is pure (it may be called many times per queue scan);
`on_acquire` / `on_release` return `PolicyStateDelta`s that `TaskAdmissionController` applies
in the same transaction as its hard ledger change. Policy state (borrow debt) affects
eligibility only, never resource availability.

Strict share: a group's cap on `submission` is its weighted share of the submission limit
among groups with queued or running work, `ceil(limit * weight / active_weight)` (or floor),
at least 1. With no competing group the share is the whole limit (work conserving), and a
group holding nothing is always within its share (single-group work stays live).

Provider-aware admission (`rowloom.scheduling.provider_aware`) composes with either policy
(`rowloom.scheduling.policy_factory.build_policy` builds the policy for a config): it
reads request pressure through a read-only `RequestPressureReader` passed in, withholds model
groups whose request resource is cooling down or saturated while other groups have queued work,
and marks those denials with an `AdvisorySkip` the controller records for the scheduler's
`request_pressure_advisory_skipped` events.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeAlias

from rowloom.scheduling.resources import SUBMISSION, SchedulableTask, SchedulerResourceKey

if TYPE_CHECKING:
    from rowloom.scheduling.admission_view import TaskAdmissionLease
    from rowloom.scheduling.queue import QueueView
    from rowloom.scheduling.resources import TaskGroupKey, TaskGroupSpec

TaskAdmissionDenialReason: TypeAlias = Literal[
    "no_capacity", "group_cap", "borrow_debt", "shutdown", "policy_denied"
]
ShareRounding: TypeAlias = Literal["ceil", "floor"]

_EMPTY: Final[Mapping[Any, Any]] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    return _EMPTY


@dataclass(frozen=True, slots=True)
class AdvisorySkip:
    """A candidate held back by an advisory signal from outside the task ledger.

    `resource` names the signal's source (a request resource as `provider/model/domain`);
    `why` says what it showed (`cooldown`, `saturated`, `waiting_bound`); `available_after` is
    a monotonic deadline when the signal has one.
    """

    item: SchedulableTask
    resource: str
    why: str
    available_after: float | None = None
    diagnostics: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class TaskAdmissionPolicyDecision:
    """A policy's verdict on one candidate.

    `borrowed` is the number of units above the strict share this admission would add (the
    policy turns it into debt in `on_acquire`). `advisory` is set on a denial that comes from
    an advisory signal (request pressure) rather than from task-stage capacity or fairness.
    """

    allowed: bool
    reason: TaskAdmissionDenialReason | None = None
    available_after: float | None = None
    borrowed: Mapping[SchedulerResourceKey, int] = field(default_factory=_empty)
    diagnostics: Mapping[str, Any] = field(default_factory=_empty)
    advisory: AdvisorySkip | None = None


ALLOWED: Final = TaskAdmissionPolicyDecision(True)


@dataclass(frozen=True, slots=True)
class PolicyStateDelta:
    """Policy-owned state changes for the controller to apply atomically.

    `debt` holds signed changes per (group, resource); the controller clamps debt at zero.
    `counters` are diagnostic counters added to the controller's policy counters.
    """

    debt: Mapping[tuple[TaskGroupKey, SchedulerResourceKey], int] = field(default_factory=_empty)
    counters: Mapping[str, int] = field(default_factory=_empty)

    @property
    def is_empty(self) -> bool:
        """True when applying this delta changes nothing."""
        return not self.debt and not self.counters


NO_CHANGE: Final = PolicyStateDelta()


class AdmissionFacts(Protocol):
    """What a policy may read about task admission: limits, leases and debt, read-only.

    `TaskAdmissionView` implements it; the controller may instead pass a live read-only
    reader that is valid only for the duration of one `evaluate` call (do not keep it).
    `running_set_token` is a fresh object whenever the set of groups holding leases changes.
    """

    @property
    def limits(self) -> Mapping[SchedulerResourceKey, int]: ...

    @property
    def running_set_token(self) -> object: ...

    @property
    def running_weight(self) -> int:
        """Sum of the weights of groups holding at least one lease."""
        ...

    @property
    def now(self) -> float:
        """Monotonic time from the controller's clock (for `available_after` deadlines)."""
        ...

    @property
    def version(self) -> int:
        """Changes with every ledger or policy-state change (for memoisation)."""
        ...

    def leased_by_group(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int: ...

    def running_count(self, group: TaskGroupKey) -> int: ...

    def debt(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int: ...

    def running_groups(self) -> Iterable[TaskGroupSpec]: ...


class TaskAdmissionPolicy(Protocol):
    """The decision rule of task admission."""

    @property
    def name(self) -> str:
        """A short stable name for diagnostics and the capacity plan."""
        ...

    def evaluate(
        self, item: SchedulableTask, queue_view: QueueView, admission_view: AdmissionFacts
    ) -> TaskAdmissionPolicyDecision:
        """Pure: may `item` take its resources now, given queued and leased facts?"""
        ...

    def on_acquire(
        self, lease: TaskAdmissionLease, decision: TaskAdmissionPolicyDecision
    ) -> PolicyStateDelta:
        """State change caused by an admission made under `decision`."""
        ...

    def on_release(self, lease: TaskAdmissionLease) -> PolicyStateDelta:
        """State change caused by a lease's release (a completion in its group)."""
        ...


@dataclass(frozen=True, slots=True)
class StrictFairPolicyConfig:
    """Per-group cap by weighted share of the submission limit."""

    rounding: ShareRounding = "ceil"


@dataclass(frozen=True, slots=True)
class BoundedBorrowPolicyConfig:
    """Strict share plus bounded borrowing while no peer is queued.

    The borrow ceiling (units above strict share a group may owe) is `borrow_ceiling` when
    set, else `max(1, floor(limit * borrow_ceiling_fraction))`.
    """

    rounding: ShareRounding = "ceil"
    borrow_ceiling: int | None = None
    borrow_ceiling_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.borrow_ceiling is not None and self.borrow_ceiling < 0:
            raise ValueError("borrow_ceiling must be >= 0")
        if not 0.0 <= self.borrow_ceiling_fraction <= 1.0:
            raise ValueError("borrow_ceiling_fraction must be within [0, 1]")

    def ceiling(self, limit: int) -> int:
        """The borrow ceiling for a resource with `limit` units."""
        if self.borrow_ceiling is not None:
            return self.borrow_ceiling
        return max(1, int(limit * self.borrow_ceiling_fraction))


@dataclass(frozen=True, slots=True)
class ProviderAwarePolicyConfig:
    """Provider-aware admission on top of a `base` fairness policy.

    While another group has queued work, a model group is withheld when its request resource
    is cooling down (admission blocked), when it has no request capacity and at least
    `headroom(limit)` request waiters, or when the tasks leased to groups calling that resource
    reach `waiting_bound(limit) = limit + max(min_headroom, ceil(limit * headroom_fraction))`
    (`limit`: the resource's current adaptive request limit).
    """

    base: StrictFairPolicyConfig | BoundedBorrowPolicyConfig = field(
        default_factory=BoundedBorrowPolicyConfig
    )
    headroom_fraction: float = 0.5
    min_headroom: int = 2

    def __post_init__(self) -> None:
        if self.headroom_fraction < 0:
            raise ValueError("headroom_fraction must be >= 0")
        if self.min_headroom < 1:
            raise ValueError("min_headroom must be >= 1")

    def headroom(self, limit: int) -> int:
        """Tasks beyond the request limit that may wait for one resource (>= `min_headroom`)."""
        return max(self.min_headroom, math.ceil(max(1, limit) * self.headroom_fraction))

    def waiting_bound(self, limit: int) -> int:
        """How many tasks may hold slots for one request resource whose limit is `limit`."""
        return max(1, limit) + self.headroom(limit)


TaskAdmissionPolicyConfig: TypeAlias = (
    StrictFairPolicyConfig | BoundedBorrowPolicyConfig | ProviderAwarePolicyConfig
)


def build_fairness_policy(
    config: StrictFairPolicyConfig | BoundedBorrowPolicyConfig,
) -> StrictFairTaskAdmissionPolicy | BoundedBorrowTaskAdmissionPolicy:
    """The fairness policy (strict share or bounded borrow) for its config."""
    if isinstance(config, BoundedBorrowPolicyConfig):
        return BoundedBorrowTaskAdmissionPolicy(config)
    return StrictFairTaskAdmissionPolicy(config)


class _ActiveWeight:
    """Memo of the weight of groups running but not queued (a pure cache, not policy state).

    Keyed by the identities of the queue's group-set token and the admission facts'
    running-set token, so it is recomputed (O(running groups)) only when either set changes.
    Stored as one tuple so a racing reader never pairs one key with another's value.
    """

    __slots__ = ("_entry",)

    def __init__(self) -> None:
        self._entry: tuple[object, object, int] = (None, None, 0)

    def running_not_queued(self, queue_view: QueueView, admission_view: AdmissionFacts) -> int:
        queued_token, running_token, value = self._entry
        if (
            queued_token is queue_view.group_set_token
            and running_token is admission_view.running_set_token
        ):
            return value
        value = sum(
            group.weight
            for group in admission_view.running_groups()
            if not queue_view.is_queued(group.key)
        )
        self._entry = (queue_view.group_set_token, admission_view.running_set_token, value)
        return value


def strict_share(
    group: TaskGroupSpec,
    limit: int,
    queued_weight: int,
    running_not_queued_weight: int,
    counted: bool,
    rounding: ShareRounding,
) -> int:
    """A group's strict share of `limit`: its weighted part among active groups, >= 1.

    `counted` says whether the group itself is already among the active weights.
    """
    active = queued_weight + running_not_queued_weight + (0 if counted else group.weight)
    numerator = limit * group.weight
    share = -(-numerator // active) if rounding == "ceil" else numerator // active
    return max(1, min(limit, share))


class _SharePolicy:
    """Shared plumbing: strict share of `submission` for a candidate (internal)."""

    __slots__ = ("_memo", "_repay", "_rounding")

    def __init__(self, rounding: ShareRounding) -> None:
        self._rounding: ShareRounding = rounding
        self._memo = _ActiveWeight()
        self._repay: dict[TaskGroupKey, tuple[int, PolicyStateDelta]] = {}

    def _share(self, item: SchedulableTask, limit: int, qv: QueueView, av: AdmissionFacts) -> int:
        """The candidate group's exact strict share of `limit`."""
        key = item.group.key
        counted = qv.is_queued(key) or av.running_count(key) > 0
        return strict_share(
            item.group,
            limit,
            qv.queued_weight_total,
            self._memo.running_not_queued(qv, av),
            counted,
            self._rounding,
        )


class StrictFairTaskAdmissionPolicy(_SharePolicy):
    """Admit a group only while it holds less than its strict share of `submission`."""

    __slots__ = ()

    def __init__(self, config: StrictFairPolicyConfig | None = None) -> None:
        super().__init__((config or StrictFairPolicyConfig()).rounding)

    @property
    def name(self) -> str:
        return "strict_fair"

    def evaluate(
        self, item: SchedulableTask, queue_view: QueueView, admission_view: AdmissionFacts
    ) -> TaskAdmissionPolicyDecision:
        amount = item.resource_request.amounts.get(SUBMISSION, 0)
        limit = admission_view.limits.get(SUBMISSION)
        if not amount or limit is None:
            return ALLOWED
        leased = admission_view.leased_by_group(item.group.key, SUBMISSION)
        weight = item.group.weight
        # O(1) sufficient test: fits even if every running group also competes
        upper = queue_view.queued_weight_total + admission_view.running_weight + weight
        if leased + amount <= max(1, limit * weight // upper):
            return ALLOWED
        cap = self._share(item, limit, queue_view, admission_view)
        if leased + amount <= cap:
            return ALLOWED
        return TaskAdmissionPolicyDecision(
            False, "group_cap", diagnostics={"strict_share": cap, "leased": leased}
        )

    def on_acquire(
        self, lease: TaskAdmissionLease, decision: TaskAdmissionPolicyDecision
    ) -> PolicyStateDelta:
        return NO_CHANGE

    def on_release(self, lease: TaskAdmissionLease) -> PolicyStateDelta:
        return NO_CHANGE


class BoundedBorrowTaskAdmissionPolicy(_SharePolicy):
    """Strict share, plus borrowing above it up to a ceiling while no peer is queued.

    - Within its strict share a group is admitted, unless it owes debt and a peer has queued
      demand for `submission` (`borrow_debt`: the indebted group is withheld).
    - Above its share: denied while a peer is queued (`group_cap`); otherwise admitted while
      its debt stays within the ceiling (`borrow_debt` once the ceiling is reached).
    - Every release in the group repays debt by the released units.
    """

    __slots__ = ("_config",)

    def __init__(self, config: BoundedBorrowPolicyConfig | None = None) -> None:
        self._config = config or BoundedBorrowPolicyConfig()
        super().__init__(self._config.rounding)

    @property
    def name(self) -> str:
        return "bounded_borrow"

    def evaluate(
        self, item: SchedulableTask, queue_view: QueueView, admission_view: AdmissionFacts
    ) -> TaskAdmissionPolicyDecision:
        amount = item.resource_request.amounts.get(SUBMISSION, 0)
        limit = admission_view.limits.get(SUBMISSION)
        if not amount or limit is None:
            return ALLOWED
        key = item.group.key
        debt = admission_view.debt(key, SUBMISSION)
        peer_queued = queue_view.has_queued_peer(key, SUBMISSION)
        if debt and peer_queued:
            return TaskAdmissionPolicyDecision(False, "borrow_debt", diagnostics={"debt": debt})
        leased = admission_view.leased_by_group(key, SUBMISSION)
        weight = item.group.weight
        # O(1) sufficient test: fits even if every running group also competes
        upper = queue_view.queued_weight_total + admission_view.running_weight + weight
        if leased + amount <= max(1, limit * weight // upper):
            return ALLOWED
        cap = self._share(item, limit, queue_view, admission_view)
        if leased + amount <= cap:
            return ALLOWED
        if peer_queued:
            return TaskAdmissionPolicyDecision(
                False, "group_cap", diagnostics={"strict_share": cap, "leased": leased}
            )
        borrow = leased + amount - max(cap, leased)
        ceiling = self._config.ceiling(limit)
        if debt + borrow > ceiling:
            return TaskAdmissionPolicyDecision(
                False,
                "borrow_debt",
                diagnostics={"debt": debt, "ceiling": ceiling, "strict_share": cap},
            )
        return TaskAdmissionPolicyDecision(True, borrowed={SUBMISSION: borrow})

    def on_acquire(
        self, lease: TaskAdmissionLease, decision: TaskAdmissionPolicyDecision
    ) -> PolicyStateDelta:
        if not decision.borrowed:
            return NO_CHANGE
        key = lease.item.group.key
        return PolicyStateDelta(
            debt={(key, resource): units for resource, units in decision.borrowed.items()},
            counters={"borrowed_admissions": 1},
        )

    def on_release(self, lease: TaskAdmissionLease) -> PolicyStateDelta:
        amount = lease.resources.get(SUBMISSION, 0)
        if not amount:
            return NO_CHANGE
        key = lease.item.group.key
        cached = self._repay.get(key)  # deltas are immutable values: share one per group
        if cached is not None and cached[0] == amount:
            return cached[1]
        delta = PolicyStateDelta(debt={(key, SUBMISSION): -amount})
        self._repay[key] = (amount, delta)
        return delta
