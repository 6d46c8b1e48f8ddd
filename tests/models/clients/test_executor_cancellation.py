"""Cancelling a cell's task while its request is on the wire: the request lease is released
exactly once, no waiter is left, and the HTTP connection goes back to the pool (a pool of ONE
connection serves the next call). Real HTTP: OpenAICompatibleClient -> MockProviderServer on
127.0.0.1; the server's latency runs on the same ManualClock, so the first call stays in flight
until it is cancelled. Nothing sleeps: each step waits for the state it needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from tests.support.waiting import NotifyingSink, Progress, WatchedClock

from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.models.clients.base import ChatResponse
from rowloom.models.clients.model_request_executor import ModelRequestExecutor
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog
from rowloom.observability.events import RequestEventEmitter
from rowloom.simulation.server import MockProviderServer, MockServerOptions

MESSAGES = [{"role": "user", "content": "Write about volcanoes."}]


@dataclass
class Rig:
    progress: Progress
    clock: WatchedClock
    server: MockProviderServer
    admission: AdaptiveRequestAdmissionController
    executor: ModelRequestExecutor
    sink: NotifyingSink

    def chat(self) -> asyncio.Task[ChatResponse]:
        return self.progress.spawn(self.executor.execute_chat("m", MESSAGES))

    async def server_sees(self, in_flight: int, cancelled: int = 0) -> None:
        """Wait (on the server's own condition) for its in-flight and cancelled counts."""
        async with asyncio.timeout(10):  # a deadlock guard, not synchronisation
            await self.server.capacity_model.wait_until(
                lambda s: s.in_flight == in_flight and s.cancelled == cancelled
            )


@asynccontextmanager
async def rig(connections: int = 1) -> AsyncIterator[Rig]:
    progress = Progress()
    clock = WatchedClock(progress)
    options = MockServerOptions(port=0, capacity=4, latency_ms=1000.0, models=("m",))
    async with MockProviderServer(options, clock=clock) as server:
        catalog = ModelResourceCatalog(
            [ModelConfig(alias="m", model="m", provider="p", max_parallel_requests=2)],
            [ModelProvider(name="p", provider_type="openai", endpoint=server.url)],
        )
        sink = NotifyingSink(progress)
        events = RequestEventEmitter(sink, clock.monotonic)
        admission = AdaptiveRequestAdmissionController(
            RequestAdmissionConfig.from_catalog(catalog), clock=clock, events=events
        )
        client = OpenAICompatibleClient("p", server.url, max_connections=connections)
        executor = ModelRequestExecutor(
            resolver=RequestResourceResolver(catalog),
            clients={"p": client},
            admission=admission,
            events=events,
            clock=clock,
        )
        try:
            yield Rig(progress, clock, server, admission, executor, sink)
        finally:
            await client.aclose()
            admission.shutdown()


async def test_cancelling_a_call_on_the_wire_releases_its_lease_once_and_its_connection() -> None:
    async with rig() as r:
        first = r.chat()
        await r.server_sees(in_flight=1)
        (acquired,) = r.sink.of_kind("request_lease_acquired")
        assert r.admission.in_flight_total() == 1

        first.cancel()
        await r.progress.wait_until(first.done, what="the cancelled call ended")
        assert first.cancelled()
        released = r.sink.of_kind("request_lease_released")
        assert [e.request_lease_id for e in released] == [acquired.request_lease_id]
        assert r.sink.counts["request_release_diagnostic"] == 0  # no second (duplicate) release
        assert r.admission.in_flight_total() == 0 and r.admission.waiters_total() == 0
        # the server saw the client go away: its slot is free again
        await r.server_sees(in_flight=0, cancelled=1)

        # the pool has ONE connection: a leaked one would leave the next call hanging
        second = r.chat()
        await r.server_sees(in_flight=1, cancelled=1)
        r.clock.advance(1.0)
        await r.progress.wait_until(second.done, what="the next call answered")
        assert second.result().text
        leases = [e.request_lease_id for e in r.sink.of_kind("request_lease_released")]
        assert len(leases) == len(set(leases)) == 2  # each lease released exactly once
        assert r.sink.counts["request_lease_acquired"] == 2
        assert r.sink.counts["request_release_diagnostic"] == 0
        assert r.admission.in_flight_total() == 0 and r.admission.waiters_total() == 0


@pytest.mark.parametrize("queued", [1, 3])
async def test_cancelling_calls_queued_in_admission_leaves_no_waiter(queued: int) -> None:
    """With both slots on the wire, further calls wait in request admission; cancelling them
    removes their waiters and acquires nothing for them."""
    async with rig(connections=2) as r:
        running = [r.chat(), r.chat()]
        await r.server_sees(in_flight=2)
        waiting = [r.chat() for _ in range(queued)]
        await r.progress.wait_until(
            lambda: r.admission.waiters_total() == queued, what="calls queued in admission"
        )
        for task in waiting:
            task.cancel()
        await r.progress.wait_until(lambda: all(t.done() for t in waiting), what="cancelled")
        assert r.admission.waiters_total() == 0 and r.admission.in_flight_total() == 2
        assert r.sink.counts["request_lease_acquired"] == 2
        r.clock.advance(1.0)
        await r.progress.wait_until(lambda: all(t.done() for t in running), what="answered")
        assert all(t.result().text for t in running)
        assert r.admission.in_flight_total() == 0 and r.admission.waiters_total() == 0
        assert r.sink.counts["request_lease_released"] == 2
