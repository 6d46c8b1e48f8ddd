"""Helpers for executor tests on a ManualClock: a client with a latency and hung attempts."""

from __future__ import annotations

import asyncio

from tests.support.waiting import Progress

from rowloom.clock import ManualClock, sleep_until
from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.config.run import StragglerConfig
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)
from rowloom.models.clients.model_request_executor import ModelRequestExecutor
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog
from rowloom.observability.events import RequestEventEmitter
from rowloom.observability.sinks import InMemoryEventSink
from rowloom.provider_wire import TransportPoolLimits


class SlowClient:
    """Answers after `latency` seconds of the ManualClock; the attempts in `hang` never answer
    (until cancelled). Records every attempt's timeout."""

    def __init__(self, clock: ManualClock, latency: float, hang: set[int]) -> None:
        self.clock = clock
        self.latency = latency
        self.hang = hang
        self.attempts = 0
        self.timeouts: list[float | None] = []
        self.progress = Progress()
        """Reports each attempt reaching the provider (`progress.wait_until`)."""

    @property
    def provider_name(self) -> str:
        return "p"

    @property
    def transport_pool_limits(self) -> TransportPoolLimits | None:
        return None

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.attempts += 1
        self.timeouts.append(request.timeout)
        self.progress.notify()
        if self.attempts in self.hang:
            await asyncio.Event().wait()  # a hung connection: only cancellation ends it
        await sleep_until(self.clock, self.clock.monotonic() + self.latency)
        return ChatResponse(text=f"answer {self.attempts}")

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def setup(
    hang: set[int], stragglers: StragglerConfig, timeout: float | None = None
) -> tuple[ManualClock, ModelRequestExecutor, SlowClient, InMemoryEventSink[object]]:
    clock = ManualClock()
    params = {"timeout": timeout} if timeout is not None else {}
    catalog = ModelResourceCatalog(
        [
            ModelConfig(
                alias="m",
                model="m",
                provider="p",
                max_parallel_requests=4,
                inference_parameters=params,  # type: ignore[arg-type]
            )
        ],
        [ModelProvider(name="p", provider_type="simulated")],
    )
    sink: InMemoryEventSink[object] = InMemoryEventSink()
    events = RequestEventEmitter(sink, clock.monotonic)
    admission = AdaptiveRequestAdmissionController(
        RequestAdmissionConfig.from_catalog(catalog), clock=clock, events=events
    )
    client = SlowClient(clock, latency=0.5, hang=hang)
    executor = ModelRequestExecutor(
        resolver=RequestResourceResolver(catalog),
        clients={"p": client},
        admission=admission,
        events=events,
        clock=clock,
        stragglers=stragglers,
    )
    return clock, executor, client, sink


async def drive(clock: ManualClock, task: asyncio.Task[ChatResponse], step: float = 0.25) -> float:
    """Advance the clock in steps until `task` ends; return the clock time it took."""
    start = clock.monotonic()
    for _ in range(100_000):
        for _ in range(10):
            await asyncio.sleep(0)
        if task.done():
            return clock.monotonic() - start
        clock.advance(step)
    raise AssertionError("the call did not finish")


def call(executor: ModelRequestExecutor) -> asyncio.Task[ChatResponse]:
    return asyncio.create_task(executor.execute_chat("m", [{"role": "user", "content": "hi"}]))
