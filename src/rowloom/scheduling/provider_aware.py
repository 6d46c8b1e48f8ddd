"""Provider-aware task admission: keep task slots for work whose provider can take it.

A model task keeps its task lease while it waits inside request admission, so without this
policy a cooled-down provider's tasks can hold the submission slots that another provider's
ready work could use. `ProviderAwareTaskAdmissionPolicy` wraps a fairness policy (strict share
or bounded borrow) and reads request pressure read-only, through the `RequestPressureReader`
declared here (scheduling never imports request admission; the builder adapts the request
controller's `RequestPressureSnapshotProvider` to it).

Rules, for a model group (metadata identity `("model", provider, model_id, generation_kind)`,
which names one request resource) while a group that calls another resource, or no resource
(local, custom), has queued work:

- `cooldown`: request admission of its resource is blocked until a deadline: withheld, with
  that deadline as `available_after` (the scheduler wakes then);
- `saturated`: the resource has no request capacity now, at least `headroom` request waiters
  (`ProviderAwarePolicyConfig.headroom`), and tasks of its groups hold leases: withheld;
- `waiting_bound`: the tasks leased to groups calling its resource reached the waiting bound
  (`limit + headroom`, `ProviderAwarePolicyConfig.waiting_bound`): withheld.

Every withholding is temporary: a cooldown has a deadline, and the other two reasons imply
leased tasks of the same resource, whose release wakes the scheduler. Groups whose queued
peers all call the same resource are never withheld (single-group and single-provider work
stay live, as in V1: no other work could use the slots). When the base policy holds a model
group back (share cap, borrow debt) only for peers that are all withheld, the group is admitted
up to its own waiting bound: withheld peers could not use the slots.

The policy never acquires, reserves or releases request permits and keeps no adaptive state:
pressure is read at each dispatch moment, once per resource (memoised on the queue view, the
ledger version and, for a cooldown, its end).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeAlias

from rowloom.scheduling.resources import SUBMISSION, SchedulableTask, TaskGroupKey
from rowloom.scheduling.task_policies import (
    AdvisorySkip,
    PolicyStateDelta,
    ProviderAwarePolicyConfig,
    TaskAdmissionPolicy,
    TaskAdmissionPolicyDecision,
    build_fairness_policy,
)

if TYPE_CHECKING:
    from rowloom.scheduling.admission_view import TaskAdmissionLease
    from rowloom.scheduling.queue import QueueView
    from rowloom.scheduling.task_policies import AdmissionFacts

WithholdReason: TypeAlias = Literal["cooldown", "saturated", "waiting_bound"]
Decision: TypeAlias = TaskAdmissionPolicyDecision

_PEER_HELD: Final = frozenset({"group_cap", "borrow_debt"})
_OVER_WITHHELD: Final = TaskAdmissionPolicyDecision(
    True, diagnostics=MappingProxyType({"admitted_over": "withheld_peers"})
)


@dataclass(frozen=True, slots=True)
class RequestPressure:
    """Request-side pressure of one request resource, as a task policy reads it.

    `limit` is the current adaptive request limit, `available` how many more requests could
    be admitted now, `blocked_until` the monotonic end of a block on every new admission
    (a cooldown), None when admission is not blocked.
    """

    resource: str
    in_flight: int
    limit: int
    waiters: int
    available: int
    blocked_until: float | None = None


class RequestPressureReader(Protocol):
    """Read-only request pressure by task-group metadata identity; reading changes nothing."""

    def pressure(self, identity: tuple[str, ...]) -> RequestPressure | None:
        """Pressure of the request resource a group with `identity` calls; None if unknown."""
        ...


class _Verdict:
    """One resource's reading at one dispatch moment: pressure, leased tasks, reason (internal).

    Valid while the queue view and the ledger version it was taken at are current and, for a
    cooldown, until the cooldown ends; the scheduler re-scans only after such a change (or at
    a deadline), so one reading serves every group of the resource in a scan.
    """

    __slots__ = ("pressure", "queue_view", "skip", "until", "version", "why")

    def __init__(
        self,
        queue_view: QueueView,
        version: int,
        pressure: RequestPressure,
        why: WithholdReason | None,
        skip: Mapping[str, Any] | None,
    ) -> None:
        self.queue_view = queue_view
        self.version = version
        self.pressure = pressure
        self.why = why
        self.until = pressure.blocked_until if why == "cooldown" else None
        self.skip = skip  # the skip diagnostics, when withheld


class ProviderAwareTaskAdmissionPolicy:
    """A base fairness policy plus request-pressure advisories (see the module docstring).

    `evaluate` stays pure with respect to admission state: it reads the pressure reader and
    keeps only memos (which groups call which resource; the last reading per resource and the
    last skip decision per group). Deltas come from the base policy.
    """

    __slots__ = ("_base", "_config", "_members", "_queued", "_reader", "_skips", "_verdicts")

    def __init__(
        self,
        config: ProviderAwarePolicyConfig | None = None,
        reader: RequestPressureReader | None = None,
        base: TaskAdmissionPolicy | None = None,
    ) -> None:
        self._config = config or ProviderAwarePolicyConfig()
        self._reader = reader
        self._base = base if base is not None else build_fairness_policy(self._config.base)
        # groups seen per metadata identity (every leased group was evaluated first)
        self._members: dict[tuple[str, ...], tuple[TaskGroupKey, ...]] = {}
        self._verdicts: dict[tuple[str, ...], _Verdict | None] = {}
        self._skips: dict[TaskGroupKey, tuple[_Verdict, SchedulableTask, Decision]] = {}
        # queued groups per model identity (None: other kinds), memoised per queued-group set
        self._queued: tuple[object, Counter[tuple[str, ...] | None], int] = (None, Counter(), 0)

    @property
    def name(self) -> str:
        return f"provider_aware+{self._base.name}"

    @property
    def base(self) -> TaskAdmissionPolicy:
        """The fairness policy this one wraps."""
        return self._base

    def evaluate(
        self, item: SchedulableTask, queue_view: QueueView, admission_view: AdmissionFacts
    ) -> TaskAdmissionPolicyDecision:
        key = item.group.key
        if (
            self._reader is None
            or key.identity[0] != "model"
            or not item.resource_request.amounts.get(SUBMISSION)
        ):
            return self._base.evaluate(item, queue_view, admission_view)
        members = self._members.get(key.identity, ())
        if key not in members:
            self._members[key.identity] = (*members, key)
        if not self._contested(key.identity, queue_view):
            return self._base.evaluate(item, queue_view, admission_view)  # alone: stays live
        verdict = self._verdict(key.identity, queue_view, admission_view)
        if verdict is None:
            return self._base.evaluate(item, queue_view, admission_view)
        if verdict.why is not None:
            return self._skip(item, verdict)
        decision = self._base.evaluate(item, queue_view, admission_view)
        if (
            decision.allowed
            or decision.reason not in _PEER_HELD
            or not self._peers_all_withheld(key, queue_view, admission_view)
        ):
            return decision
        return _OVER_WITHHELD

    def on_acquire(
        self, lease: TaskAdmissionLease, decision: TaskAdmissionPolicyDecision
    ) -> PolicyStateDelta:
        return self._base.on_acquire(lease, decision)

    def on_release(self, lease: TaskAdmissionLease) -> PolicyStateDelta:
        return self._base.on_release(lease)

    # -- internals --------------------------------------------------------------------------

    def _contested(self, identity: tuple[str, ...], queue_view: QueueView) -> bool:
        """True when a group that does not call this request resource has queued work."""
        token, counts, total = self._queued
        if token is not queue_view.group_set_token:  # O(queued groups), only when the set changes
            counts = Counter(
                f.group.key.identity if f.group.key.kind == "model" else None
                for f in queue_view.groups.values()
                if f.demand_of(SUBMISSION)
            )
            total = sum(counts.values())
            self._queued = (queue_view.group_set_token, counts, total)
        return total > counts.get(identity, 0)

    def _verdict(
        self, identity: tuple[str, ...], queue_view: QueueView, facts: AdmissionFacts
    ) -> _Verdict | None:
        """The resource's current reading (memoised for one dispatch moment); None: no pressure."""
        memo = self._verdicts.get(identity)
        if (
            memo is not None
            and memo.queue_view is queue_view
            and memo.version == facts.version
            and (memo.until is None or facts.now < memo.until)
        ):
            return memo
        assert self._reader is not None
        pressure = self._reader.pressure(identity)
        if pressure is None:
            return None
        why, leased = self._withhold(identity, pressure, facts)
        skip: Mapping[str, Any] | None = None
        if why is not None:
            config = self._config
            skip = MappingProxyType(
                {
                    "request_resource": pressure.resource,
                    "why": why,
                    "in_flight": pressure.in_flight,
                    "limit": pressure.limit,
                    "waiters": pressure.waiters,
                    "available": pressure.available,
                    "leased_tasks": leased,
                    "waiting_bound": config.waiting_bound(pressure.limit),
                }
            )
        verdict = _Verdict(queue_view, facts.version, pressure, why, skip)
        self._verdicts[identity] = verdict
        return verdict

    def _withhold(
        self, identity: tuple[str, ...], pressure: RequestPressure, facts: AdmissionFacts
    ) -> tuple[WithholdReason | None, int]:
        """Why a contested group of this resource is withheld (None: it is not), and the
        tasks leased to the resource's groups."""
        leased = 0
        for member in self._members.get(identity, ()):
            leased += facts.running_count(member)
        if pressure.blocked_until is not None:
            return "cooldown", leased
        config = self._config
        if (
            leased
            and pressure.available == 0
            and pressure.waiters >= config.headroom(pressure.limit)
        ):
            return "saturated", leased  # a leased task of this resource will wake us
        if leased >= config.waiting_bound(pressure.limit):
            return "waiting_bound", leased
        return None, leased

    def _peers_all_withheld(
        self, key: TaskGroupKey, queue_view: QueueView, facts: AdmissionFacts
    ) -> bool:
        """True when every other group with queued `submission` demand would be withheld."""
        for peer in queue_view.groups.values():
            peer_key = peer.group.key
            if peer_key == key or not peer.demand_of(SUBMISSION):
                continue
            if self._reader is None or peer_key.identity[0] != "model":
                return False
            members = self._members.get(peer_key.identity, ())
            if peer_key not in members:
                self._members[peer_key.identity] = (*members, peer_key)
            verdict = self._verdict(peer_key.identity, queue_view, facts)
            if verdict is None or verdict.why is None:
                return False
        return True

    def _skip(self, item: SchedulableTask, verdict: _Verdict) -> TaskAdmissionPolicyDecision:
        cached = self._skips.get(item.group.key)
        if cached is not None and cached[0] is verdict and cached[1] is item:
            return cached[2]
        assert verdict.why is not None and verdict.skip is not None
        decision = TaskAdmissionPolicyDecision(
            False,
            "policy_denied",
            verdict.until,
            diagnostics=verdict.skip,
            advisory=AdvisorySkip(
                item, verdict.pressure.resource, verdict.why, verdict.until, verdict.skip
            ),
        )
        self._skips[item.group.key] = (verdict, item, decision)
        return decision
