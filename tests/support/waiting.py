"""Wait for a condition itself, woken by the code under test, instead of counting loop turns.

A test says what it waits for (`await progress.wait_until(lambda: admission.waiters_total()
== 3)`); the predicate is re-checked each time the code reports something: an event reaching a
`NotifyingSink`, a timer armed on a `WatchedClock`, a watched task ending, or a fake client
calling `progress.notify()`. Nothing sleeps and nothing polls: a predicate that no report can
make true fails after DEADLOCK_GUARD_SECONDS of real time (a deadlock guard, not synchronisation),
naming what it waited for. So a new `await` inside the code delays the wake-up instead of
silently turning a test's "after N loop turns" into "before it happened".
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from rowloom.clock import ManualClock, TimerHandle

T = TypeVar("T")

DEADLOCK_GUARD_SECONDS = 10.0


class Progress:
    """Wakes every `wait_until` whenever the code under test reports something."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []
        self.reports = 0

    def notify(self, *_: object) -> None:
        """Something happened: let every waiter re-check its predicate."""
        self.reports += 1
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def watch(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        """Report when `task` ends (returns it, so `progress.watch(create_task(...))`)."""
        task.add_done_callback(self.notify)
        return task

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """`asyncio.create_task(coro)`, watched."""
        return self.watch(asyncio.create_task(coro))

    async def wait_until(self, predicate: Callable[[], bool], *, what: str = "") -> None:
        """Return once `predicate()` holds, re-checking it at every report."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(DEADLOCK_GUARD_SECONDS):
                while not predicate():
                    fut: asyncio.Future[None] = loop.create_future()
                    self._waiters.append(fut)
                    await fut
        except TimeoutError:
            raise AssertionError(
                f"never happened: {what or getattr(predicate, '__name__', 'the condition')}"
            ) from None


class NotifyingSink:
    """An event sink that keeps the events, counts their kinds and reports each one."""

    def __init__(self, progress: Progress, inner: Any = None) -> None:
        self.progress = progress
        self.inner = inner
        self.events: list[Any] = []
        self.counts: Counter[str] = Counter()

    def emit(self, event: Any) -> None:
        self.events.append(event)
        self.counts[event.event_kind] += 1
        if self.inner is not None:
            self.inner.emit(event)
        self.progress.notify()

    def kinds(self) -> list[str]:
        return [e.event_kind for e in self.events]

    def of_kind(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.event_kind == kind]

    def flush(self) -> None:
        if self.inner is not None and hasattr(self.inner, "flush"):
            self.inner.flush()

    def close(self) -> None:
        if self.inner is not None and hasattr(self.inner, "close"):
            self.inner.close()


class WatchedClock(ManualClock):
    """A ManualClock that reports every timer armed on it and lists the pending deadlines."""

    def __init__(self, progress: Progress, start: float = 1000.0) -> None:
        super().__init__(start)
        self.progress = progress

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        handle = super().call_at(when, callback)
        self.progress.notify()
        return handle

    def deadlines(self) -> list[float]:
        """Deadlines of the timers not yet fired or cancelled, soonest first."""
        return sorted(when for when, _, timer in self._timers if not timer.cancelled)

    def armed_at(self, when: float) -> int:
        """How many pending timers fire at exactly `when`."""
        return sum(1 for d in self.deadlines() if abs(d - when) < 1e-9)
