"""`ProviderHealth` through `ModelRequestExecutor`: an unverified provider that refuses
connections is probed by one attempt while the others wait; a provider that answered before
keeps today's retries; a cancelled probe hands over. ManualClock only; nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from tests.support.waiting import NotifyingSink, Progress, WatchedClock

from rowloom.clock import ManualClock
from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.errors import ProviderUnavailableError, RetryableTaskError
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ProviderConnectionError,
    ProviderRequestError,
)
from rowloom.models.clients.model_request_executor import ModelRequestExecutor, RetryPolicy
from rowloom.models.clients.provider_health import PROBE_BACKOFF_SECONDS
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog
from rowloom.observability.events import RequestEventEmitter
from rowloom.provider_wire import TransportPoolLimits

Script = Callable[[int], ChatResponse]
REFUSED = ProviderConnectionError("p: chat connection refused", provider="p", failure="refused")


class ScriptedClient:
    """Answers attempt n with `script(n)` (which may raise); counts attempts."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.attempts = 0

    @property
    def provider_name(self) -> str:
        return "p"

    @property
    def transport_pool_limits(self) -> TransportPoolLimits | None:
        return None

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.attempts += 1
        await asyncio.sleep(0)
        return self.script(self.attempts)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def setup(
    script: Script, cap: int = 8, sink: NotifyingSink | None = None
) -> tuple[ManualClock, ModelRequestExecutor, ScriptedClient]:
    """With `sink`: admission events go to it and the clock is a WatchedClock on its progress."""
    clock = ManualClock() if sink is None else WatchedClock(sink.progress)
    catalog = ModelResourceCatalog(
        [ModelConfig(alias="m", model="m", provider="p", max_parallel_requests=cap)],
        [ModelProvider(name="p", provider_type="openai", endpoint="http://127.0.0.1:9/v1")],
    )
    config = RequestAdmissionConfig.from_catalog(catalog)
    events = RequestEventEmitter(sink, clock.monotonic)
    admission = AdaptiveRequestAdmissionController(config, clock=clock, events=events)
    client = ScriptedClient(script)
    executor = ModelRequestExecutor(
        resolver=RequestResourceResolver(catalog),
        clients={"p": client},
        admission=admission,
        clock=clock,
        retry=RetryPolicy(max_transient_retries=3),
    )
    return clock, executor, client


def chats(executor: ModelRequestExecutor, n: int) -> list[asyncio.Task[ChatResponse]]:
    return [
        asyncio.create_task(executor.execute_chat("m", [{"role": "user", "content": str(i)}]))
        for i in range(n)
    ]


async def run_until_done(clock: ManualClock, tasks: list[asyncio.Task[ChatResponse]]) -> None:
    for _ in range(1_000):
        for _ in range(20):
            await asyncio.sleep(0)
        if all(t.done() for t in tasks):
            return
        clock.advance(0.05)
    raise AssertionError("tasks did not finish")


async def test_a_dead_provider_is_probed_once_then_every_attempt_stops() -> None:
    def script(n: int) -> ChatResponse:
        raise REFUSED

    clock, executor, client = setup(script)
    tasks = chats(executor, 20)
    await run_until_done(clock, tasks)
    errors = [t.exception() for t in tasks]
    assert all(isinstance(e, ProviderUnavailableError) for e in errors)
    first = errors[0]
    assert isinstance(first, ProviderUnavailableError)
    assert str(first) == (
        "provider 'p' at http://127.0.0.1:9/v1, model 'm': chat connection refused"
    )
    # the first wave (at most the request limit), then the probe's retries alone
    assert client.attempts <= 8 + len(PROBE_BACKOFF_SECONDS)


async def test_a_provider_that_comes_up_during_the_probe_serves_everyone() -> None:
    def script(n: int) -> ChatResponse:
        if n <= 3:
            raise REFUSED
        return ChatResponse(text="ok")

    clock, executor, client = setup(script, cap=1)
    tasks = chats(executor, 10)
    await run_until_done(clock, tasks)
    assert [t.result().text for t in tasks] == ["ok"] * 10
    assert client.attempts == 3 + 10  # the probe failed twice more, then each call once


async def test_a_provider_that_answered_before_keeps_todays_retries() -> None:
    def script(n: int) -> ChatResponse:
        if n == 1:
            return ChatResponse(text="ok")
        raise REFUSED

    clock, executor, client = setup(script, cap=1)
    first = chats(executor, 1)
    await run_until_done(clock, first)
    later = chats(executor, 1)
    await run_until_done(clock, later)
    error = later[0].exception()
    assert isinstance(error, RetryableTaskError) and error.reason == "connection_error"
    assert client.attempts == 1 + 4  # one attempt plus max_transient_retries


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (401, "HTTP 401: the API key was refused"),
        (403, "HTTP 403: access denied"),
        (404, "HTTP 404 (not found): is the model id right?"),
    ],
)
async def test_configuration_answers_stop_at_once_until_the_model_has_answered(
    status: int, cause: str
) -> None:
    def script(n: int) -> ChatResponse:
        raise ProviderRequestError(
            f"p: chat answered HTTP {status}",
            provider="p",
            status_code=status,
            provider_message="no such thing",
        )

    clock, executor, client = setup(script, cap=1)
    tasks = chats(executor, 3)
    await run_until_done(clock, tasks)
    error = tasks[0].exception()
    assert isinstance(error, ProviderUnavailableError)
    assert cause in str(error) and "the provider said: no such thing" in str(error)
    assert client.attempts == 1


async def test_a_cancelled_probe_hands_over_to_a_waiting_attempt() -> None:
    def script(n: int) -> ChatResponse:
        if n <= 2:
            raise REFUSED
        return ChatResponse(text="ok")

    sink = NotifyingSink(Progress())
    clock, executor, client = setup(script, cap=1, sink=sink)
    prober, waiter = chats(executor, 2)

    def held_back() -> bool:
        """The probe failed once and backs off on the clock; the other call got the slot
        after it and gave it back unused, to wait for the probe's verdict."""
        released = sink.of_kind("request_lease_released")
        unused = [e for e in released if e.reason == "local_cancelled"]
        return client.attempts == 1 and clock.pending_timers == 1 and len(unused) == 1

    await sink.progress.wait_until(held_back, what="the probe backing off, the other held back")
    prober.cancel()  # the probe was in its backoff; the waiter must not hang
    await run_until_done(clock, [prober, waiter])
    assert prober.cancelled()
    assert waiter.result().text == "ok"
