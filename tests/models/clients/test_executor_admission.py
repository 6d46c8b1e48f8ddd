"""`ModelRequestExecutor` x request admission: overload classification, Retry-After, headers,
liveness against a provider that never recovers, and cancellation during a call. ManualClock
only; nothing sleeps: each step waits for the state it needs (`tests/support/waiting.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from tests.support.waiting import NotifyingSink, Progress, WatchedClock

from rowloom.clock import Clock, sleep_until
from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.errors import RetryableTaskError
from rowloom.models.clients import model_request_executor as executor_module
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ProviderOverloadedError,
    ProviderRateLimitError,
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
from rowloom.provider_wire import (
    RateLimitHeaders,
    TransportPoolLimits,
)

CHAT = RequestResourceKey.of("p", "m", "chat")
Answer = Callable[[int], ChatResponse]


class ScriptedClient:
    """Answers attempt n with `script(n)` (which may raise); counts attempts."""

    def __init__(self, script: Answer, progress: Progress) -> None:
        self.script = script
        self.progress = progress
        self.attempts = 0

    @property
    def provider_name(self) -> str:
        return "p"

    @property
    def transport_pool_limits(self) -> TransportPoolLimits | None:
        return None

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.attempts += 1
        self.progress.notify()
        return self.script(self.attempts)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


@dataclass
class Rig:
    """The executor over real request admission on a WatchedClock, and what a test waits on."""

    progress: Progress
    clock: WatchedClock
    admission: AdaptiveRequestAdmissionController
    executor: ModelRequestExecutor
    client: ScriptedClient
    sink: NotifyingSink
    backoffs: list[float]
    """Deadlines of the executor's back-off sleeps (Retry-After, cooldown, jitter) under way."""

    def chat(self) -> asyncio.Task[ChatResponse]:
        messages = [{"role": "user", "content": "hi"}]
        return self.progress.spawn(self.executor.execute_chat("m", messages))

    def parked_backoffs(self) -> int:
        """Back-off sleeps whose deadline is still ahead (not merely not yet resumed)."""
        now = self.clock.monotonic()
        return sum(1 for d in self.backoffs if d > now)

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        await self.progress.wait_until(predicate, what=what)

    async def run_until_done(self, tasks: list[asyncio.Task[ChatResponse]]) -> None:
        """Jump the clock to its next timer each time every call is done, queued in request
        admission, or waiting out a back-off; until every call ended."""

        def settled() -> bool:
            done = sum(t.done() for t in tasks)
            blocked = self.admission.waiters_total() + self.parked_backoffs()
            return done == len(tasks) or (done + blocked == len(tasks))

        while True:
            await self.until(settled, "every call done, queued or backing off")
            if all(t.done() for t in tasks):
                return
            self.clock.advance(self.clock.deadlines()[0] - self.clock.monotonic())


def setup(
    script: Answer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    cap: int = 4,
    mode: CooldownMode = "reduced_limit",
    retries: int = 30,
) -> Rig:
    progress = Progress()
    clock = WatchedClock(progress)
    catalog = ModelResourceCatalog(
        [ModelConfig(alias="m", model="m", provider="p", max_parallel_requests=cap)],
        [ModelProvider(name="p", provider_type="simulated")],
    )
    config = RequestAdmissionConfig.from_catalog(catalog)
    config = RequestAdmissionConfig(
        static_caps=config.static_caps, resources=config.resources, cooldown_mode=mode
    )
    sink = NotifyingSink(progress)
    events = RequestEventEmitter(sink, clock.monotonic)
    admission = AdaptiveRequestAdmissionController(config, clock=clock, events=events)
    client = ScriptedClient(script, progress)
    executor = ModelRequestExecutor(
        resolver=RequestResourceResolver(catalog),
        clients={"p": client},
        admission=admission,
        events=events,
        clock=clock,
        retry=RetryPolicy(max_rate_limit_retries=retries, max_transient_retries=3),
    )
    backoffs: list[float] = []

    async def observed_sleep(on: Clock, deadline: float) -> None:
        backoffs.append(deadline)
        try:
            await sleep_until(on, deadline)
        finally:
            backoffs.remove(deadline)
            progress.notify()

    monkeypatch.setattr(executor_module, "sleep_until", observed_sleep)
    return Rig(progress, clock, admission, executor, client, sink, backoffs)


def ok(n: int = 0) -> ChatResponse:
    return ChatResponse(text="ok")


async def test_503_is_released_as_an_overload_signal_that_cuts_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def script(n: int) -> ChatResponse:
        if n == 1:
            raise ProviderOverloadedError("busy", provider="p", status_code=503)
        return ok()

    rig = setup(script, monkeypatch)
    task = rig.chat()
    await rig.run_until_done([task])
    assert task.result().text == "ok" and rig.client.attempts == 2
    snap = rig.admission.pressure.snapshot(CHAT)
    assert snap is not None and snap.rate_limited_total == 1
    # refused with one request in flight, far below the limit of 4: the multiplicative cut
    assert snap.current_limit == 3
    released = [e.reason for e in rig.sink.of_kind("request_lease_released")]
    assert released == ["rate_limited", "success"]
    limited = rig.sink.of_kind("request_rate_limited")[0]
    assert limited.diagnostics["status_code"] == 503


@pytest.mark.parametrize("retry_after", [0.5, 3.5])
async def test_a_429s_own_retry_waits_out_retry_after_though_admission_stays_open(
    retry_after: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retry-After differs from the 2 s default cooldown both ways: a retry that ignored it
    (and waited out the cooldown) would come 1.5 s too early or too late."""

    def script(n: int) -> ChatResponse:
        if n == 1:
            raise ProviderRateLimitError(
                "slow down", provider="p", status_code=429, retry_after_seconds=retry_after
            )
        return ok()

    rig = setup(script, monkeypatch)
    assert rig.admission.config.cooldown_seconds == 2.0 != retry_after
    start = rig.clock.monotonic()
    task = rig.chat()
    await rig.until(lambda: rig.parked_backoffs() == 1, "the refused call backing off")
    assert rig.client.attempts == 1 and rig.backoffs == [start + retry_after]
    other = rig.chat()  # another caller is admitted during the cooldown
    await rig.until(other.done, "the other call answered")
    assert other.result().text == "ok" and rig.client.attempts == 2
    rig.clock.advance(retry_after - 0.1)
    assert rig.parked_backoffs() == 1 and not task.done()  # still waiting: nothing to run
    rig.clock.advance(0.1)
    await rig.until(task.done, "the retry answered")
    assert task.result().text == "ok" and rig.client.attempts == 3
    assert rig.admission.in_flight_total() == 0


async def test_rate_limit_headers_pace_the_next_admissions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def script(n: int) -> ChatResponse:
        headers = RateLimitHeaders(
            limit_requests=600, remaining_requests=0, reset_requests_seconds=5.0
        )
        return ChatResponse(text="ok", rate_limit=headers if n == 1 else None)

    rig = setup(script, monkeypatch)
    first = rig.chat()
    await rig.until(first.done, "the first call answered")
    second = rig.chat()
    await rig.until(lambda: rig.admission.waiters_total() == 1, "the second call held back")
    assert rig.client.attempts == 1 and not second.done()
    rig.clock.advance(4.9)
    assert rig.admission.waiters_total() == 1 and not second.done()
    rig.clock.advance(0.1)
    await rig.until(second.done, "the second call answered")
    assert rig.client.attempts == 2


@pytest.mark.parametrize("mode", ["reduced_limit", "block_all"])
async def test_a_provider_that_never_recovers_still_lets_every_call_end(
    mode: CooldownMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(n: int) -> ChatResponse:
        raise ProviderRateLimitError("no", provider="p", status_code=429, retry_after_seconds=1.0)

    rig = setup(script, monkeypatch, mode=mode, retries=5)
    tasks = [rig.chat() for _ in range(6)]
    await rig.run_until_done(tasks)
    for task in tasks:
        assert isinstance(task.exception(), RetryableTaskError)
    assert rig.admission.in_flight_total() == 0 and rig.admission.waiters_total() == 0
    assert rig.client.attempts == 6 * 6
    snap = rig.admission.pressure.snapshot(CHAT)
    assert snap is not None and snap.current_limit == 1
    rig.admission.shutdown()
    assert rig.clock.pending_timers == 0
