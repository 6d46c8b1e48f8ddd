"""`QueueView`: immutable raw facts about queued work, built without scanning the queue.

A view holds, at one `sequence_version`: the queued total, queued demand by resource, how many
groups have demand for each resource, the queued weight, and per group a `GroupQueueFacts`
(count, demand, first candidate). No eligibility, no running counts.

Building a view on every queue change must not cost O(groups): per-group facts are kept in
fixed-size chunks (tuples of `CHUNK_SIZE` entries, indexed by group slot). A change replaces
only the chunks of the groups that changed and shares the others with earlier views, so a
view taken earlier never sees later changes (copy-on-write). `QueueShape` holds what changes
only when the set of queued groups changes (slot map, groups by resource, weights).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from rowloom.scheduling.resources import (
    SchedulableTask,
    SchedulerResourceKey,
    SchedulerResourceRequest,
    TaskGroupKey,
    TaskGroupSpec,
)

CHUNK_BITS: Final = 4
CHUNK_SIZE: Final = 1 << CHUNK_BITS
CHUNK_MASK: Final = CHUNK_SIZE - 1


class GroupQueueFacts:
    """Raw queued facts of one group: count, resource demand, and its first candidate.

    `demand` None means every queued task makes the head's request (count x its amounts).
    A value: built once, never changed.
    """

    __slots__ = ("_demand", "group", "head", "queued")

    def __init__(
        self,
        group: TaskGroupSpec,
        queued: int,
        demand: Mapping[SchedulerResourceKey, int] | None,
        head: SchedulableTask,
    ) -> None:
        self.group = group
        self.queued = queued
        self._demand = demand
        self.head = head

    @property
    def demand(self) -> Mapping[SchedulerResourceKey, int]:
        """Queued units per resource of this group."""
        if self._demand is None:
            amounts = self.head.resource_request.amounts
            return MappingProxyType({r: self.queued * a for r, a in amounts.items()})
        return MappingProxyType(self._demand)

    def demand_of(self, resource: SchedulerResourceKey) -> int:
        """Queued units of `resource` of this group (O(1))."""
        if self._demand is None:
            return self.queued * self.head.resource_request.amounts.get(resource, 0)
        return self._demand.get(resource, 0)

    @property
    def first_request(self) -> SchedulerResourceRequest:
        """The resource request of the group's next task."""
        return self.head.resource_request

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupQueueFacts):
            return NotImplemented
        return (self.group, self.queued, self.head, dict(self.demand)) == (
            other.group,
            other.queued,
            other.head,
            dict(other.demand),
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"GroupQueueFacts(group={self.group!r}, queued={self.queued}, "
            f"demand={dict(self.demand)!r}, head={self.head.task_id!r})"
        )


Chunk: TypeAlias = tuple[GroupQueueFacts | None, ...]
"""`CHUNK_SIZE` entries by slot (None: the group has nothing queued); never mutated."""

EMPTY_CHUNK: Final[Chunk] = (None,) * CHUNK_SIZE


@dataclass(frozen=True, slots=True)
class QueueShape:
    """The part of a view that changes only when the set of queued groups changes."""

    slot_of: Mapping[TaskGroupKey, int]
    groups_by_resource: Mapping[SchedulerResourceKey, int]
    weight_total: int
    group_count: int


def with_entries(
    chunks: Sequence[Chunk], entries: Iterable[tuple[int, GroupQueueFacts | None]]
) -> list[Chunk]:
    """`chunks` with the given `(slot, entry)` replaced; untouched chunks are shared."""
    out = list(chunks)
    edited: dict[int, list[GroupQueueFacts | None]] = {}
    for slot, entry in entries:
        index = slot >> CHUNK_BITS
        edit = edited.get(index)
        if edit is None:
            edit = edited[index] = list(out[index])
        edit[slot & CHUNK_MASK] = entry
    for index, edit in edited.items():
        out[index] = tuple(edit)
    return out


class QueueView:
    """Immutable raw facts about queued work at one `sequence_version`. No eligibility.

    Per-group facts are read in O(1) through `is_queued`, `queued_count`, `demand`,
    `first_request`, `has_queued_peer`; `groups` and the `*_by_group` properties materialise
    them in O(groups). `group_set_token` is a new object whenever the set of queued groups
    changes, so consumers can memoise what depends only on that set.
    """

    __slots__ = ("_chunks", "_demand", "_shape", "queued_total", "sequence_version")

    def __init__(
        self,
        sequence_version: int,
        queued_total: int,
        demand: Mapping[SchedulerResourceKey, int],
        chunks: Sequence[Chunk],
        shape: QueueShape,
    ) -> None:
        self.sequence_version = sequence_version
        self.queued_total = queued_total
        self._demand = demand
        self._chunks = chunks
        self._shape = shape

    @classmethod
    def from_groups(cls, facts: Iterable[GroupQueueFacts], sequence_version: int = 0) -> QueueView:
        """A view over explicit facts (tests, tools). Groups with `queued == 0` are left out."""
        by_key = {f.group.key: f for f in facts if f.queued > 0}
        demand: dict[SchedulerResourceKey, int] = {}
        groups_by_resource: dict[SchedulerResourceKey, int] = {}
        for f in by_key.values():
            for resource, amount in f.demand.items():
                if amount > 0:
                    demand[resource] = demand.get(resource, 0) + amount
                    groups_by_resource[resource] = groups_by_resource.get(resource, 0) + 1
        slots = {key: slot for slot, key in enumerate(by_key)}
        chunks = [EMPTY_CHUNK] * -(-len(slots) // CHUNK_SIZE)
        chunks = with_entries(chunks, ((slots[k], f) for k, f in by_key.items()))
        shape = QueueShape(
            slots,
            MappingProxyType(groups_by_resource),
            sum(f.group.weight for f in by_key.values()),
            len(by_key),
        )
        total = sum(f.queued for f in by_key.values())
        return cls(sequence_version, total, demand, chunks, shape)

    def __eq__(self, other: object) -> bool:
        """Same version and the same queued facts (the internal layout does not matter)."""
        if not isinstance(other, QueueView):
            return NotImplemented
        return (
            self.sequence_version == other.sequence_version
            and self.queued_total == other.queued_total
            and dict(self._demand) == dict(other._demand)
            and dict(self.groups) == dict(other.groups)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"QueueView(sequence_version={self.sequence_version}, "
            f"queued_total={self.queued_total}, groups={self.queued_group_count})"
        )

    @property
    def queued_weight_total(self) -> int:
        """Sum of the weights of groups with queued work."""
        return self._shape.weight_total

    @property
    def queued_group_count(self) -> int:
        """How many groups have queued work."""
        return self._shape.group_count

    @property
    def queued_demand_by_resource(self) -> Mapping[SchedulerResourceKey, int]:
        """Queued units per resource, over all groups."""
        return MappingProxyType(self._demand)

    @property
    def queued_groups_by_resource(self) -> Mapping[SchedulerResourceKey, int]:
        """How many groups have queued demand for each resource."""
        return self._shape.groups_by_resource

    @property
    def group_set_token(self) -> object:
        """Identity changes whenever the set of queued groups changes."""
        return self._shape

    def facts(self, group: TaskGroupKey) -> GroupQueueFacts | None:
        """`group`'s queued facts, None when it has nothing queued (O(1))."""
        slot = self._shape.slot_of.get(group)
        return None if slot is None else self._chunks[slot >> CHUNK_BITS][slot & CHUNK_MASK]

    def is_queued(self, group: TaskGroupKey) -> bool:
        """True when `group` has at least one queued task."""
        return self.facts(group) is not None

    def queued_count(self, group: TaskGroupKey) -> int:
        """Queued tasks of `group`."""
        facts = self.facts(group)
        return 0 if facts is None else facts.queued

    def demand(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        """Queued units of `resource` requested by `group`."""
        facts = self.facts(group)
        return 0 if facts is None else facts.demand_of(resource)

    def first_request(self, group: TaskGroupKey) -> SchedulerResourceRequest | None:
        """The resource request of `group`'s first candidate, if it has queued work."""
        facts = self.facts(group)
        return None if facts is None else facts.head.resource_request

    def peer_demand(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        """Queued units of `resource` requested by every group except `group`."""
        return self._demand.get(resource, 0) - self.demand(group, resource)

    def has_queued_peer(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> bool:
        """True when another group has queued demand for `resource`."""
        others = self._shape.groups_by_resource.get(resource, 0)
        if others == 1:
            return not self.demand(group, resource)
        return others > 1

    def peer_demand_by_resource(self, group: TaskGroupKey) -> Mapping[SchedulerResourceKey, int]:
        """Queued peer demand by resource, from `group`'s point of view."""
        return {r: self.peer_demand(group, r) for r in self._demand}

    def _entries(self) -> Iterator[GroupQueueFacts]:
        """Every queued group's facts, in first-enqueue order (O(groups))."""
        chunks = self._chunks
        for slot in self._shape.slot_of.values():
            facts = chunks[slot >> CHUNK_BITS][slot & CHUNK_MASK]
            if facts is not None:
                yield facts

    @property
    def groups(self) -> Mapping[TaskGroupKey, GroupQueueFacts]:
        """Queued groups and their facts, in first-enqueue order (materialised; O(groups))."""
        return MappingProxyType({f.group.key: f for f in self._entries()})

    def heads(self) -> Iterator[tuple[TaskGroupSpec, int, SchedulableTask]]:
        """(group, queued count, first candidate) of every queued group (O(groups))."""
        for facts in self._entries():
            yield facts.group, facts.queued, facts.head

    @property
    def queued_by_group(self) -> Mapping[TaskGroupKey, int]:
        """Queued task count per group (materialised; O(groups))."""
        return {f.group.key: f.queued for f in self._entries()}

    @property
    def queued_demand_by_group(self) -> Mapping[TaskGroupKey, Mapping[SchedulerResourceKey, int]]:
        """Queued demand per group and resource (materialised; O(groups))."""
        return {f.group.key: f.demand for f in self._entries()}

    @property
    def first_request_by_group(self) -> Mapping[TaskGroupKey, SchedulerResourceRequest]:
        """First candidate's request per group (materialised; O(groups))."""
        return {f.group.key: f.head.resource_request for f in self._entries()}

    def as_json(self) -> dict[str, Any]:
        """This view as a JSON object (O(groups); for events, reports and comparisons)."""
        return {
            "sequence_version": self.sequence_version,
            "queued_total": self.queued_total,
            "queued_weight_total": self.queued_weight_total,
            "queued_demand_by_resource": dict(self._demand),
            "queued_groups_by_resource": dict(self.queued_groups_by_resource),
            "groups": {
                f.group.key.as_key_str(): {
                    "queued": f.queued,
                    "demand": dict(f.demand),
                    "head": f.head.task_id,
                    "weight": f.group.weight,
                }
                for f in self._entries()
            },
        }


EMPTY_QUEUE_VIEW: Final = QueueView.from_groups(())
