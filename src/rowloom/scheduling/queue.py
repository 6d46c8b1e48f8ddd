"""Ready-task ordering: `FairTaskQueue` picks which ready task is next, fairly across groups.

Ordering is weighted fair queuing over groups with unit-cost tasks (WF2Q+): each backlogged
group has a virtual start tag S and finish tag F = S + 1/weight for its head task. The system
virtual time V advances by 1/(sum of backlogged weights) per committed task. A group is
*on time* when S <= V; the next task comes from the on-time group with the smallest F (ties:
oldest head task first), then, only if no on-time group is eligible, from the other groups by
smallest S (work conserving). Inside a group tasks are FIFO. With equal weights this is round
robin; with all groups continuously backlogged each group's count after any prefix stays
within one task of its weighted share.

Contract:

- `enqueue(items)` is idempotent by `task_id`; it returns only the newly accepted ids.
- `select_next(is_eligible)` is pure: it removes nothing and changes no virtual time. It visits
  each group at most once, in fair order, calling `is_eligible(head, view)` only while no
  internal lock is held.
- `commit(selection)` is the only removal; it returns None when the queue changed since the
  selection (stale `sequence_version`).
- `view()` is an immutable `QueueView`; building one never scans the queue (per-group facts
  are rebuilt only for groups that changed, in copy-on-write chunks).

The queue knows nothing of running counts, models, providers or pressure.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from rowloom.scheduling.resources import (
    SchedulableTask,
    SchedulerResourceKey,
    SchedulerResourceRequest,
    TaskGroupKey,
    TaskGroupSpec,
)

_EPS: Final = 1e-9
_MAX_SCAN_RESTARTS: Final = 16
_ON_TIME: Final = 1
_AHEAD: Final = 2
_SHIFT: Final = 4
_MASK: Final = (1 << _SHIFT) - 1
_EMPTY_CHUNK: Final[tuple[None, ...]] = (None,) * (1 << _SHIFT)

_Entry: TypeAlias = tuple[TaskGroupSpec, int, Mapping[SchedulerResourceKey, int], SchedulableTask]
"""Snapshot of one queued group: (spec, queued count, demand, head task); never mutated."""

_Heap: TypeAlias = list[tuple[float, int, int]]
"""Heap of (tag, head task sequence, group slot)."""


@dataclass(frozen=True, slots=True)
class GroupQueueFacts:
    """Raw queued facts of one group: count, resource demand, and its first candidate."""

    group: TaskGroupSpec
    queued: int
    demand: Mapping[SchedulerResourceKey, int]
    head: SchedulableTask

    @property
    def first_request(self) -> SchedulerResourceRequest:
        """The resource request of the group's next task."""
        return self.head.resource_request


@dataclass(frozen=True, slots=True)
class _QueueShape:
    """The part of a view that changes only when the set of queued groups changes."""

    slot_of: Mapping[TaskGroupKey, int]
    groups_by_resource: Mapping[SchedulerResourceKey, int]
    weight_total: int
    group_count: int


@dataclass(frozen=True, slots=True, eq=False)
class QueueView:
    """Immutable raw facts about queued work at one `sequence_version`. No eligibility.

    Per-group facts are read in O(1) through `is_queued`, `queued_count`, `demand`,
    `first_request`, `has_queued_peer`; `groups` and the `*_by_group` properties materialise
    them in O(groups). `group_set_token` is a new object whenever the set of queued groups
    changes, so consumers can memoise what depends only on that set.
    """

    sequence_version: int
    queued_total: int
    _demand: Mapping[SchedulerResourceKey, int] = field(repr=False)
    _chunks: Sequence[tuple[_Entry | None, ...]] = field(repr=False)
    _shape: _QueueShape = field(repr=False)

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
        entries: list[_Entry | None] = [
            (f.group, f.queued, dict(f.demand), f.head) for f in by_key.values()
        ]
        size = _MASK + 1
        entries += [None] * (-len(entries) % size)
        shape = _QueueShape(
            {key: i for i, key in enumerate(by_key)},
            MappingProxyType(groups_by_resource),
            sum(f.group.weight for f in by_key.values()),
            len(by_key),
        )
        chunks = [tuple(entries[i : i + size]) for i in range(0, len(entries), size)]
        return cls(sequence_version, sum(f.queued for f in by_key.values()), demand, chunks, shape)

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

    def _entry(self, group: TaskGroupKey) -> _Entry | None:
        slot = self._shape.slot_of.get(group)
        return None if slot is None else self._chunks[slot >> _SHIFT][slot & _MASK]

    def is_queued(self, group: TaskGroupKey) -> bool:
        """True when `group` has at least one queued task."""
        slot = self._shape.slot_of.get(group)
        return slot is not None and self._chunks[slot >> _SHIFT][slot & _MASK] is not None

    def queued_count(self, group: TaskGroupKey) -> int:
        """Queued tasks of `group`."""
        entry = self._entry(group)
        return 0 if entry is None else entry[1]

    def demand(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        """Queued units of `resource` requested by `group`."""
        entry = self._entry(group)
        return 0 if entry is None else entry[2].get(resource, 0)

    def first_request(self, group: TaskGroupKey) -> SchedulerResourceRequest | None:
        """The resource request of `group`'s first candidate, if it has queued work."""
        entry = self._entry(group)
        return None if entry is None else entry[3].resource_request

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

    @property
    def groups(self) -> Mapping[TaskGroupKey, GroupQueueFacts]:
        """Queued groups and their facts, in first-enqueue order (materialised; O(groups))."""
        out: dict[TaskGroupKey, GroupQueueFacts] = {}
        for key, slot in self._shape.slot_of.items():
            entry = self._chunks[slot >> _SHIFT][slot & _MASK]
            if entry is not None:
                spec, queued, demand, head = entry
                out[key] = GroupQueueFacts(spec, queued, MappingProxyType(demand), head)
        return MappingProxyType(out)

    @property
    def queued_by_group(self) -> Mapping[TaskGroupKey, int]:
        """Queued task count per group (materialised; O(groups))."""
        return {key: f.queued for key, f in self.groups.items()}

    @property
    def queued_demand_by_group(self) -> Mapping[TaskGroupKey, Mapping[SchedulerResourceKey, int]]:
        """Queued demand per group and resource (materialised; O(groups))."""
        return {key: f.demand for key, f in self.groups.items()}

    @property
    def first_request_by_group(self) -> Mapping[TaskGroupKey, SchedulerResourceRequest]:
        """First candidate's request per group (materialised; O(groups))."""
        return {key: f.head.resource_request for key, f in self.groups.items()}

    def as_json(self) -> dict[str, Any]:
        """This view as a JSON object (O(groups); for events, reports and comparisons)."""
        return {
            "sequence_version": self.sequence_version,
            "queued_total": self.queued_total,
            "queued_weight_total": self.queued_weight_total,
            "queued_demand_by_resource": dict(self._demand),
            "queued_groups_by_resource": dict(self.queued_groups_by_resource),
            "groups": {
                k.as_key_str(): {
                    "queued": f.queued,
                    "demand": dict(f.demand),
                    "head": f.head.task_id,
                    "weight": f.group.weight,
                }
                for k, f in self.groups.items()
            },
        }


EMPTY_QUEUE_VIEW: Final = QueueView.from_groups(())


@dataclass(frozen=True, slots=True)
class QueueSelection:
    """A candidate chosen by `select_next`, for the scheduler only; `commit` removes it."""

    item: SchedulableTask
    queue_view: QueueView
    sequence_version: int


# Hot-path construction of the frozen values above through their slot descriptors: the
# generated frozen __init__ costs several times more, and these classes validate nothing.
_new = object.__new__
_qv_version, _qv_total, _qv_demand, _qv_chunks, _qv_shape = (
    QueueView.__dict__[name].__set__
    for name in ("sequence_version", "queued_total", "_demand", "_chunks", "_shape")
)
_sel_item, _sel_view, _sel_version = (
    QueueSelection.__dict__[name].__set__ for name in ("item", "queue_view", "sequence_version")
)


def _selection(item: SchedulableTask, view: QueueView, version: int) -> QueueSelection:
    selection: QueueSelection = _new(QueueSelection)
    _sel_item(selection, item)
    _sel_view(selection, view)
    _sel_version(selection, version)
    return selection


class _Group:
    """Mutable per-group queue state (internal)."""

    __slots__ = ("demand", "finish", "inv_weight", "items", "slot", "spec", "start", "where")

    def __init__(self, spec: TaskGroupSpec, slot: int) -> None:
        self.spec = spec
        self.slot = slot
        self.inv_weight = 1.0 / spec.weight
        self.items: deque[tuple[int, SchedulableTask]] = deque()
        self.demand: dict[SchedulerResourceKey, int] = {}
        self.start = 0.0
        self.finish = float("-inf")
        self.where = 0  # 0: not backlogged, _ON_TIME or _AHEAD: the heap holding it


class FairTaskQueue:
    """Weighted fair ready queue (see the module docstring for the full contract).

    Thread-safe: an internal lock guards state; it is never held while `is_eligible` runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._seq = itertools.count()
        self._ids: set[str] = set()
        self._count = 0
        self._groups: list[_Group] = []
        self._slot_of: dict[TaskGroupKey, int] = {}
        self._on_time: _Heap = []  # (finish, head seq, slot) of groups with S <= V
        self._ahead: _Heap = []  # (start, head seq, slot) of groups with S > V
        self._vtime = 0.0
        self._backlogged_weight = 0
        self._backlogged_groups = 0
        self._demand_total: dict[SchedulerResourceKey, int] = {}
        self._groups_with_demand: dict[SchedulerResourceKey, int] = {}
        # copy-on-write snapshot state shared with views
        self._chunks: list[tuple[_Entry | None, ...]] = []
        self._dirty: set[int] = set()
        self._demand_snapshot: dict[SchedulerResourceKey, int] = {}
        self._demand_dirty = False
        self._shape = EMPTY_QUEUE_VIEW._shape
        self._shape_dirty = False
        self._view: QueueView | None = EMPTY_QUEUE_VIEW
        # where the last scanned candidate sat: (version, slot, heap, index); a hint for commit
        self._hint: tuple[int, int, int, int] = (-1, -1, 0, 0)

    # -- mutation ---------------------------------------------------------------------------

    def enqueue(self, items: Iterable[SchedulableTask]) -> Sequence[str]:
        """Add ready tasks; returns the ids newly accepted (duplicates are ignored).

        All or nothing: a task whose group weight contradicts its queued group's weight raises
        ValueError before anything is added.
        """
        batch = list(items)
        accepted: list[str] = []
        with self._lock:
            weights: dict[TaskGroupKey, int] = {}
            for item in batch:
                spec = item.group
                known = weights.setdefault(spec.key, spec.weight)
                slot = self._slot_of.get(spec.key)
                if slot is not None:
                    known = self._groups[slot].spec.weight
                if spec.weight != known:
                    raise ValueError(
                        f"group {spec.key.as_key_str()} enqueued with weight {spec.weight}, "
                        f"it has weight {known}"
                    )
            for item in batch:
                if item.task_id in self._ids:
                    continue
                group = self._group_for(item.group)
                self._ids.add(item.task_id)
                group.items.append((next(self._seq), item))
                self._count += 1
                self._add_demand(group, item.resource_request)
                if group.where == 0:
                    self._activate(group)
                self._dirty.add(group.slot)
                accepted.append(item.task_id)
            if accepted:
                self._catch_up()
                self._version += 1
                self._view = None
        return accepted

    def commit(self, selection: QueueSelection) -> SchedulableTask | None:
        """Remove the selected task; None when the queue changed since `select_next`."""
        self._lock.acquire()
        try:
            if selection.sequence_version != self._version:
                return None
            item = selection.item
            slot = self._slot_of.get(item.group.key)
            if slot is None:
                return None
            group = self._groups[slot]
            if not group.items or group.items[0][1] is not item:
                return None
            heap, index = self._locate(group)
            group.items.popleft()
            self._ids.discard(item.task_id)
            self._count -= 1
            self._remove_demand(group, item.resource_request)
            self._vtime += 1.0 / self._backlogged_weight
            group.start = start = group.finish
            if group.items:
                group.finish = finish = start + group.inv_weight
                head_seq = group.items[0][0]
                limit = self._vtime + _EPS
                on_time, ahead = self._on_time, self._ahead
                at_top = heap is on_time and index == 0
                if start <= limit:
                    group.where = _ON_TIME
                    if at_top:
                        heapq.heapreplace(on_time, (finish, head_seq, slot))
                    else:
                        _heap_remove(heap, index)
                        heapq.heappush(on_time, (finish, head_seq, slot))
                else:
                    group.where = _AHEAD
                    if at_top and ahead and ahead[0][0] <= limit:
                        # swap: the served group goes ahead, the earliest due group comes on time
                        _, due_seq, due_slot = heapq.heapreplace(ahead, (start, head_seq, slot))
                        due = self._groups[due_slot]
                        due.where = _ON_TIME
                        heapq.heapreplace(on_time, (due.finish, due_seq, due_slot))
                    else:
                        _heap_remove(heap, index)
                        heapq.heappush(ahead, (start, head_seq, slot))
            else:
                _heap_remove(heap, index)
                group.where = 0
                self._backlogged_weight -= group.spec.weight
                self._backlogged_groups -= 1
                self._shape_dirty = True
            if self._ahead:
                self._catch_up()
            self._dirty.add(slot)
            self._version += 1
            self._view = None
            return item
        finally:
            self._lock.release()

    # -- reads ------------------------------------------------------------------------------

    def select_next(
        self, is_eligible: Callable[[SchedulableTask, QueueView], bool]
    ) -> QueueSelection | None:
        """The fairest eligible head task, or None. Pure: nothing is removed or advanced."""
        for _ in range(_MAX_SCAN_RESTARTS):
            self._lock.acquire()
            try:
                if self._count == 0:
                    return None
                version = self._version
                view = self._view_locked()
                first = self._on_time or self._ahead
                slot = first[0][2]
                item = self._groups[slot].items[0][1]
                which = _ON_TIME if first is self._on_time else _AHEAD
                self._hint = (version, slot, which, 0)
            finally:
                self._lock.release()
            if is_eligible(item, view):
                if self._version == version:  # the callback may have mutated the queue
                    selection: QueueSelection = _new(QueueSelection)
                    _sel_item(selection, item)
                    _sel_view(selection, view)
                    _sel_version(selection, version)
                    return selection
                continue
            outcome = self._scan(version, view, which, is_eligible, skip_root=True)
            if outcome is None and which == _ON_TIME:
                outcome = self._scan(version, view, _AHEAD, is_eligible, skip_root=False)
            if outcome is None:
                return None
            if outcome is not _RESTART:
                return _selection(outcome, view, version)
        raise RuntimeError("the queue changed during every selection scan")

    def view(self) -> QueueView:
        """The current immutable view (cheap: shared until the queue changes)."""
        with self._lock:
            return self._view_locked()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    @property
    def sequence_version(self) -> int:
        """Changes on every accepted enqueue and every commit."""
        return self._version

    # -- internals --------------------------------------------------------------------------

    def _scan(
        self,
        version: int,
        view: QueueView,
        which: int,
        is_eligible: Callable[[SchedulableTask, QueueView], bool],
        skip_root: bool,
    ) -> Any:
        """Visit one heap in key order without popping; returns an item, None, or _RESTART.

        Best-first walk over the heap array: each visited group costs O(log visited).
        """
        heap = self._on_time if which == _ON_TIME else self._ahead
        frontier: list[tuple[tuple[float, int, int], int]] = []
        rejected = 0 if skip_root else -1
        while True:
            self._lock.acquire()
            try:
                if self._version != version:
                    return _RESTART
                size = len(heap)
                if rejected < 0:
                    if size == 0:
                        return None
                    index = 0
                else:
                    child = 2 * rejected + 1
                    if child < size:
                        heapq.heappush(frontier, (heap[child], child))
                        if child + 1 < size:
                            heapq.heappush(frontier, (heap[child + 1], child + 1))
                    if not frontier:
                        return None
                    index = heapq.heappop(frontier)[1]
                slot = heap[index][2]
                item = self._groups[slot].items[0][1]
                self._hint = (version, slot, which, index)
            finally:
                self._lock.release()
            if is_eligible(item, view):
                return item if self._version == version else _RESTART
            rejected = index

    def _view_locked(self) -> QueueView:
        view = self._view
        if view is not None:
            return view
        dirty = self._dirty
        if dirty:
            chunks = self._chunks.copy()
            if len(dirty) == 1:  # the common case: one commit since the last view
                slot = dirty.pop()
                chunk = list(chunks[slot >> _SHIFT])
                chunk[slot & _MASK] = _entry_of(self._groups[slot])
                chunks[slot >> _SHIFT] = tuple(chunk)
            else:
                edited: dict[int, list[_Entry | None]] = {}
                for slot in dirty:
                    index = slot >> _SHIFT
                    edit = edited.get(index)
                    if edit is None:
                        edit = edited[index] = list(chunks[index])
                    edit[slot & _MASK] = _entry_of(self._groups[slot])
                for index, edit in edited.items():
                    chunks[index] = tuple(edit)
                dirty.clear()
            self._chunks = chunks
        if self._demand_dirty:
            self._demand_snapshot = dict(self._demand_total)
            self._demand_dirty = False
        if self._shape_dirty:
            self._shape = _QueueShape(
                self._slot_of,
                MappingProxyType(dict(self._groups_with_demand)),
                self._backlogged_weight,
                self._backlogged_groups,
            )
            self._shape_dirty = False
        view = _new(QueueView)
        _qv_version(view, self._version)
        _qv_total(view, self._count)
        _qv_demand(view, self._demand_snapshot)
        _qv_chunks(view, self._chunks)
        _qv_shape(view, self._shape)
        self._view = view
        return view

    def _group_for(self, spec: TaskGroupSpec) -> _Group:
        slot = self._slot_of.get(spec.key)
        if slot is not None:
            return self._groups[slot]
        group = _Group(spec, len(self._groups))
        self._groups.append(group)
        # copy-on-write: views taken earlier keep their own slot map and chunk list
        self._slot_of = {**self._slot_of, spec.key: group.slot}
        if group.slot >> _SHIFT == len(self._chunks):
            self._chunks = [*self._chunks, _EMPTY_CHUNK]
        self._shape_dirty = True
        return group

    def _activate(self, group: _Group) -> None:
        """`group` just became backlogged: tag its head and put it in a heap."""
        group.start = max(self._vtime, group.finish)
        group.finish = group.start + group.inv_weight
        self._backlogged_weight += group.spec.weight
        self._backlogged_groups += 1
        self._shape_dirty = True
        head_seq = group.items[0][0]
        if group.start <= self._vtime + _EPS:
            group.where = _ON_TIME
            heapq.heappush(self._on_time, (group.finish, head_seq, group.slot))
        else:
            group.where = _AHEAD
            heapq.heappush(self._ahead, (group.start, head_seq, group.slot))

    def _locate(self, group: _Group) -> tuple[_Heap, int]:
        """The heap holding `group` and its index (the scan hint, else a linear search)."""
        heap = self._on_time if group.where == _ON_TIME else self._ahead
        if heap[0][2] == group.slot:
            return heap, 0
        version, slot, which, index = self._hint
        if (
            version == self._version
            and slot == group.slot
            and which == group.where
            and index < len(heap)
            and heap[index][2] == slot
        ):
            return heap, index
        for index, entry in enumerate(heap):
            if entry[2] == group.slot:
                return heap, index
        raise AssertionError("a backlogged group is missing from its heap")

    def _catch_up(self) -> None:
        """Advance V to the earliest start when nothing is on time; move due groups on time."""
        ahead = self._ahead
        if not ahead:
            return
        if not self._on_time and ahead[0][0] > self._vtime:
            self._vtime = ahead[0][0]
        limit = self._vtime + _EPS
        while ahead and ahead[0][0] <= limit:
            _, head_seq, slot = heapq.heappop(ahead)
            group = self._groups[slot]
            group.where = _ON_TIME
            heapq.heappush(self._on_time, (group.finish, head_seq, slot))

    def _add_demand(self, group: _Group, request: SchedulerResourceRequest) -> None:
        demand, total = group.demand, self._demand_total
        for resource, amount in request.amounts.items():
            before = demand.get(resource, 0)
            demand[resource] = before + amount
            total[resource] = total.get(resource, 0) + amount
            if before == 0:
                self._groups_with_demand[resource] = self._groups_with_demand.get(resource, 0) + 1
                self._shape_dirty = True
        self._demand_dirty = True

    def _remove_demand(self, group: _Group, request: SchedulerResourceRequest) -> None:
        demand, total = group.demand, self._demand_total
        for resource, amount in request.amounts.items():
            left = demand[resource] - amount
            total[resource] -= amount
            if left:
                demand[resource] = left
                continue
            del demand[resource]
            if not total[resource]:
                del total[resource]
            self._groups_with_demand[resource] -= 1
            if not self._groups_with_demand[resource]:
                del self._groups_with_demand[resource]
            self._shape_dirty = True
        self._demand_dirty = True


_RESTART: Final = object()


def _entry_of(group: _Group) -> _Entry | None:
    """The immutable snapshot entry of one group (None when it has nothing queued)."""
    if not group.items:
        return None
    return (group.spec, len(group.items), dict(group.demand), group.items[0][1])


def _heap_remove(heap: _Heap, index: int) -> None:
    """Remove `heap[index]` keeping the heap invariant (O(log n))."""
    if index == 0:
        heapq.heappop(heap)
        return
    last = heap.pop()
    if index == len(heap):
        return
    if last < heap[(index - 1) >> 1]:
        while index > 0:
            parent = (index - 1) >> 1
            if last < heap[parent]:
                heap[index] = heap[parent]
                index = parent
            else:
                break
    else:
        size = len(heap)
        while True:
            child = 2 * index + 1
            if child >= size:
                break
            if child + 1 < size and heap[child + 1] < heap[child]:
                child += 1
            if heap[child] < last:
                heap[index] = heap[child]
                index = child
            else:
                break
    heap[index] = last
