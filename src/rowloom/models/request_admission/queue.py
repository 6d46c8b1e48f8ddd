"""`RequestFairQueue`: the order in which request waiters are granted.

Weighted fair across request groups (start-time fair queuing: equal weights take turns, a group
of weight 2 is served twice as often), FIFO inside a group, oldest head first on ties. Like the
task queue, `select_next` is pure and `commit` is the only removal besides `remove` (a waiter
that left: cancelled, timed out, shut down). The queue knows nothing of limits or cooldowns:
eligibility comes from the caller.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from rowloom.models.request_admission.resources import RequestAdmissionItem, RequestResourceKey
from rowloom.models.resources import ProviderModelKey

if TYPE_CHECKING:
    from rowloom.models.request_admission.decisions import RequestAdmissionLease


@dataclass(frozen=True, slots=True)
class RequestWaiter:
    """One blocked acquire call.

    `completion` is the waiter's own completion handle: it receives this waiter's lease, or a
    `RequestAdmissionError`, and is cancelled when the waiting coroutine is cancelled.
    `deadline` is the monotonic queue-wait deadline (None: no timeout).
    """

    waiter_id: int
    item: RequestAdmissionItem
    enqueued_at: float
    deadline: float | None
    completion: asyncio.Future[RequestAdmissionLease]


@dataclass(frozen=True, slots=True)
class RequestQueueView:
    """Raw queued facts (no eligibility, no limits): totals by group, resource and endpoint."""

    queued_total: int
    queued_by_group: Mapping[RequestResourceKey, int]
    queued_by_resource: Mapping[RequestResourceKey, int]
    queued_by_provider_model: Mapping[ProviderModelKey, int]


@dataclass(frozen=True, slots=True)
class RequestQueueSelection:
    """The next eligible waiter, for `commit`; stale once the queue changed."""

    waiter: RequestWaiter
    item: RequestAdmissionItem
    waiter_id: int
    queue_view: RequestQueueView
    sequence_version: int


class _Group:
    __slots__ = ("entries", "key", "last_finish", "weight")

    def __init__(self, key: RequestResourceKey, weight: int) -> None:
        self.key = key
        self.weight = weight
        self.entries: deque[tuple[int, RequestWaiter]] = deque()
        self.last_finish = 0.0


_EMPTY_VIEW: Final = RequestQueueView(
    0, MappingProxyType({}), MappingProxyType({}), MappingProxyType({})
)


class RequestFairQueue:
    """Weighted fair ordering of request waiters; `select_next` pure, `commit` removes.

    Not thread-safe: use it from one event loop. Cost of `select_next` is proportional to the
    number of non-empty groups, not to the number of waiters.
    """

    def __init__(self) -> None:
        self._groups: dict[RequestResourceKey, _Group] = {}
        self._active: dict[RequestResourceKey, _Group] = {}
        self._members: dict[int, tuple[int, RequestWaiter]] = {}
        self._by_group: dict[RequestResourceKey, int] = {}
        self._by_resource: dict[RequestResourceKey, int] = {}
        self._by_pm: dict[ProviderModelKey, int] = {}
        self._arrivals = itertools.count()
        self._vtime = 0.0
        self._version = 0
        self._view: RequestQueueView | None = _EMPTY_VIEW

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, waiter_id: object) -> bool:
        return waiter_id in self._members

    @property
    def sequence_version(self) -> int:
        """Changes on every enqueue, commit and remove."""
        return self._version

    def queued_for_resource(self, resource: RequestResourceKey) -> int:
        return self._by_resource.get(resource, 0)

    def queued_for_provider_model(self, provider_model: ProviderModelKey) -> int:
        return self._by_pm.get(provider_model, 0)

    def resources(self) -> tuple[RequestResourceKey, ...]:
        """Resources with at least one queued waiter."""
        return tuple(self._by_resource)

    def waiters(self) -> tuple[RequestWaiter, ...]:
        """Every queued waiter in arrival order."""
        return tuple(w for _, w in sorted(self._members.values(), key=lambda e: e[0]))

    def enqueue(self, waiter: RequestWaiter) -> bool:
        """Queue `waiter` at the tail of its group; False if its id is already queued."""
        if waiter.waiter_id in self._members:
            return False
        item = waiter.item
        group = self._groups.get(item.group.key)
        if group is None:
            group = self._groups[item.group.key] = _Group(item.group.key, item.group.weight)
        group.weight = item.group.weight
        entry = (next(self._arrivals), waiter)
        group.entries.append(entry)
        self._active[group.key] = group
        self._members[waiter.waiter_id] = entry
        self._count(item, +1)
        return True

    def select_next(
        self, is_eligible: Callable[[RequestAdmissionItem], bool]
    ) -> RequestQueueSelection | None:
        """The eligible group head with the smallest virtual finish tag (oldest on ties).

        Pure: no removal, no virtual-time change. `is_eligible` sees each candidate head at
        most once and only heads that would beat the best candidate found so far.
        """
        best: tuple[float, int] | None = None
        chosen: RequestWaiter | None = None
        for group in self._active.values():
            arrival, waiter = group.entries[0]
            rank = (self._finish_tag(group), arrival)
            if best is not None and rank >= best:
                continue
            if not is_eligible(waiter.item):
                continue
            best, chosen = rank, waiter
        if chosen is None:
            return None
        return RequestQueueSelection(
            chosen, chosen.item, chosen.waiter_id, self.view(), self._version
        )

    def commit(self, selection: RequestQueueSelection) -> RequestWaiter | None:
        """Remove the selected waiter; None (and no change) if the queue changed since."""
        if selection.sequence_version != self._version:
            return None
        waiter = selection.waiter
        group = self._groups[waiter.item.group.key]
        start = max(self._vtime, group.last_finish)
        self._vtime = start
        group.last_finish = start + 1.0 / group.weight
        group.entries.popleft()
        del self._members[waiter.waiter_id]
        self._count(waiter.item, -1)
        self._drop_dead_heads(group)
        return waiter

    def remove(self, waiter_id: int) -> RequestWaiter | None:
        """Take a waiter out wherever it is (it left the queue); None if it is not queued."""
        entry = self._members.pop(waiter_id, None)
        if entry is None:
            return None
        waiter = entry[1]
        self._count(waiter.item, -1)
        self._drop_dead_heads(self._groups[waiter.item.group.key])
        return waiter

    def view(self) -> RequestQueueView:
        """Queued totals; built from counters (never by scanning waiters), cached per version."""
        if self._view is None:
            self._view = RequestQueueView(
                len(self._members),
                MappingProxyType(dict(self._by_group)),
                MappingProxyType(dict(self._by_resource)),
                MappingProxyType(dict(self._by_pm)),
            )
        return self._view

    # -- internals -----------------------------------------------------------------------

    def _finish_tag(self, group: _Group) -> float:
        return max(self._vtime, group.last_finish) + 1.0 / group.weight

    def _drop_dead_heads(self, group: _Group) -> None:
        entries = group.entries
        while entries:
            arrival, waiter = entries[0]
            live = self._members.get(waiter.waiter_id)
            if live is not None and live[0] == arrival:
                return
            entries.popleft()
        self._active.pop(group.key, None)

    def _count(self, item: RequestAdmissionItem, delta: int) -> None:
        self._version += 1
        self._view = None
        for counts, key in (
            (self._by_group, item.group.key),
            (self._by_resource, item.resource),
        ):
            value = counts.get(key, 0) + delta
            if value:
                counts[key] = value
            else:
                del counts[key]
        pm = item.resource.provider_model
        value = self._by_pm.get(pm, 0) + delta
        if value:
            self._by_pm[pm] = value
        else:
            del self._by_pm[pm]
