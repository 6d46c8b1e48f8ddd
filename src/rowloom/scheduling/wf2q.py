"""The WF2Q+ core of the ready queue: virtual time, per-group tags, heaps per request class.

Weighted fair queuing over groups with unit-cost tasks (WF2Q+): each backlogged group has a
virtual start tag S and finish tag F = S + 1/weight for its head task. The system virtual time
V advances by 1/(sum of backlogged weights) per served task. A group is *on time* when
S <= V; the next task comes from the on-time group with the smallest F (ties: oldest head task
first), then, only if no on-time group is eligible, from the other groups by smallest S (work
conserving). Inside a group tasks are FIFO. With equal weights this is round robin; with all
groups continuously backlogged each group's count after any prefix stays within one task of
its weighted share.

Backlogged groups are kept in *request classes*, one per distinct resource request of their
head task (there are very few). Each class has its own pair of heaps (on time, by F; ahead, by
S) under the one V, so the global fair order is the merge of the classes' orders and a class
whose request cannot be met is skipped whole. A heap entry is `(tag, head sequence, slot)`:
entries are unique, so the order is total and deterministic.

`FairOrder` holds this state and answers "in which order are the heads due?"; it knows
nothing of task ids, demand views or eligibility (`FairTaskQueue` owns those).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Final, TypeAlias

from rowloom.scheduling.resources import (
    SchedulableTask,
    SchedulerResourceKey,
    SchedulerResourceRequest,
    TaskGroupKey,
    TaskGroupSpec,
)

_EPS: Final = 1e-9

HeapEntry: TypeAlias = tuple[float, int, int]
"""`(tag, head task sequence, group slot)`: F in an on-time heap, S in an ahead heap."""


class RequestClass:
    """Backlogged groups whose head task makes one resource request."""

    __slots__ = ("ahead", "amounts", "backlogged", "on_time")

    def __init__(self, request: SchedulerResourceRequest) -> None:
        self.amounts = dict(request.amounts)
        self.on_time: list[HeapEntry] = []  # groups with S <= V, by F
        self.ahead: list[HeapEntry] = []  # groups with S > V, by S
        self.backlogged = 0  # groups in this class

    def needs_more_than(self, resource: SchedulerResourceKey, free: int) -> bool:
        """True when this class's request needs more than `free` units of `resource`."""
        return self.amounts.get(resource, 0) > free


class QueuedTask:
    """One queued task, with its enqueue sequence (FIFO order, heap ties) and request class."""

    __slots__ = ("request_class", "sequence", "task")

    def __init__(self, sequence: int, task: SchedulableTask, request_class: RequestClass) -> None:
        self.sequence = sequence
        self.task = task
        self.request_class = request_class


class QueuedGroup:
    """One group's queued tasks, WF2Q+ tags and place in the heaps (plus its queued demand).

    `uniform` is the request every queued task makes (then `demand` is unused), or None once
    tasks with different requests were queued (then `demand` holds the queued units).
    """

    __slots__ = (
        "demand",
        "finish",
        "inv_weight",
        "on_time",
        "request_class",
        "slot",
        "spec",
        "start",
        "tasks",
        "uniform",
    )

    def __init__(self, spec: TaskGroupSpec, slot: int) -> None:
        self.spec = spec
        self.slot = slot
        self.inv_weight = 1.0 / spec.weight
        self.tasks: deque[QueuedTask] = deque()
        self.uniform: SchedulerResourceRequest | None = None
        self.demand: dict[SchedulerResourceKey, int] = {}
        self.start = 0.0
        self.finish = float("-inf")
        self.on_time = False  # which heap of `request_class` holds it, while backlogged
        self.request_class: RequestClass | None = None  # its head's class while backlogged


class FairOrder:
    """Virtual time, groups and the per-class heaps (see the module docstring)."""

    def __init__(self) -> None:
        self.groups: list[QueuedGroup] = []  # by slot
        self.slot_of: dict[TaskGroupKey, int] = {}  # replaced (never mutated) on a new group
        self.live: list[RequestClass] = []  # classes with backlogged groups
        self.backlogged_weight = 0
        self.backlogged_groups = 0
        self._classes: dict[SchedulerResourceRequest, RequestClass] = {}
        self._last: tuple[SchedulerResourceRequest | None, RequestClass | None] = (None, None)
        self._vtime = 0.0
        self._on_time_groups = 0
        self._ahead_groups = 0

    # -- groups and classes -------------------------------------------------------------------

    def group(self, spec: TaskGroupSpec) -> tuple[QueuedGroup, bool]:
        """`spec`'s group, and whether it was just created."""
        slot = self.slot_of.get(spec.key)
        if slot is not None:
            return self.groups[slot], False
        group = QueuedGroup(spec, len(self.groups))
        self.groups.append(group)
        self.slot_of = {**self.slot_of, spec.key: group.slot}  # views keep the old map
        return group, True

    def request_class(self, request: SchedulerResourceRequest) -> RequestClass:
        """The class of `request` (equal requests share one), created on first use."""
        last_request, last_class = self._last
        if request is last_request and last_class is not None:
            return last_class
        request_class = self._classes.get(request)
        if request_class is None:
            request_class = self._classes[request] = RequestClass(request)
        self._last = (request, request_class)
        return request_class

    def block(self, dead: list[RequestClass], resource: SchedulerResourceKey, free: int) -> None:
        """Add to `dead` every live class whose request needs more than `free` of `resource`."""
        for request_class in self.live:
            if request_class.needs_more_than(resource, free) and request_class not in dead:
                dead.append(request_class)

    # -- the order ----------------------------------------------------------------------------

    def fairest(self, dead: Sequence[RequestClass] = ()) -> tuple[RequestClass, bool] | None:
        """The class whose heap root is the fairest head outside `dead`, and whether that
        root is on time; None when every live class is dead."""
        live = self.live
        if not dead and len(live) == 1:
            only = live[0]
            return only, bool(only.on_time)
        best: RequestClass | None = None
        for request_class in live:
            heap = request_class.on_time
            if heap and (best is None or heap[0] < best.on_time[0]) and request_class not in dead:
                best = request_class
        if best is not None:
            return best, True
        for request_class in live:
            heap = request_class.ahead
            if heap and (best is None or heap[0] < best.ahead[0]) and request_class not in dead:
                best = request_class
        return None if best is None else (best, False)

    def after(
        self, first: RequestClass, on_time: bool, dead: list[RequestClass]
    ) -> Iterator[tuple[RequestClass, int, int]]:
        """The heads due after the refused root of `first`'s heap, in fair order.

        Yields `(class, index in its heap, group slot)`. A best-first merge over the classes'
        heaps without popping, on-time heaps first, then the ahead heaps (work conserving);
        each visited group costs O(log visited). Classes the caller adds to `dead` between
        steps are dropped whole: their groups are neither yielded nor walked.
        """
        frontier: list[tuple[HeapEntry, int, RequestClass]] = []
        last: tuple[RequestClass, int] | None = (first, 0)
        for phase_on_time in (True, False) if on_time else (False,):
            for request_class in self.live:
                heap = request_class.on_time if phase_on_time else request_class.ahead
                if heap and request_class is not first and request_class not in dead:
                    heapq.heappush(frontier, (heap[0], 0, request_class))
            while True:
                if last is not None:
                    _push_children(frontier, last[0], phase_on_time, last[1], dead)
                    last = None
                while frontier and frontier[0][2] in dead:
                    heapq.heappop(frontier)
                if not frontier:
                    break
                entry, index, request_class = heapq.heappop(frontier)
                yield request_class, index, entry[2]
                last = (request_class, index)
            first = _NO_CLASS  # the ahead phase starts from every class's root

    # -- changes ------------------------------------------------------------------------------

    def push(self, group: QueuedGroup, queued: QueuedTask) -> None:
        """Queue `queued` at the tail of `group` (call `catch_up` after a batch)."""
        group.tasks.append(queued)
        if group.request_class is None:
            self._activate(group)

    def _activate(self, group: QueuedGroup) -> None:
        """`group` just became backlogged: tag its head and put it in its class's heaps."""
        group.start = max(self._vtime, group.finish)
        group.finish = group.start + group.inv_weight
        self.backlogged_weight += group.spec.weight
        self.backlogged_groups += 1
        head = group.tasks[0]
        request_class = group.request_class = head.request_class
        self._join(request_class)
        if group.start <= self._vtime + _EPS:
            group.on_time = True
            self._on_time_groups += 1
            heapq.heappush(request_class.on_time, (group.finish, head.sequence, group.slot))
        else:
            group.on_time = False
            self._ahead_groups += 1
            heapq.heappush(request_class.ahead, (group.start, head.sequence, group.slot))

    def catch_up(self) -> None:
        """Advance V to the earliest start when nothing is on time; move due groups on time."""
        if not self._ahead_groups:
            return
        if not self._on_time_groups:
            earliest = min(c.ahead[0][0] for c in self.live if c.ahead)
            if earliest > self._vtime:
                self._vtime = earliest
        limit = self._vtime + _EPS
        groups = self.groups
        for request_class in self.live:
            ahead = request_class.ahead
            while ahead and ahead[0][0] <= limit:
                _, sequence, slot = heapq.heappop(ahead)
                group = groups[slot]
                group.on_time = True
                self._on_time_groups += 1
                self._ahead_groups -= 1
                heapq.heappush(request_class.on_time, (group.finish, sequence, slot))

    def served(self, group: QueuedGroup, index: int) -> None:
        """`group`'s head task was just removed: advance V, retag the group, move it.

        `index` is a hint: where `group` sat in its heap when it was selected.
        """
        request_class = group.request_class
        assert request_class is not None
        was_on_time = group.on_time
        heap = request_class.on_time if was_on_time else request_class.ahead
        if index >= len(heap) or heap[index][2] != group.slot:
            index = _index_of(heap, group.slot)
        self._vtime = vtime = self._vtime + 1.0 / self.backlogged_weight
        limit = vtime + _EPS
        group.start = group.finish
        if group.tasks:
            self._retag(group, request_class, heap, index, limit)
        else:
            self._deactivate(group, request_class, heap, index)
        if self._ahead_groups:
            if not self._on_time_groups:
                self.catch_up()
                return
            for live in self.live:
                ahead = live.ahead
                if ahead and ahead[0][0] <= limit:
                    self.catch_up()
                    return

    def _retag(
        self,
        group: QueuedGroup,
        request_class: RequestClass,
        heap: list[HeapEntry],
        index: int,
        limit: float,
    ) -> None:
        """Give a still-backlogged `group` its next head's tags and heap (`heap[index]` now)."""
        head = group.tasks[0]
        head_class = head.request_class
        start, slot = group.start, group.slot
        group.finish = finish = start + group.inv_weight
        was_on_time = group.on_time
        if start <= limit:
            if not was_on_time:
                self._on_time_groups += 1
                self._ahead_groups -= 1
            group.on_time = True
            _heap_move(heap, index, head_class.on_time, (finish, head.sequence, slot))
        else:
            group.on_time = False
            if was_on_time:
                self._on_time_groups -= 1
                self._ahead_groups += 1
            entry = (start, head.sequence, slot)
            if not (
                was_on_time
                and index == 0
                and head_class is request_class
                and self._swap_due(request_class, entry, limit)
            ):
                _heap_move(heap, index, head_class.ahead, entry)
        if head_class is not request_class:
            self._leave(request_class)
            self._join(head_class)
            group.request_class = head_class

    def _swap_due(self, request_class: RequestClass, entry: HeapEntry, limit: float) -> bool:
        """The served group (root of the class's on-time heap) goes ahead as `entry`, and the
        earliest due group of the class's ahead heap takes its place. False: nobody is due."""
        ahead = request_class.ahead
        if not ahead or ahead[0][0] > limit:
            return False
        _, due_sequence, due_slot = heapq.heapreplace(ahead, entry)
        due = self.groups[due_slot]
        due.on_time = True
        heapq.heapreplace(request_class.on_time, (due.finish, due_sequence, due_slot))
        self._on_time_groups += 1
        self._ahead_groups -= 1
        return True

    def _deactivate(
        self, group: QueuedGroup, request_class: RequestClass, heap: list[HeapEntry], index: int
    ) -> None:
        """`group` emptied: out of its heap and class; its finish tag stays (no banked credit)."""
        _heap_remove(heap, index)
        if group.on_time:
            self._on_time_groups -= 1
        else:
            self._ahead_groups -= 1
        self._leave(request_class)
        group.request_class = None
        group.on_time = False
        self.backlogged_weight -= group.spec.weight
        self.backlogged_groups -= 1

    def _join(self, request_class: RequestClass) -> None:
        request_class.backlogged += 1
        if request_class.backlogged == 1:
            self.live.append(request_class)

    def _leave(self, request_class: RequestClass) -> None:
        request_class.backlogged -= 1
        if not request_class.backlogged:
            self.live.remove(request_class)


_NO_CLASS: Final = RequestClass(SchedulerResourceRequest({}))


def _push_children(
    frontier: list[tuple[HeapEntry, int, RequestClass]],
    request_class: RequestClass,
    on_time: bool,
    index: int,
    dead: Sequence[RequestClass],
) -> None:
    """Put the children of `heap[index]` on the merge frontier (unless the class is dead)."""
    if request_class in dead:
        return
    heap = request_class.on_time if on_time else request_class.ahead
    child = 2 * index + 1
    size = len(heap)
    if child < size:
        heapq.heappush(frontier, (heap[child], child, request_class))
        if child + 1 < size:
            heapq.heappush(frontier, (heap[child + 1], child + 1, request_class))


def _heap_move(
    heap: list[HeapEntry], index: int, target: list[HeapEntry], entry: HeapEntry
) -> None:
    """Remove `heap[index]` and push `entry` onto `target` (one sift when they coincide)."""
    if target is heap and index == 0:
        heapq.heapreplace(heap, entry)
    else:
        _heap_remove(heap, index)
        heapq.heappush(target, entry)


def _index_of(heap: list[HeapEntry], slot: int) -> int:
    """The index of group `slot` in `heap` (a linear search: the caller's hint was stale)."""
    for index, entry in enumerate(heap):
        if entry[2] == slot:
            return index
    raise AssertionError("a backlogged group is missing from its heap")


def _heap_remove(heap: list[HeapEntry], index: int) -> None:
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
