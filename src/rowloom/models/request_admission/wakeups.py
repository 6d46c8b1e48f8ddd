"""`WaiterWakeups`: one clock timer at the earliest instant a queued waiter's fate changes.

Those instants are queue-wait deadlines and resource changes that come with time alone
(cooldown end, startup-ramp step). There is never more than one timer, and none while nobody
waits, so an idle controller schedules nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from rowloom.clock import Clock, TimerHandle
from rowloom.models.request_admission.queue import RequestFairQueue, RequestWaiter


class WaiterWakeups:
    """Queue-wait deadlines plus the single wake-up timer that serves them."""

    __slots__ = ("_callback", "_clock", "_deadlines", "_queue", "_timer", "_timer_at")

    def __init__(self, clock: Clock, queue: RequestFairQueue, callback: Callable[[], None]) -> None:
        self._clock = clock
        self._queue = queue
        self._callback = callback
        self._deadlines: list[tuple[float, int, RequestWaiter]] = []
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None

    def add_deadline(self, waiter: RequestWaiter) -> None:
        if waiter.deadline is not None:
            heapq.heappush(self._deadlines, (waiter.deadline, waiter.waiter_id, waiter))

    def expired(self, now: float) -> list[RequestWaiter]:
        """Waiters still queued whose deadline is at or before `now` (they stay queued)."""
        out = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, waiter_id, waiter = heapq.heappop(self._deadlines)
            if waiter_id in self._queue:
                out.append(waiter)
        return out

    def fired(self) -> None:
        """The timer ran: forget it (the caller re-arms)."""
        self._timer = None
        self._timer_at = None

    def rearm(self, resource_change_at: float | None) -> None:
        """Keep one timer at min(earliest live deadline, `resource_change_at`); none if idle."""
        if not self._queue:
            self.stop()
            return
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in self._queue:
            heapq.heappop(deadlines)
        earliest = deadlines[0][0] if deadlines else None
        if resource_change_at is not None and (earliest is None or resource_change_at < earliest):
            earliest = resource_change_at
        if earliest is None:
            self._cancel()
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= earliest:
            return  # an earlier timer will fire and re-arm
        self._cancel()
        self._timer_at = earliest
        self._timer = self._clock.call_at(earliest, self._callback)

    def stop(self) -> None:
        """Drop every deadline and the timer."""
        self._deadlines.clear()
        self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None
