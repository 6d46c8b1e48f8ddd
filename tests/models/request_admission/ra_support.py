"""Shared helpers for request-admission tests: a ManualClock-driven controller and its events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.waiting import NotifyingSink, Progress, WatchedClock

from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestAdmissionDenied,
    RequestAdmissionItem,
    RequestAdmissionLease,
    RequestDomain,
    RequestEventContext,
    RequestReleaseOutcome,
    RequestResourceKey,
)
from rowloom.models.resources import ProviderModelKey
from rowloom.observability.events import RequestAdmissionEvent, RequestEventEmitter

PM = ProviderModelKey("prov", "model-a")
OTHER_PM = ProviderModelKey("prov", "model-b")
CHAT = RequestResourceKey(PM, RequestDomain.CHAT)
EMBED = RequestResourceKey(PM, RequestDomain.EMBEDDING)
OTHER_CHAT = RequestResourceKey(OTHER_PM, RequestDomain.CHAT)


@dataclass
class Harness:
    """A controller on a WatchedClock whose events reach a NotifyingSink: a test waits for the
    state it needs (`start_waiter`, `granted`, `ended`), never for a number of loop turns. A
    state that must NOT have changed is asserted at once: the controller grants, times out and
    cancels waiters synchronously (in `release`, in `advance`'s timers), so a wrong grant would
    already show in `waiters_total()` and the event counts."""

    clock: WatchedClock
    sink: NotifyingSink
    controller: AdaptiveRequestAdmissionController
    progress: Progress
    events: bool = True

    def kinds(self) -> list[str]:
        return self.sink.kinds()

    def of_kind(self, kind: str) -> list[RequestAdmissionEvent]:
        return self.sink.of_kind(kind)

    async def start_waiter(self, item: RequestAdmissionItem) -> asyncio.Task[RequestAdmissionLease]:
        """Start `acquire_async(item)` and wait until it waits in the queue (or finished)."""
        assert self.events, "the controller's events are what wakes the wait"
        waiting = self.controller.waiters_total()
        task = self.progress.spawn(self.controller.acquire_async(item))
        await self.progress.wait_until(
            lambda: task.done() or self.controller.waiters_total() > waiting,
            what="the acquire to wait in the queue or finish",
        )
        return task

    async def ended(self, *tasks: asyncio.Task[Any]) -> None:
        """Wait until every task ended (granted, refused or cancelled)."""
        await self.progress.wait_until(lambda: all(t.done() for t in tasks), what="tasks ended")

    async def granted(self, task: asyncio.Task[RequestAdmissionLease]) -> RequestAdmissionLease:
        """Wait for the task's lease (its exception if it was refused)."""
        await self.ended(task)
        return task.result()


async def next_granted(
    h: Harness, tasks: list[asyncio.Task[RequestAdmissionLease]]
) -> tuple[RequestAdmissionLease, list[asyncio.Task[RequestAdmissionLease]]]:
    """Wait for the next waiter to get its lease: (that lease, the tasks still waiting)."""
    await h.progress.wait_until(lambda: any(t.done() for t in tasks), what="a waiter granted")
    done = next(t for t in tasks if t.done())
    return done.result(), [t for t in tasks if t is not done]


def item(
    resource: RequestResourceKey = CHAT,
    *,
    weight: int = 1,
    timeout: float | None = None,
    attempt: str | None = None,
) -> RequestAdmissionItem:
    ctx = RequestEventContext({"run_id": "run-1"}, "task-exec-1", attempt) if attempt else None
    return RequestAdmissionItem.for_resource(
        resource, weight=weight, timeout=timeout, event_context=ctx
    )


OK = RequestReleaseOutcome.success()


def lease_of(decision: object) -> RequestAdmissionLease:
    """The decision, asserted to be a lease."""
    assert isinstance(decision, RequestAdmissionLease), decision
    return decision


def denial_of(decision: object) -> RequestAdmissionDenied:
    """The decision, asserted to be a denial."""
    assert isinstance(decision, RequestAdmissionDenied), decision
    return decision


MakeHarness = Callable[..., Harness]


def harness_factory() -> MakeHarness:
    """Build a controller over PM (chat, embedding) and OTHER_PM (chat) with a ManualClock.

    PM and OTHER_PM share the provider `prov`; its learned provider limit is off unless a
    test passes `provider_limits=True`, so per-resource rules are tested on their own.
    """

    def _make(
        *,
        cap: int = 4,
        other_cap: int = 4,
        initial: dict[RequestResourceKey, int] | None = None,
        clamps: dict[RequestResourceKey, int] | None = None,
        resources: tuple[RequestResourceKey, ...] = (CHAT, EMBED, OTHER_CHAT),
        events: bool = True,
        **kwargs: Any,
    ) -> Harness:
        kwargs.setdefault("provider_limits", False)
        progress = Progress()
        clock = WatchedClock(progress)
        sink = NotifyingSink(progress)
        config = RequestAdmissionConfig(
            static_caps={PM: cap, OTHER_PM: other_cap},
            resources=resources,
            initial_limits=initial or {},
            max_limit_clamps=clamps or {},
            **kwargs,
        )
        emitter = RequestEventEmitter(sink if events else None, clock.monotonic)
        controller = AdaptiveRequestAdmissionController(config, clock=clock, events=emitter)
        return Harness(clock, sink, controller, progress, events)

    return _make
