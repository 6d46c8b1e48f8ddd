"""Injectable monotonic clocks: the only source of time for timed runtime logic.

`SystemClock` reads `time.monotonic` and schedules timers on the running event loop.
`ManualClock` is driven by tests: time moves only when `advance()` is called, and timers fire
in deadline order as it passes them, so timed behaviour is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled before it fires."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time plus one-shot timers."""

    def monotonic(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...


class SystemClock:
    """`time.monotonic` with timers on the running asyncio loop."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - time.monotonic()), callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that only moves when told to; timers fire synchronously inside `advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._counter = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._counter), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every due timer in deadline order."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            if not timer.cancelled:
                timer.callback()
        self._now = target

    @property
    def pending_timers(self) -> int:
        """Number of timers not yet fired or cancelled."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)


async def sleep_until(clock: Clock, deadline: float) -> None:
    """Wait until `clock` reaches `deadline` (a timer on the clock; cancellation safe)."""
    if clock.monotonic() >= deadline:
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def fire() -> None:
        if not done.done():
            done.set_result(None)

    handle = clock.call_at(deadline, fire)
    try:
        await done
    finally:
        handle.cancel()
