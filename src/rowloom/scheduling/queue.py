"""Ready-task ordering: `FairTaskQueue` picks which ready task is next, fairly across groups.

The order is weighted fair queuing over groups (WF2Q+, `rowloom.scheduling.wf2q`): equal
weights give round robin, FIFO inside a group, and each group's count after any prefix stays
within one task of its weighted share. `QueueView` (`rowloom.scheduling.queue_view`) is what
the queue shows of itself.

Contract:

- `enqueue(items)` is idempotent by `task_id`; it returns only the newly accepted ids.
- `select_next(is_eligible)` is pure: it removes nothing and changes no virtual time. It visits
  each group at most once, in fair order, calling `is_eligible(head, view)`, and returns the
  first head the callback accepts.
- Exhausted resources: a callback that refuses a head because a resource is exhausted answers
  `Refusal(resource, free)` instead of False; the queue then skips, for the rest of that
  selection, every request class (groups whose head makes one resource request) needing more
  than `free` units of it, without asking or walking its groups. The choice is always the one
  an exhaustive scan makes; a selection that finds nothing because every class is blocked
  asks at most one head per class.
- `commit(selection)` is the only removal; it returns None when the queue changed since the
  selection (stale `sequence_version`).
- `view()` is an immutable `QueueView`; building one never scans the queue.

The queue knows nothing of running counts, models, providers or pressure. It belongs to one
event loop: no locks; a callback may even change the queue (the selection then starts afresh).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from rowloom.scheduling.queue_view import (
    CHUNK_BITS,
    CHUNK_MASK,
    EMPTY_CHUNK,
    EMPTY_QUEUE_VIEW,
    GroupQueueFacts,
    QueueShape,
    QueueView,
    with_entries,
)
from rowloom.scheduling.resources import (
    SchedulableTask,
    SchedulerResourceKey,
    SchedulerResourceRequest,
    TaskGroupKey,
)
from rowloom.scheduling.wf2q import FairOrder, QueuedGroup, QueuedTask, RequestClass

__all__ = [
    "EMPTY_QUEUE_VIEW",
    "Eligibility",
    "EligibilityCheck",
    "FairTaskQueue",
    "GroupQueueFacts",
    "QueueSelection",
    "QueueView",
    "Refusal",
]

_MAX_SCAN_RESTARTS: Final = 16


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


class _Restart(Enum):
    """The callback changed the queue during a scan: scan again (internal)."""

    RESTART = 0


class FairTaskQueue:
    """Weighted fair ready queue (see the module docstring for the full contract)."""

    def __init__(self) -> None:
        self._order = FairOrder()
        self._version = 0
        self._sequence = itertools.count()
        self._ids: set[str] = set()
        self._count = 0
        self._demand_total: dict[SchedulerResourceKey, int] = {}
        self._groups_with_demand: dict[SchedulerResourceKey, int] = {}
        # copy-on-write state shared with views, and what changed since the last view
        self._chunks: list[tuple[GroupQueueFacts | None, ...]] = []
        self._dirty: set[int] = set()
        self._demand_snapshot: dict[SchedulerResourceKey, int] = {}
        self._demand_dirty = False
        self._shape = EMPTY_QUEUE_VIEW._shape
        self._shape_dirty = False
        self._view: QueueView | None = EMPTY_QUEUE_VIEW

    def __len__(self) -> int:
        return self._count

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    @property
    def sequence_version(self) -> int:
        """Changes on every accepted enqueue and every commit."""
        return self._version

    # -- mutation ---------------------------------------------------------------------------

    def enqueue(self, items: Iterable[SchedulableTask]) -> Sequence[str]:
        """Add ready tasks; returns the ids newly accepted (duplicates are ignored).

        All or nothing: a task whose group weight contradicts its queued group's weight raises
        ValueError before anything is added.
        """
        batch = list(items)
        self._check_weights(batch)
        order = self._order
        accepted: list[str] = []
        for item in batch:
            if item.task_id in self._ids:
                continue
            group, created = order.group(item.group)
            if created:
                if group.slot >> CHUNK_BITS == len(self._chunks):
                    self._chunks = [*self._chunks, EMPTY_CHUNK]
                self._shape_dirty = True
            self._ids.add(item.task_id)
            request = item.resource_request
            self._add_demand(group, request)
            if group.request_class is None:
                self._shape_dirty = True  # it becomes backlogged: weights change
            queued = QueuedTask(next(self._sequence), item, order.request_class(request))
            order.push(group, queued)
            self._count += 1
            self._dirty.add(group.slot)
            accepted.append(item.task_id)
        if accepted:
            order.catch_up()
            self._version += 1
            self._view = None
        return accepted

    def _check_weights(self, batch: Sequence[SchedulableTask]) -> None:
        """Raise ValueError when a task's group weight contradicts its group's known weight."""
        weights: dict[TaskGroupKey, int] = {}
        order = self._order
        for item in batch:
            spec = item.group
            known = weights.setdefault(spec.key, spec.weight)
            slot = order.slot_of.get(spec.key)
            if slot is not None:
                known = order.groups[slot].spec.weight
            if spec.weight != known:
                raise ValueError(
                    f"group {spec.key.as_key_str()} enqueued with weight {spec.weight}, "
                    f"it has weight {known}"
                )

    def commit(self, selection: QueueSelection) -> SchedulableTask | None:
        """Remove the selected task; None when the queue changed since `select_next`."""
        if selection.sequence_version != self._version:
            return None
        item = selection.item
        order = self._order
        slot = selection.slot
        if slot < 0:  # a selection this queue did not make
            found = order.slot_of.get(item.group.key)
            if found is None:
                return None
            slot = found
        group = order.groups[slot]
        tasks = group.tasks
        if not tasks or tasks[0].task is not item:
            return None
        tasks.popleft()
        self._ids.discard(item.task_id)
        self._count -= 1
        self._remove_demand(group, item.resource_request)
        if group.request_class is not None and not tasks:
            self._shape_dirty = True  # it stops being backlogged: weights change
        order.served(group, selection.heap_index)
        self._dirty.add(slot)
        self._version += 1
        self._view = None
        return item

    # -- reads ------------------------------------------------------------------------------

    def select_next(self, is_eligible: EligibilityCheck) -> QueueSelection | None:
        """The fairest eligible head task, or None. Pure: nothing is removed or advanced."""
        order = self._order
        for _ in range(_MAX_SCAN_RESTARTS):  # a scan restarts when the callback changed the queue
            if self._count == 0:
                return None
            version = self._version
            view = self._view or self._build_view()
            live = order.live
            if len(live) == 1:  # the common case: one request class
                first = live[0]
                on_time = bool(first.on_time)
            else:
                fairest = order.fairest()
                assert fairest is not None  # something is queued
                first, on_time = fairest
            slot = (first.on_time if on_time else first.ahead)[0][2]
            item = order.groups[slot].tasks[0].task
            verdict = is_eligible(item, view)
            if self._version != version:
                continue
            if verdict:
                return QueueSelection(item, view, version, slot)
            outcome = self._select_after(is_eligible, view, first, on_time, verdict)
            if outcome is not _Restart.RESTART:
                return outcome
        raise RuntimeError("the queue changed during every selection scan")

    def view(self) -> QueueView:
        """The current immutable view (cheap: shared until the queue changes)."""
        return self._view or self._build_view()

    def _select_after(
        self,
        is_eligible: EligibilityCheck,
        view: QueueView,
        first: RequestClass,
        on_time: bool,
        verdict: Eligibility,
    ) -> QueueSelection | Literal[_Restart.RESTART] | None:
        """Go on after the fairest head (root of `first`'s heap) was refused with `verdict`.

        While refusals block the refused head's whole class, ask the fairest head outside the
        blocked classes; after a head refused for another reason, walk on in fair order.
        """
        order = self._order
        version = view.sequence_version
        dead: list[RequestClass] = []
        while type(verdict) is Refusal:
            order.block(dead, verdict.resource, verdict.free)
            if first not in dead:
                break
            fairest = order.fairest(dead)
            if fairest is None:
                return None
            first, on_time = fairest
            slot = (first.on_time if on_time else first.ahead)[0][2]
            item = order.groups[slot].tasks[0].task
            verdict = is_eligible(item, view)
            if self._version != version:
                return _Restart.RESTART
            if verdict:
                return QueueSelection(item, view, version, slot)
        for _, index, slot in order.after(first, on_time, dead):
            item = order.groups[slot].tasks[0].task
            verdict = is_eligible(item, view)
            if self._version != version:
                return _Restart.RESTART
            if verdict:
                return QueueSelection(item, view, version, slot, index)
            if type(verdict) is Refusal:
                order.block(dead, verdict.resource, verdict.free)
        return None

    # -- view and demand bookkeeping --------------------------------------------------------

    def _build_view(self) -> QueueView:
        """A view of now: only chunks of groups changed since the last view are rebuilt."""
        dirty = self._dirty
        if len(dirty) == 1:  # the common case: one commit since the last view
            slot = dirty.pop()
            chunks = self._chunks.copy()
            chunk = list(chunks[slot >> CHUNK_BITS])
            chunk[slot & CHUNK_MASK] = _facts(self._order.groups[slot])
            chunks[slot >> CHUNK_BITS] = tuple(chunk)
            self._chunks = chunks
        elif dirty:
            groups = self._order.groups
            self._chunks = with_entries(self._chunks, [(s, _facts(groups[s])) for s in dirty])
            dirty.clear()
        if self._demand_dirty:
            self._demand_snapshot = dict(self._demand_total)
            self._demand_dirty = False
        if self._shape_dirty:
            order = self._order
            self._shape = QueueShape(
                order.slot_of,
                MappingProxyType(dict(self._groups_with_demand)),
                order.backlogged_weight,
                order.backlogged_groups,
            )
            self._shape_dirty = False
        view = QueueView(
            self._version, self._count, self._demand_snapshot, self._chunks, self._shape
        )
        self._view = view
        return view

    def _add_demand(self, group: QueuedGroup, request: SchedulerResourceRequest) -> None:
        """Count `request` into the queued demand of `group` (before queueing its task)."""
        total = self._demand_total
        for resource, amount in request.amounts.items():
            total[resource] = total.get(resource, 0) + amount
        self._demand_dirty = True
        uniform = group.uniform
        if not group.tasks:
            group.uniform = request
            fresh: Iterable[SchedulerResourceKey] = request.amounts
        elif uniform is not None and (request is uniform or request == uniform):
            return
        else:
            demand = group.demand
            if uniform is not None:  # the group's first task with another request
                queued = len(group.tasks)
                demand.update({r: queued * a for r, a in uniform.amounts.items()})
                group.uniform = None
            fresh = [r for r in request.amounts if not demand.get(r)]
            for resource, amount in request.amounts.items():
                demand[resource] = demand.get(resource, 0) + amount
        with_demand = self._groups_with_demand
        for resource in fresh:
            with_demand[resource] = with_demand.get(resource, 0) + 1
            self._shape_dirty = True

    def _remove_demand(self, group: QueuedGroup, request: SchedulerResourceRequest) -> None:
        """Take a committed task's `request` out of the totals and of `group`'s demand
        (after its removal). A group whose tasks all make one request keeps no demand of its
        own: its entry goes only when it empties."""
        total = self._demand_total
        for resource, amount in request.amounts.items():
            left = total[resource] - amount
            if left:
                total[resource] = left
            else:
                del total[resource]
        self._demand_dirty = True
        if group.uniform is not None:
            if group.tasks:
                return
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


def _facts(group: QueuedGroup) -> GroupQueueFacts | None:
    """The immutable view entry of one group (None when it has nothing queued)."""
    tasks = group.tasks
    if not tasks:
        return None
    demand = None if group.uniform is not None else dict(group.demand)
    return GroupQueueFacts(group.spec, len(tasks), demand, tasks[0].task)
