"""Provider-aware task admission: keep task slots for work whose provider can take it.

A model task keeps its task lease while it waits inside request admission, so without this
policy a cooled-down provider's tasks can hold the submission slots that another provider's
ready work could use. `ProviderAwareTaskAdmissionPolicy` wraps a fairness policy (strict share
or bounded borrow) and reads request pressure read-only, through the `RequestPressureReader`
declared here (scheduling never imports request admission; the builder adapts the request
controller's `RequestPressureSnapshotProvider` to it).

Rules, for a model group (metadata identity `("model", provider, model_id, generation_kind)`)
while another group has queued `submission` demand:

- `cooldown`: request admission of its resource is blocked until a deadline: withheld, with
  that deadline as `available_after` (the scheduler wakes then);
- `saturated`: the resource has no request capacity now, at least `headroom` request waiters
  (`ProviderAwarePolicyConfig.headroom`), and tasks of its groups hold leases: withheld;
- `waiting_bound`: the tasks leased to groups calling its resource reached the waiting bound
  (`limit + headroom`, `ProviderAwarePolicyConfig.waiting_bound`): withheld.

Every withholding is temporary: a cooldown has a deadline, and the other two reasons imply
leased tasks of the same resource, whose release wakes the scheduler. A group with no queued
peer is never withheld (single-group work stays live). When the base policy holds a model group
back only for peers that are all withheld, the group is admitted up to its own waiting bound
(withheld peers could not use the slots). The policy never acquires, reserves or releases
request permits and keeps no adaptive state: pressure is read at each decision.
"""

from __future__ import annotations

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
    build_policy,
)

if TYPE_CHECKING:
    from rowloom.scheduling.queue import QueueView
    from rowloom.scheduling.task_admission import TaskAdmissionLease
    from rowloom.scheduling.task_policies import AdmissionFacts

WithholdReason: TypeAlias = Literal["cooldown", "saturated", "waiting_bound"]

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


class ProviderAwareTaskAdmissionPolicy:
    """A base fairness policy plus request-pressure advisories (see the module docstring).

    `evaluate` stays pure with respect to admission state: it reads the pressure reader and
    keeps only a memo of which groups call which resource. Deltas come from the base policy.
    """

    __slots__ = ("_base", "_config", "_members", "_reader")

    def __init__(
        self,
        config: ProviderAwarePolicyConfig | None = None,
        reader: RequestPressureReader | None = None,
        base: TaskAdmissionPolicy | None = None,
    ) -> None:
        self._config = config or ProviderAwarePolicyConfig()
        self._reader = reader
        self._base = base if base is not None else build_policy(self._config.base)
        # groups seen per metadata identity (a pure memo; every leased group was evaluated)
        self._members: dict[tuple[str, ...], tuple[TaskGroupKey, ...]] = {}

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
        pressure = self._pressure(key)
        if pressure is None or not item.resource_request.amounts.get(SUBMISSION):
            return self._base.evaluate(item, queue_view, admission_view)
        contested = queue_view.has_queued_peer(key, SUBMISSION)
        if contested:
            why = self._withhold(key, pressure, admission_view)
            if why is not None:
                return self._skip(item, pressure, why, admission_view)
        decision = self._base.evaluate(item, queue_view, admission_view)
        if (
            decision.allowed
            or not contested
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

    def _pressure(self, key: TaskGroupKey) -> RequestPressure | None:
        if self._reader is None or key.identity[0] != "model":
            return None
        members = self._members.get(key.identity, ())
        if key not in members:
            self._members[key.identity] = (*members, key)
        return self._reader.pressure(key.identity)

    def _leased_tasks(self, identity: tuple[str, ...], facts: AdmissionFacts) -> int:
        """Tasks holding leases in groups that call the same request resource."""
        return sum(facts.running_count(member) for member in self._members.get(identity, ()))

    def _withhold(
        self, key: TaskGroupKey, pressure: RequestPressure, facts: AdmissionFacts
    ) -> WithholdReason | None:
        if pressure.blocked_until is not None:
            return "cooldown"
        config = self._config
        saturated = pressure.available == 0 and pressure.waiters >= config.headroom(pressure.limit)
        leased = self._leased_tasks(key.identity, facts)
        if saturated and leased:  # a leased task of this resource will release and wake us
            return "saturated"
        if leased >= config.waiting_bound(pressure.limit):
            return "waiting_bound"
        return None

    def _peers_all_withheld(
        self, key: TaskGroupKey, queue_view: QueueView, facts: AdmissionFacts
    ) -> bool:
        """True when every other group with queued `submission` demand would be withheld."""
        for peer in queue_view.groups.values():
            peer_key = peer.group.key
            if peer_key == key or not peer.demand.get(SUBMISSION):
                continue
            pressure = self._pressure(peer_key)
            if pressure is None or self._withhold(peer_key, pressure, facts) is None:
                return False
        return True

    def _skip(
        self,
        item: SchedulableTask,
        pressure: RequestPressure,
        why: WithholdReason,
        facts: AdmissionFacts,
    ) -> TaskAdmissionPolicyDecision:
        after = pressure.blocked_until if why == "cooldown" else None
        diagnostics: Mapping[str, Any] = MappingProxyType(
            {
                "request_resource": pressure.resource,
                "why": why,
                "in_flight": pressure.in_flight,
                "limit": pressure.limit,
                "waiters": pressure.waiters,
                "available": pressure.available,
                "leased_tasks": self._leased_tasks(item.group.key.identity, facts),
                "waiting_bound": self._config.waiting_bound(pressure.limit),
            }
        )
        return TaskAdmissionPolicyDecision(
            False,
            "policy_denied",
            after,
            diagnostics=diagnostics,
            advisory=AdvisorySkip(item, pressure.resource, why, after, diagnostics),
        )
