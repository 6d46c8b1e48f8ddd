"""What task admission hands out and shows: the lease, and read-only views of its ledger.

These values are read by policies, the scheduler, the capacity plan and reports; they live
apart from `TaskAdmissionController` so that readers (policies among them) need not import
the controller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from rowloom.scheduling.resources import (
    SchedulableTask,
    SchedulerResourceKey,
    TaskGroupKey,
    TaskGroupSpec,
)

_EMPTY: Final[Mapping[Any, Any]] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    return _EMPTY


@dataclass(slots=True)
class TaskAdmissionLease:
    """Permission for one task to run: release it exactly once when the worker ends.

    A plain value (not frozen: one is built per dispatch); treat it as immutable.
    """

    lease_id: str
    item: SchedulableTask
    resources: Mapping[SchedulerResourceKey, int]
    acquired_at: float
    controller_generation: int


@dataclass(frozen=True, slots=True)
class GroupAdmissionFacts:
    """Leased units, running leases and policy debt of one group, by resource."""

    group: TaskGroupSpec
    leases: int
    leased: Mapping[SchedulerResourceKey, int]
    running: Mapping[SchedulerResourceKey, int]
    debt: Mapping[SchedulerResourceKey, int]


@dataclass(frozen=True, slots=True)
class TaskAdmissionView:
    """Consistent read-only snapshot of the ledger and policy state.

    `groups` holds only groups with a lease or policy debt. `running_set_token` is a fresh
    object whenever the set of groups holding leases changes (for memoisation).
    """

    version: int
    controller_generation: int
    limits: Mapping[SchedulerResourceKey, int]
    available: Mapping[SchedulerResourceKey, int]
    leased: Mapping[SchedulerResourceKey, int]
    groups: Mapping[TaskGroupKey, GroupAdmissionFacts]
    observed_max_leased: Mapping[SchedulerResourceKey, int]
    active_leases: int
    shutdown: bool = False
    policy_counters: Mapping[str, int] = field(default_factory=_empty)
    running_set_token: object = field(default_factory=object, compare=False, repr=False)
    captured_at: float = 0.0

    @property
    def now(self) -> float:
        """When this snapshot was taken (monotonic, the controller's clock)."""
        return self.captured_at

    def leased_by_group(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        """Units of `resource` leased by `group`."""
        facts = self.groups.get(group)
        return 0 if facts is None else facts.leased.get(resource, 0)

    def running_count(self, group: TaskGroupKey) -> int:
        """Leases held by `group` (its running tasks)."""
        facts = self.groups.get(group)
        return 0 if facts is None else facts.leases

    def debt(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        """Policy debt of `group` on `resource`."""
        facts = self.groups.get(group)
        return 0 if facts is None else facts.debt.get(resource, 0)

    def running_groups(self) -> Iterable[TaskGroupSpec]:
        """Groups holding at least one lease."""
        return [facts.group for facts in self.groups.values() if facts.leases]

    @property
    def running_weight(self) -> int:
        """Sum of the weights of groups holding at least one lease."""
        return sum(facts.group.weight for facts in self.groups.values() if facts.leases)

    @property
    def leased_by_group_and_resource(
        self,
    ) -> Mapping[TaskGroupKey, Mapping[SchedulerResourceKey, int]]:
        """Leased units per group and resource."""
        return {key: facts.leased for key, facts in self.groups.items() if facts.leases}

    @property
    def running_by_group_and_resource(
        self,
    ) -> Mapping[TaskGroupKey, Mapping[SchedulerResourceKey, int]]:
        """Running leases per group and resource."""
        return {key: facts.running for key, facts in self.groups.items() if facts.leases}

    @property
    def policy_debt_by_group_and_resource(
        self,
    ) -> Mapping[TaskGroupKey, Mapping[SchedulerResourceKey, int]]:
        """Policy debt per group and resource (groups without debt left out)."""
        return {key: facts.debt for key, facts in self.groups.items() if facts.debt}

    def as_json(self) -> dict[str, Any]:
        """This snapshot as a JSON object."""
        return {
            "version": self.version,
            "captured_at": self.captured_at,
            "controller_generation": self.controller_generation,
            "limits": dict(self.limits),
            "available": dict(self.available),
            "leased": dict(self.leased),
            "active_leases": self.active_leases,
            "shutdown": self.shutdown,
            "observed_max_leased": dict(self.observed_max_leased),
            "leased_by_group": {
                k.as_key_str(): dict(v) for k, v in self.leased_by_group_and_resource.items()
            },
            "policy_debt_by_group": {
                k.as_key_str(): dict(v) for k, v in self.policy_debt_by_group_and_resource.items()
            },
            "policy_counters": dict(self.policy_counters),
        }
