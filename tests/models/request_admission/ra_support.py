"""Shared helpers for request-admission tests: a ManualClock-driven controller and its events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rowloom.clock import ManualClock
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
from rowloom.observability.sinks import InMemoryEventSink

PM = ProviderModelKey("prov", "model-a")
OTHER_PM = ProviderModelKey("prov", "model-b")
CHAT = RequestResourceKey(PM, RequestDomain.CHAT)
EMBED = RequestResourceKey(PM, RequestDomain.EMBEDDING)
OTHER_CHAT = RequestResourceKey(OTHER_PM, RequestDomain.CHAT)


async def settle(rounds: int = 5) -> None:
    """Yield to the loop so scheduled callbacks and woken tasks run (not a timing wait)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@dataclass
class Harness:
    clock: ManualClock
    sink: InMemoryEventSink[Any]
    controller: AdaptiveRequestAdmissionController

    def kinds(self) -> list[str]:
        return self.sink.kinds()

    def of_kind(self, kind: str) -> list[RequestAdmissionEvent]:
        return self.sink.of_kind(kind)

    async def start_waiter(self, item: RequestAdmissionItem) -> asyncio.Task[RequestAdmissionLease]:
        """Start `acquire_async(item)` and let it reach its wait (or finish at once)."""
        task = asyncio.create_task(self.controller.acquire_async(item))
        await settle()
        return task


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
        clock = ManualClock()
        sink: InMemoryEventSink[Any] = InMemoryEventSink()
        config = RequestAdmissionConfig(
            static_caps={PM: cap, OTHER_PM: other_cap},
            resources=resources,
            initial_limits=initial or {},
            max_limit_clamps=clamps or {},
            **kwargs,
        )
        emitter = RequestEventEmitter(sink if events else None, clock.monotonic)
        controller = AdaptiveRequestAdmissionController(config, clock=clock, events=emitter)
        return Harness(clock, sink, controller)

    return _make
