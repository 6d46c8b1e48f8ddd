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
  each group at most once, in fair order, calling `is_eligible(head, view)`, and returns the
  first head the callback accepts.
- Exhausted resources: backlogged groups are kept in *request classes* (one per distinct
  resource request of their head task; there are very few), each with its own pair of WF2Q+
  heaps under the one virtual time, so the fair order is the merge of the classes' orders. A
  callback that refuses a head because a resource is exhausted answers `Refusal(resource,
  free)` instead of False; the queue then skips, for the rest of that selection, every class
  whose request needs more than `free` units of it, without asking or walking its groups.
  The choice is always the one an exhaustive scan makes; a selection that finds nothing
  because every class is blocked asks at most one head per class.
- `commit(selection)` is the only removal; it returns None when the queue changed since the
  selection (stale `sequence_version`).
- `view()` is an immutable `QueueView`; building one never scans the queue (per-group facts
  are rebuilt only for groups that changed, in copy-on-write chunks).

The queue knows nothing of running counts, models, providers or pressure.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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

_Entry: TypeAlias = tuple[
    TaskGroupSpec, int, Mapping[SchedulerResourceKey, int] | None, SchedulableTask
]
"""Snapshot of one queued group: (spec, queued count, demand, head task); never mutated.

Demand None: every queued task of the group makes the head's request (count x its amounts).
"""

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


_State: TypeAlias = tuple[
    int, int, Mapping[SchedulerResourceKey, int], Sequence[tuple[_Entry | None, ...]], _QueueShape
]
"""A view's facts: (sequence version, queued total, demand by resource, chunks, shape)."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class QueueView:
    """Immutable raw facts about queued work at one `sequence_version`. No eligibility.

    Per-group facts are read in O(1) through `is_queued`, `queued_count`, `demand`,
    `first_request`, `has_queued_peer`; `groups` and the `*_by_group` properties materialise
    them in O(groups). `group_set_token` is a new object whenever the set of queued groups
    changes, so consumers can memoise what depends only on that set.
    """

    _s: _State  # one slot: a view is built once per queue change, on the dispatch hot path

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
        total = sum(f.queued for f in by_key.values())
        return cls((sequence_version, total, demand, chunks, shape))

    def __eq__(self, other: object) -> bool:
        """Same version and the same queued facts (the internal layout does not matter)."""
        if not isinstance(other, QueueView):
            return NotImplemented
        return (
            self.sequence_version == other.sequence_version
            and self.queued_total == other.queued_total
            and dict(self._s[2]) == dict(other._s[2])
            and dict(self.groups) == dict(other.groups)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"QueueView(sequence_version={self.sequence_version}, "
            f"queued_total={self.queued_total}, groups={self.queued_group_count})"
        )

    @property
    def sequence_version(self) -> int:
        """The queue's `sequence_version` when this view was taken."""
        return self._s[0]

    @property
    def queued_total(self) -> int:
        """Queued tasks over all groups."""
        return self._s[1]

    @property
    def queued_weight_total(self) -> int:
        """Sum of the weights of groups with queued work."""
        return self._s[4].weight_total

    @property
    def queued_group_count(self) -> int:
        """How many groups have queued work."""
        return self._s[4].group_count

    @property
    def queued_demand_by_resource(self) -> Mapping[SchedulerResourceKey, int]:
        """Queued units per resource, over all groups."""
        return MappingProxyType(self._s[2])

    @property
    def queued_groups_by_resource(self) -> Mapping[SchedulerResourceKey, int]:
        """How many groups have queued demand for each resource."""
        return self._s[4].groups_by_resource

    @property
    def group_set_token(self) -> object:
        """Identity changes whenever the set of queued groups changes."""
        return self._s[4]

    def _entry(self, group: TaskGroupKey) -> _Entry | None:
        s = self._s
        slot = s[4].slot_of.get(group)
        return None if slot is None else s[3][slot >> _SHIFT][slot & _MASK]

    def is_queued(self, group: TaskGroupKey) -> bool:
        """True when `group` has at least one queued task."""
        s = self._s
        slot = s[4].slot_of.get(group)
        return slot is not None and s[3][slot >> _SHIFT][slot & _MASK] is not None

    def queued_count(self, group: TaskGroupKey) -> int:
        """Queued tasks of `group`."""
        entry = self._entry(group)
        return 0 if entry is None else entry[1]

    def demand(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        """Queued units of `resource` requested by `group`."""
        entry = self._entry(group)
        if entry is None:
            return 0
        demand = entry[2]
        if demand is None:
            return entry[1] * entry[3].resource_request.amounts.get(resource, 0)
        return demand.get(resource, 0)

    def first_request(self, group: TaskGroupKey) -> SchedulerResourceRequest | None:
        """The resource request of `group`'s first candidate, if it has queued work."""
        entry = self._entry(group)
        return None if entry is None else entry[3].resource_request

    def peer_demand(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> int:
        """Queued units of `resource` requested by every group except `group`."""
        return self._s[2].get(resource, 0) - self.demand(group, resource)

    def has_queued_peer(self, group: TaskGroupKey, resource: SchedulerResourceKey) -> bool:
        """True when another group has queued demand for `resource`."""
        others = self._s[4].groups_by_resource.get(resource, 0)
        if others == 1:
            return not self.demand(group, resource)
        return others > 1

    def peer_demand_by_resource(self, group: TaskGroupKey) -> Mapping[SchedulerResourceKey, int]:
        """Queued peer demand by resource, from `group`'s point of view."""
        return {r: self.peer_demand(group, r) for r in self._s[2]}

    @property
    def groups(self) -> Mapping[TaskGroupKey, GroupQueueFacts]:
        """Queued groups and their facts, in first-enqueue order (materialised; O(groups))."""
        out: dict[TaskGroupKey, GroupQueueFacts] = {}
        _, _, _, chunks, shape = self._s
        for key, slot in shape.slot_of.items():
            entry = chunks[slot >> _SHIFT][slot & _MASK]
            if entry is not None:
                spec, queued, demand, head = entry
                if demand is None:
                    demand = {r: queued * a for r, a in head.resource_request.amounts.items()}
                out[key] = GroupQueueFacts(spec, queued, MappingProxyType(demand), head)
        return MappingProxyType(out)

    def heads(self) -> Iterator[tuple[TaskGroupSpec, int, SchedulableTask]]:
        """(group, queued count, first candidate) of every queued group (O(groups), no copies)."""
        _, _, _, chunks, shape = self._s
        for slot in shape.slot_of.values():
            entry = chunks[slot >> _SHIFT][slot & _MASK]
            if entry is not None:
                yield entry[0], entry[1], entry[3]

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
            "queued_demand_by_resource": dict(self._s[2]),
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


@dataclass(slots=True)
class QueueSelection:
    """A candidate chosen by `select_next`, for the scheduler only; `commit` removes it.

    A plain value (not frozen: it is built on every dispatch); treat it as immutable.
    `slot` and `heap_index` say where the queue found the candidate (hints for `commit`).
    """

    item: SchedulableTask
    queue_view: QueueView
    sequence_version: int
    slot: int = field(default=-1, repr=False, compare=False)
    heap_index: int = field(default=0, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A typed "no" from an eligibility callback: `resource` has only `free` units left.

    Returning it (instead of False) while refusing a head task whose request needs more than
    `free` units of `resource` promises that the callback refuses every head needing more than
    `free` of it for the rest of this `select_next`, so the queue skips them all without
    asking. It is falsy, so a caller that only wants a yes/no can test it like a bool.
    """

    resource: SchedulerResourceKey
    free: int

    def __bool__(self) -> bool:
        return False


Eligibility: TypeAlias = bool | Refusal
"""An eligibility callback's answer: True, False, or a `Refusal` naming an exhausted resource."""

EligibilityCheck: TypeAlias = Callable[[SchedulableTask, QueueView], Eligibility]
"""`is_eligible(item, queue_view)`: may this head task be admitted now?"""


# A view is built on every queue change (the dispatch hot path): one slot set through its
# descriptor, skipping the frozen dataclass's generated __init__.
_new = object.__new__
_qv_state = QueueView.__dict__["_s"].__set__


class _Class:
    """Backlogged groups whose head task makes one resource request (internal).

    Each class keeps its own pair of WF2Q+ heaps under the queue's single virtual time, so
    the global fair order is the merge of the classes' orders, and a class whose request
    cannot be met is skipped whole.
    """

    __slots__ = ("ahead", "amounts", "groups", "on_time")

    def __init__(self, request: SchedulerResourceRequest) -> None:
        self.amounts = dict(request.amounts)
        self.on_time: _Heap = []  # (finish, head seq, slot) of groups with S <= V
        self.ahead: _Heap = []  # (start, head seq, slot) of groups with S > V
        self.groups = 0  # backlogged groups in this class


_NO_CLASS: Final = _Class(SchedulerResourceRequest({}))

_Item: TypeAlias = tuple[int, SchedulableTask, _Class]
"""One queued task: (enqueue sequence, task, the class of its request)."""


class _Group:
    """Mutable per-group queue state (internal)."""

    __slots__ = (
        "cls",
        "demand",
        "finish",
        "inv_weight",
        "items",
        "slot",
        "spec",
        "start",
        "uniform",
        "where",
    )

    def __init__(self, spec: TaskGroupSpec, slot: int) -> None:
        self.spec = spec
        self.slot = slot
        self.inv_weight = 1.0 / spec.weight
        self.items: deque[_Item] = deque()
        # the request every queued task makes, or None (then `demand` holds the queued units)
        self.uniform: SchedulerResourceRequest | None = None
        self.demand: dict[SchedulerResourceKey, int] = {}
        self.start = 0.0
        self.finish = float("-inf")
        self.where = 0  # 0: not backlogged, _ON_TIME or _AHEAD: which heap of `cls` holds it
        self.cls: _Class | None = None  # the class of its head task while backlogged


class FairTaskQueue:
    """Weighted fair ready queue (see the module docstring for the full contract).

    Single-threaded: one event loop owns it (no locks); `is_eligible` may even mutate the
    queue, and the selection then starts afresh.
    """

    def __init__(self) -> None:
        self._version = 0
        self._seq = itertools.count()
        self._ids: set[str] = set()
        self._count = 0
        self._groups: list[_Group] = []
        self._slot_of: dict[TaskGroupKey, int] = {}
        self._classes: dict[SchedulerResourceRequest, _Class] = {}
        self._last_class: tuple[SchedulerResourceRequest | None, _Class | None] = (None, None)
        self._live: list[_Class] = []  # classes with backlogged groups
        self._on_time_groups = 0
        self._ahead_groups = 0
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
        self._shape = EMPTY_QUEUE_VIEW._s[4]
        self._shape_dirty = False
        self._view: QueueView | None = EMPTY_QUEUE_VIEW

    # -- mutation ---------------------------------------------------------------------------

    def enqueue(self, items: Iterable[SchedulableTask]) -> Sequence[str]:
        """Add ready tasks; returns the ids newly accepted (duplicates are ignored).

        All or nothing: a task whose group weight contradicts its queued group's weight raises
        ValueError before anything is added.
        """
        batch = list(items)
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
        accepted: list[str] = []
        for item in batch:
            if item.task_id in self._ids:
                continue
            group = self._group_for(item.group)
            self._ids.add(item.task_id)
            request = item.resource_request
            self._add_demand(group, request)
            group.items.append((next(self._seq), item, self._class_for(request)))
            self._count += 1
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
        if selection.sequence_version != self._version:
            return None
        item = selection.item
        slot = selection.slot
        if slot < 0:  # a selection this queue did not make
            found = self._slot_of.get(item.group.key)
            if found is None:
                return None
            slot = found
        group = self._groups[slot]
        items = group.items
        if not items or items[0][1] is not item:
            return None
        items.popleft()
        self._ids.discard(item.task_id)
        self._count -= 1
        request = item.resource_request
        total = self._demand_total
        for resource, amount in request.amounts.items():
            left = total[resource] - amount
            if left:
                total[resource] = left
            else:
                del total[resource]
        self._demand_dirty = True
        if group.uniform is None or not items:
            self._remove_group_demand(group, request)
        self._advance(group, selection.heap_index)
        self._dirty.add(slot)
        self._version += 1
        self._view = None
        return item

    def _advance(self, group: _Group, index: int) -> None:
        """WF2Q+ bookkeeping after `group` was served: V, its tags, its place in the heaps.

        `index` is a hint: where `group` sat in its heap when it was selected.
        """
        cls = group.cls
        assert cls is not None
        slot = group.slot
        was_on_time = group.where == _ON_TIME
        heap = cls.on_time if was_on_time else cls.ahead
        if index >= len(heap) or heap[index][2] != slot:
            index = _index_of(heap, slot)
        self._vtime = vtime = self._vtime + 1.0 / self._backlogged_weight
        limit = vtime + _EPS
        group.start = start = group.finish
        if group.items:
            head_seq, _, head_cls = group.items[0]
            group.finish = finish = start + group.inv_weight
            if start <= limit:
                if not was_on_time:
                    self._on_time_groups += 1
                    self._ahead_groups -= 1
                group.where = _ON_TIME
                _heap_move(heap, index, head_cls.on_time, (finish, head_seq, slot))
            else:
                group.where = _AHEAD
                if was_on_time:
                    self._on_time_groups -= 1
                    self._ahead_groups += 1
                if not (
                    was_on_time
                    and index == 0
                    and head_cls is cls
                    and self._swap_due(cls, (start, head_seq, slot), limit)
                ):
                    _heap_move(heap, index, head_cls.ahead, (start, head_seq, slot))
            if head_cls is not cls:
                self._leave(cls)
                self._join(head_cls)
                group.cls = head_cls
        else:
            _heap_remove(heap, index)
            if was_on_time:
                self._on_time_groups -= 1
            else:
                self._ahead_groups -= 1
            self._leave(cls)
            group.cls = None
            group.where = 0
            self._backlogged_weight -= group.spec.weight
            self._backlogged_groups -= 1
            self._shape_dirty = True
        if self._ahead_groups:
            if not self._on_time_groups:
                self._catch_up()
            else:
                for live in self._live:
                    ahead = live.ahead
                    if ahead and ahead[0][0] <= limit:
                        self._catch_up()
                        break

    def _swap_due(self, cls: _Class, entry: tuple[float, int, int], limit: float) -> bool:
        """The served group (root of `cls.on_time`) goes ahead as `entry`; the earliest due
        group of `cls.ahead` takes its place on time. False: nobody is due."""
        on_time, ahead = cls.on_time, cls.ahead
        if not ahead or ahead[0][0] > limit:
            return False
        _, due_seq, due_slot = heapq.heapreplace(ahead, entry)
        due = self._groups[due_slot]
        due.where = _ON_TIME
        heapq.heapreplace(on_time, (due.finish, due_seq, due_slot))
        self._on_time_groups += 1
        self._ahead_groups -= 1
        return True

    # -- reads ------------------------------------------------------------------------------

    def select_next(self, is_eligible: EligibilityCheck) -> QueueSelection | None:
        """The fairest eligible head task, or None. Pure: nothing is removed or advanced."""
        for _ in range(_MAX_SCAN_RESTARTS):  # a scan restarts when the callback changed the queue
            outcome = self._select(is_eligible)
            if not isinstance(outcome, _Restart):
                return outcome
        raise RuntimeError("the queue changed during every selection scan")

    def _select(self, is_eligible: EligibilityCheck) -> QueueSelection | _Restart | None:
        """One selection scan: a `QueueSelection`, None, or _RESTART."""
        if self._count == 0:
            return None
        version = self._version
        view = self._view or self._build_view()
        live = self._live
        dead: list[_Class] = []  # classes blocked on an exhausted resource, this scan
        while True:
            if not dead and len(live) == 1:
                cls = live[0]
                heap = cls.on_time or cls.ahead
            else:
                found = self._fairest_root(dead)
                if found is None:
                    return None
                heap, cls = found
            slot = heap[0][2]
            item = self._groups[slot].items[0][1]
            verdict = is_eligible(item, view)
            if self._version != version:
                return _RESTART
            if verdict:
                return QueueSelection(item, view, version, slot)
            refusal = verdict if type(verdict) is Refusal else None
            if refusal is not None and cls.amounts.get(refusal.resource, 0) > refusal.free:
                _block(live, dead, refusal.resource, refusal.free)
                continue  # its whole class is blocked: the fairest head outside it is next
            return self._scan(version, view, is_eligible, cls, heap, refusal, dead)

    def view(self) -> QueueView:
        """The current immutable view (cheap: shared until the queue changes)."""
        return self._view or self._build_view()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    @property
    def sequence_version(self) -> int:
        """Changes on every accepted enqueue and every commit."""
        return self._version

    # -- internals --------------------------------------------------------------------------

    def _fairest_root(self, dead: Sequence[_Class]) -> tuple[_Heap, _Class] | None:
        """The heap whose root is the fairest head outside `dead` classes, and its class."""
        best: _Heap | None = None
        best_cls = self._live[0]
        for cls in self._live:
            heap = cls.on_time
            if heap and (best is None or heap[0] < best[0]) and cls not in dead:
                best, best_cls = heap, cls
        if best is None:
            for cls in self._live:
                heap = cls.ahead
                if heap and (best is None or heap[0] < best[0]) and cls not in dead:
                    best, best_cls = heap, cls
        return None if best is None else (best, best_cls)

    def _scan(
        self,
        version: int,
        view: QueueView,
        is_eligible: EligibilityCheck,
        first: _Class,
        first_heap: _Heap,
        refusal: Refusal | None,
        dead: list[_Class],
    ) -> QueueSelection | _Restart | None:
        """Go on after the refused fairest head (`first_heap[0]`, of class `first`).

        Returns a `QueueSelection`, None, or _RESTART. Best-first merge over the classes'
        heaps without popping, on-time heaps first, then the ahead heaps (work conserving);
        each visited group costs O(log visited). A class whose request needs more of a
        resource a `Refusal` named is dropped whole: its groups are neither asked nor walked.
        """
        # (heap entry, index in its heap, class); heap entries are unique, so comparisons
        # never reach the class
        frontier: list[tuple[tuple[float, int, int], int, _Class]] = []
        on_time = first_heap is first.on_time
        last: tuple[_Class, _Heap, int] | None = (first, first_heap, 0)
        seeded = False
        live = self._live
        while True:
            if refusal is not None:
                _block(live, dead, refusal.resource, refusal.free)
                if len(dead) == len(live):
                    return None
            if not seeded:  # the roots of the other classes' heaps of this phase
                seeded = True
                for cls in live:
                    if cls is not first and cls not in dead:
                        heap = cls.on_time if on_time else cls.ahead
                        if heap:
                            heapq.heappush(frontier, (heap[0], 0, cls))
            if last is not None:
                _push_children(frontier, *last, dead)
                last = None
            while frontier and frontier[0][2] in dead:
                heapq.heappop(frontier)
            if not frontier:
                if not on_time:
                    return None
                on_time, seeded, first = False, False, _NO_CLASS  # now the ahead heaps
                continue
            _, index, cls = heapq.heappop(frontier)
            heap = cls.on_time if on_time else cls.ahead
            slot = heap[index][2]
            item = self._groups[slot].items[0][1]
            verdict = is_eligible(item, view)
            if self._version != version:
                return _RESTART
            if verdict:
                return QueueSelection(item, view, version, slot, index)
            refusal = verdict if type(verdict) is Refusal else None
            last = (cls, heap, index)

    def _build_view(self) -> QueueView:
        view = self._view
        if view is not None:
            return view
        dirty = self._dirty
        if dirty:
            chunks = self._chunks.copy()
            groups = self._groups
            if len(dirty) == 1:  # the common case: one commit since the last view
                slot = dirty.pop()
                index = slot >> _SHIFT
                chunk = list(chunks[index])
                group = groups[slot]
                items = group.items
                chunk[slot & _MASK] = (
                    (
                        group.spec,
                        len(items),
                        None if group.uniform is not None else dict(group.demand),
                        items[0][1],
                    )
                    if items
                    else None
                )
                chunks[index] = tuple(chunk)
            else:
                edited: dict[int, list[_Entry | None]] = {}
                for slot in dirty:
                    index = slot >> _SHIFT
                    edit = edited.get(index)
                    if edit is None:
                        edit = edited[index] = list(chunks[index])
                    edit[slot & _MASK] = _entry_of(groups[slot])
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
        _qv_state(
            view, (self._version, self._count, self._demand_snapshot, self._chunks, self._shape)
        )
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

    def _class_for(self, request: SchedulerResourceRequest) -> _Class:
        """The class of `request` (equal requests share one), created on first use."""
        last_request, last_class = self._last_class
        if request is last_request and last_class is not None:
            return last_class
        cls = self._classes.get(request)
        if cls is None:
            cls = self._classes[request] = _Class(request)
        self._last_class = (request, cls)
        return cls

    def _join(self, cls: _Class) -> None:
        cls.groups += 1
        if cls.groups == 1:
            self._live.append(cls)

    def _leave(self, cls: _Class) -> None:
        cls.groups -= 1
        if not cls.groups:
            self._live.remove(cls)

    def _activate(self, group: _Group) -> None:
        """`group` just became backlogged: tag its head and put it in its class's heaps."""
        group.start = max(self._vtime, group.finish)
        group.finish = group.start + group.inv_weight
        self._backlogged_weight += group.spec.weight
        self._backlogged_groups += 1
        self._shape_dirty = True
        head_seq, _, cls = group.items[0]
        group.cls = cls
        self._join(cls)
        if group.start <= self._vtime + _EPS:
            group.where = _ON_TIME
            self._on_time_groups += 1
            heapq.heappush(cls.on_time, (group.finish, head_seq, group.slot))
        else:
            group.where = _AHEAD
            self._ahead_groups += 1
            heapq.heappush(cls.ahead, (group.start, head_seq, group.slot))

    def _catch_up(self) -> None:
        """Advance V to the earliest start when nothing is on time; move due groups on time."""
        if not self._ahead_groups:
            return
        live = self._live
        if not self._on_time_groups:
            earliest = min(cls.ahead[0][0] for cls in live if cls.ahead)
            if earliest > self._vtime:
                self._vtime = earliest
        limit = self._vtime + _EPS
        groups = self._groups
        for cls in live:
            ahead = cls.ahead
            while ahead and ahead[0][0] <= limit:
                _, head_seq, slot = heapq.heappop(ahead)
                group = groups[slot]
                group.where = _ON_TIME
                self._on_time_groups += 1
                self._ahead_groups -= 1
                heapq.heappush(cls.on_time, (group.finish, head_seq, slot))

    def _add_demand(self, group: _Group, request: SchedulerResourceRequest) -> None:
        """Count `request` into the demand of `group` (call before queueing its task)."""
        total = self._demand_total
        for resource, amount in request.amounts.items():
            total[resource] = total.get(resource, 0) + amount
        self._demand_dirty = True
        uniform = group.uniform
        if not group.items:
            group.uniform = request
            fresh: Iterable[SchedulerResourceKey] = request.amounts
        elif uniform is not None and (request is uniform or request == uniform):
            return
        else:
            demand = group.demand
            if uniform is not None:  # the group's first task with another request
                queued = len(group.items)
                demand.update({r: queued * a for r, a in uniform.amounts.items()})
                group.uniform = None
            fresh = [r for r in request.amounts if not demand.get(r)]
            for resource, amount in request.amounts.items():
                demand[resource] = demand.get(resource, 0) + amount
        with_demand = self._groups_with_demand
        for resource in fresh:
            with_demand[resource] = with_demand.get(resource, 0) + 1
            self._shape_dirty = True

    def _remove_group_demand(self, group: _Group, request: SchedulerResourceRequest) -> None:
        """Take a committed task's `request` out of `group`'s demand (its total is done).

        A group whose tasks all make one request keeps no demand of its own until it empties.
        """
        if group.uniform is not None:
            group.uniform = None  # the group is empty
            gone: Iterable[SchedulerResourceKey] = request.amounts
        else:
            demand = group.demand
            gone = []
            for resource, amount in request.amounts.items():
                left = demand[resource] - amount
                if left:
                    demand[resource] = left
                else:
                    del demand[resource]
                    gone.append(resource)
        with_demand = self._groups_with_demand
        for resource in gone:
            count = with_demand[resource] - 1
            if count:
                with_demand[resource] = count
            else:
                del with_demand[resource]
            self._shape_dirty = True


class _Restart:
    """The callback changed the queue during a scan: scan again (internal)."""


_RESTART: Final = _Restart()


def _block(
    live: Sequence[_Class], dead: list[_Class], resource: SchedulerResourceKey, free: int
) -> None:
    """Add to `dead` every live class whose request needs more than `free` of `resource`."""
    for cls in live:
        if cls.amounts.get(resource, 0) > free and cls not in dead:
            dead.append(cls)


def _entry_of(group: _Group) -> _Entry | None:
    """The immutable snapshot entry of one group (None when it has nothing queued)."""
    if not group.items:
        return None
    demand = None if group.uniform is not None else dict(group.demand)
    return (group.spec, len(group.items), demand, group.items[0][1])


def _push_children(
    frontier: list[tuple[tuple[float, int, int], int, _Class]],
    cls: _Class,
    heap: _Heap,
    index: int,
    dead: Sequence[_Class],
) -> None:
    """Put the children of `heap[index]` on the merge frontier (unless `cls` is blocked)."""
    if cls in dead:
        return
    child = 2 * index + 1
    size = len(heap)
    if child < size:
        heapq.heappush(frontier, (heap[child], child, cls))
        if child + 1 < size:
            heapq.heappush(frontier, (heap[child + 1], child + 1, cls))


def _heap_move(heap: _Heap, index: int, target: _Heap, entry: tuple[float, int, int]) -> None:
    """Remove `heap[index]` and push `entry` onto `target` (one sift when they coincide)."""
    if target is heap and index == 0:
        heapq.heapreplace(heap, entry)
    else:
        _heap_remove(heap, index)
        heapq.heappush(target, entry)


def _index_of(heap: _Heap, slot: int) -> int:
    """The index of group `slot` in `heap` (a linear search: commit's hint was stale)."""
    for index, entry in enumerate(heap):
        if entry[2] == slot:
            return index
    raise AssertionError("a backlogged group is missing from its heap")


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
