"""`ModelRequestExecutor` x request admission: overload classification, Retry-After, headers,
and liveness against a provider that never recovers. ManualClock only; nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from ra_support import settle

from rowloom.clock import ManualClock
from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.errors import RetryableTaskError
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ProviderOverloadedError,
    ProviderRateLimitError,
    RateLimitHeaders,
    TransportPoolLimits,
)
from rowloom.models.clients.model_request_executor import ModelRequestExecutor, RetryPolicy
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    CooldownMode,
    RequestAdmissionConfig,
    RequestResourceKey,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog
from rowloom.observability.events import RequestEventEmitter
from rowloom.observability.sinks import InMemoryEventSink

CHAT = RequestResourceKey.of("p", "m", "chat")
Answer = Callable[[int], ChatResponse]


class ScriptedClient:
    """Answers attempt n with `script(n)` (which may raise); counts attempts."""

    def __init__(self, script: Answer) -> None:
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
    script: Answer, *, cap: int = 4, mode: CooldownMode = "reduced_limit", retries: int = 30
) -> tuple[
    ManualClock,
    AdaptiveRequestAdmissionController,
    ModelRequestExecutor,
    ScriptedClient,
    InMemoryEventSink[object],
]:
    clock = ManualClock()
    catalog = ModelResourceCatalog(
        [ModelConfig(alias="m", model="m", provider="p", max_parallel_requests=cap)],
        [ModelProvider(name="p", provider_type="simulated")],
    )
    config = RequestAdmissionConfig.from_catalog(catalog, profile="default")
    config = RequestAdmissionConfig(
        static_caps=config.static_caps, resources=config.resources, cooldown_mode=mode
    )
    sink: InMemoryEventSink[object] = InMemoryEventSink()
    events = RequestEventEmitter(sink, clock.monotonic)
    admission = AdaptiveRequestAdmissionController(config, clock=clock, events=events)
    client = ScriptedClient(script)
    executor = ModelRequestExecutor(
        resolver=RequestResourceResolver(catalog),
        clients={"p": client},
        admission=admission,
        events=events,
        clock=clock,
        retry=RetryPolicy(max_rate_limit_retries=retries, max_transient_retries=3),
    )
    return clock, admission, executor, client, sink


def chat(executor: ModelRequestExecutor) -> asyncio.Task[ChatResponse]:
    return asyncio.create_task(executor.execute_chat("m", [{"role": "user", "content": "hi"}]))


def ok(n: int = 0) -> ChatResponse:
    return ChatResponse(text="ok")


async def run_until_done(clock: ManualClock, tasks: list[asyncio.Task[ChatResponse]]) -> None:
    """Advance the clock in steps until every task ended (bounded; never a real sleep)."""
    for _ in range(10_000):
        await settle()
        if all(t.done() for t in tasks):
            return
        clock.advance(0.25)
    raise AssertionError("tasks did not finish")


async def test_503_is_released_as_an_overload_signal_that_cuts_the_limit() -> None:
    def script(n: int) -> ChatResponse:
        if n == 1:
            raise ProviderOverloadedError("busy", provider="p", status_code=503)
        return ok()

    clock, admission, executor, client, sink = setup(script)
    task = chat(executor)
    await run_until_done(clock, [task])
    assert task.result().text == "ok" and client.attempts == 2
    snap = admission.pressure.snapshot(CHAT)
    assert snap is not None and snap.rate_limited_total == 1
    # refused with one request in flight, far below the limit of 4: the multiplicative cut
    assert snap.current_limit == 3
    released = [e.reason for e in sink.of_kind("request_lease_released")]  # type: ignore[attr-defined]
    assert released == ["rate_limited", "success"]
    limited = sink.of_kind("request_rate_limited")[0]  # type: ignore[attr-defined]
    assert limited.diagnostics["status_code"] == 503


async def test_a_429s_own_retry_waits_out_retry_after_though_admission_stays_open() -> None:
    def script(n: int) -> ChatResponse:
        if n == 1:
            raise ProviderRateLimitError(
                "slow down", provider="p", status_code=429, retry_after_seconds=2.0
            )
        return ok()

    clock, admission, executor, client, _ = setup(script)
    task = chat(executor)
    await settle()
    assert client.attempts == 1
    other = chat(executor)  # another caller is admitted during the cooldown
    await settle()
    assert other.done() and client.attempts == 2
    clock.advance(1.9)
    await settle()
    assert client.attempts == 2 and not task.done()
    clock.advance(0.1)
    await settle()
    assert task.done() and client.attempts == 3
    assert admission.in_flight_total() == 0


async def test_rate_limit_headers_pace_the_next_admissions() -> None:
    def script(n: int) -> ChatResponse:
        headers = RateLimitHeaders(
            limit_requests=600, remaining_requests=0, reset_requests_seconds=5.0
        )
        return ChatResponse(text="ok", rate_limit=headers if n == 1 else None)

    clock, _, executor, client, _ = setup(script)
    first = chat(executor)
    await settle()
    assert first.done()
    second = chat(executor)
    await settle()
    assert client.attempts == 1 and not second.done()
    clock.advance(5.0)
    await settle()
    assert second.done() and client.attempts == 2


@pytest.mark.parametrize("mode", ["reduced_limit", "block_all"])
async def test_a_provider_that_never_recovers_still_lets_every_call_end(
    mode: CooldownMode,
) -> None:
    def script(n: int) -> ChatResponse:
        raise ProviderRateLimitError("no", provider="p", status_code=429, retry_after_seconds=1.0)

    clock, admission, executor, client, _ = setup(script, mode=mode, retries=5)
    tasks = [chat(executor) for _ in range(6)]
    await run_until_done(clock, tasks)
    for task in tasks:
        assert isinstance(task.exception(), RetryableTaskError)
    assert admission.in_flight_total() == 0 and admission.waiters_total() == 0
    assert client.attempts == 6 * 6
    snap = admission.pressure.snapshot(CHAT)
    assert snap is not None and snap.current_limit == 1
    admission.shutdown()
    assert clock.pending_timers == 0
