"""Malformed provider answers: the OpenAI adapter turns each into a classified `ProviderError`
(or returns a well-typed response), the executor turns persistent ones into
`NonRetryableTaskError("malformed_response")` with every request lease released, and wrong
structured output ends in `invalid_structured_output`; never another exception, never a hang."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from tests.reliability.fake_providers import completion

from rowloom import DatasetConfig
from rowloom.errors import NonRetryableTaskError, RetryableTaskError
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from rowloom.models.clients.model_request_executor import ModelRequestExecutor, RetryPolicy
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient
from rowloom.models.clients.simulated import SimulatedModelClient
from rowloom.models.facade import ModelFacade
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog

HANG_SECONDS = 30.0
HUGE = 24 * 2**20


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


def _raw(body: bytes, content_type: str = "application/json", status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=content_type)


async def _truncated(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        status=200, headers={"Content-Length": "5000", "Content-Type": "application/json"}
    )
    await response.prepare(request)
    await response.write(b'{"choices": [')
    assert request.transport is not None
    request.transport.close()
    return response


async def _stalled_body(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        status=200, headers={"Content-Length": "5000", "Content-Type": "application/json"}
    )
    await response.prepare(request)
    await response.write(b'{"choices": [')
    await asyncio.Event().wait()  # never finishes; the client's timeout must end it
    return response


Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(response: Callable[[], web.StreamResponse]) -> Reply:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        return response()

    return handler


CHAT_MALFORMED: dict[str, Reply] = {
    "not_json": reply(lambda: _raw(b"this is not json")),
    "html": reply(lambda: _raw(b"<html>oops</html>", "text/html")),
    "empty_body": reply(lambda: _raw(b"")),
    "null": reply(lambda: _json(None)),
    "list": reply(lambda: _json([1, 2, 3])),
    "number": reply(lambda: _json(42)),
    "no_choices": reply(lambda: _json({"id": "x", "object": "chat.completion"})),
    "empty_choices": reply(lambda: _json({**completion("x"), "choices": []})),
    "choices_is_string": reply(lambda: _json({**completion("x"), "choices": "x"})),
    "choice_without_message": reply(lambda: _json({**completion("x"), "choices": [{}]})),
    "message_is_string": reply(
        lambda: _json({**completion("x"), "choices": [{"message": "hello"}]})
    ),
    "content_is_int": reply(lambda: _json(completion(42))),
    "content_is_list": reply(lambda: _json(completion([1, 2]))),
    "content_is_object": reply(lambda: _json(completion({"a": 1}))),
    "usage_is_string": reply(lambda: _json({**completion("x"), "usage": "lots"})),
    "deep_json": reply(lambda: _raw(b"[" * 200_000 + b"]" * 200_000)),
    "huge_garbage": reply(lambda: _raw(b"x" * HUGE)),
    "huge_valid": reply(lambda: _json(completion("y" * HUGE))),
    "invalid_utf8": reply(lambda: _raw(b'{"choices": [{"message": {"content": "\xff\xfe"}}]}')),
    "no_content_204": reply(lambda: web.Response(status=204)),
    "truncated": _truncated,
    "stalled_body": _stalled_body,
}
EMBED_MALFORMED: dict[str, Reply] = {
    "no_data": reply(lambda: _json({"object": "list"})),
    "wrong_count": reply(lambda: _json({"data": []})),
    "strings_in_vector": reply(lambda: _json({"data": [{"index": 0, "embedding": ["a"]}]})),
    "vector_is_object": reply(lambda: _json({"data": [{"index": 0, "embedding": {"x": 1}}]})),
    "no_index": reply(lambda: _json({"data": [{"embedding": [0.1]}]})),
    "not_json": reply(lambda: _raw(b"{{{")),
}


@dataclass
class FakeServer:
    """One route handler swapped per test case, on 127.0.0.1 in the test's event loop."""

    url: str
    handlers: dict[str, Reply]
    calls: int = 0


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = FakeServer("", {})

    async def route(request: web.Request) -> web.StreamResponse:
        fake.calls += 1
        return await fake.handlers[request.path](request)

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/v1/chat/completions", route)
    app.router.add_post("/v1/embeddings", route)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield fake
    finally:
        await runner.cleanup()


CHAT = ChatRequest(model="m", messages=({"role": "user", "content": "hi"},), timeout=1.0)
EMBED = EmbeddingRequest(model="e", inputs=("hi",), timeout=1.0)


async def call_adapter(call: Awaitable[Any]) -> Any:
    """The adapter's answer or its ProviderError; anything else (or a hang) fails."""
    try:
        async with asyncio.timeout(HANG_SECONDS):
            return await call
    except ProviderError as exc:
        return exc


@pytest.mark.parametrize("case", sorted(CHAT_MALFORMED))
async def test_adapter_classifies_malformed_chat_answers(server: FakeServer, case: str) -> None:
    server.handlers["/v1/chat/completions"] = CHAT_MALFORMED[case]
    client = OpenAICompatibleClient("bad", server.url, max_connections=2)
    try:
        result = await call_adapter(client.chat(CHAT))
    finally:
        await client.aclose()
    if case == "usage_is_string":  # odd bookkeeping never fails a good answer
        assert isinstance(result, ChatResponse) and result.text == "x" and result.usage is None
    if isinstance(result, ChatResponse):  # lenient but well-typed
        assert isinstance(result.text, str)
        assert case in ("usage_is_string", "invalid_utf8", "huge_valid"), case
        return
    assert isinstance(
        result, ProviderResponseError | ProviderConnectionError | ProviderTimeoutError
    ), repr(result)
    assert result.provider == "bad"
    assert "oops" not in str(result) and "xxxx" not in str(result)  # no body in messages
    if case in ("truncated",):
        assert isinstance(result, ProviderConnectionError | ProviderResponseError)
    elif case == "stalled_body":
        assert isinstance(result, ProviderTimeoutError | ProviderConnectionError)
    else:
        assert isinstance(result, ProviderResponseError)
        assert result.error_class == "malformed_response"


@pytest.mark.parametrize("case", sorted(EMBED_MALFORMED))
async def test_adapter_classifies_malformed_embeddings(server: FakeServer, case: str) -> None:
    server.handlers["/v1/embeddings"] = EMBED_MALFORMED[case]
    client = OpenAICompatibleClient("bad", server.url, max_connections=2)
    try:
        result = await call_adapter(client.embed(EMBED))
    finally:
        await client.aclose()
    if isinstance(result, EmbeddingResponse):
        assert all(isinstance(x, float) for v in result.vectors for x in v)
        assert len(result.vectors) == 1
        return
    assert isinstance(result, ProviderResponseError), repr(result)


@asynccontextmanager
async def wiring(
    url: str, call_timeout_s: float = 1.0
) -> AsyncIterator[tuple[ModelRequestExecutor, AdaptiveRequestAdmissionController]]:
    """The executor and admission over one adapter for `url`; the adapter is closed after."""
    config = DatasetConfig.from_dict(
        {
            "providers": [{"name": "bad", "provider_type": "openai", "endpoint": url}],
            "models": [
                {
                    "alias": "w",
                    "model": "m",
                    "provider": "bad",
                    "max_parallel_requests": 4,
                    "inference_parameters": {"timeout": call_timeout_s},
                }
            ],
            "columns": [
                {"name": "c", "column_type": "llm_text", "model_alias": "w", "prompt": "hi"}
            ],
        }
    )
    catalog = ModelResourceCatalog(config.models, config.providers)
    admission = AdaptiveRequestAdmissionController(RequestAdmissionConfig.from_catalog(catalog))
    client = OpenAICompatibleClient("bad", url, max_connections=4)
    executor = ModelRequestExecutor(
        resolver=RequestResourceResolver(catalog),
        clients={"bad": client},
        admission=admission,
        retry=RetryPolicy(
            max_transient_retries=2, backoff_base_seconds=0.01, backoff_max_seconds=0.02
        ),
    )
    try:
        yield executor, admission
    finally:
        await client.aclose()


@pytest.mark.parametrize("case", ["not_json", "empty_choices", "content_is_object", "deep_json"])
async def test_executor_fails_the_cell_after_retries(server: FakeServer, case: str) -> None:
    server.handlers["/v1/chat/completions"] = CHAT_MALFORMED[case]
    async with wiring(server.url) as (executor, admission):
        with pytest.raises(NonRetryableTaskError) as info:
            async with asyncio.timeout(HANG_SECONDS):
                await executor.execute_chat("w", [{"role": "user", "content": "hi"}])
        assert info.value.reason == "malformed_response"
        assert info.value.provider == "bad"
        assert server.calls == 3  # one attempt plus two retries, each under its own lease
        assert executor.stats.by_outcome == {"provider_failure": 3}
        assert admission.in_flight_total() == 0 and admission.waiters_total() == 0


async def test_executor_times_out_a_stalled_body(server: FakeServer) -> None:
    server.handlers["/v1/chat/completions"] = CHAT_MALFORMED["stalled_body"]
    async with wiring(server.url, call_timeout_s=0.3) as (executor, admission):
        with pytest.raises(RetryableTaskError) as info:
            async with asyncio.timeout(HANG_SECONDS):
                await executor.execute_chat("w", [{"role": "user", "content": "hi"}])
        assert info.value.reason == "provider_timeout"  # retryable: a later salvage round
        assert executor.stats.by_outcome == {"provider_timeout": 3}
        assert admission.in_flight_total() == 0 and admission.waiters_total() == 0


WRONG_SCHEMA_ANSWERS = [
    "not json at all",
    '{"wrong": 1}',
    '{"score": "seven"}',
    "[]",
    "null",
    '{"score": 1, "extra": true}',
    '{"score": 1' + "}" * 3,
]


async def test_wrong_structured_output_is_corrected_then_dropped(server: FakeServer) -> None:
    answers = iter(WRONG_SCHEMA_ANSWERS)

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        assert body["response_format"]["type"] == "json_schema"
        return _json(completion(next(answers)))

    server.handlers["/v1/chat/completions"] = handler
    async with wiring(server.url) as (executor, admission):
        schema = {
            "type": "object",
            "properties": {"score": {"type": "integer"}},
            "required": ["score"],
            "additionalProperties": False,
        }
        facade = ModelFacade(executor, ["w"])
        for _ in range(2):
            with pytest.raises(NonRetryableTaskError) as info:
                await facade.structured("w", "score it", schema, max_correction_attempts=2)
            assert info.value.reason == "invalid_structured_output"
        assert server.calls == 6  # each correction is its own request attempt
        assert admission.in_flight_total() == 0 and admission.waiters_total() == 0


async def test_an_attempt_without_a_timeout_is_still_bounded() -> None:
    """A model without `timeout` against a provider that never answers: the executor's default
    attempt timeout ends each attempt (it used to wait forever)."""
    config = DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "mute",
                    "provider_type": "simulated",
                    "simulation": {"capacity": 4, "latency_ms": 0, "timeout_rate": 1.0},
                }
            ],
            "models": [{"alias": "w", "model": "m", "provider": "mute"}],
            "columns": [
                {"name": "c", "column_type": "llm_text", "model_alias": "w", "prompt": "hi"}
            ],
        }
    )
    catalog = ModelResourceCatalog(config.models, config.providers)
    admission = AdaptiveRequestAdmissionController(RequestAdmissionConfig.from_catalog(catalog))
    assert config.providers[0].simulation is not None
    executor = ModelRequestExecutor(
        resolver=RequestResourceResolver(catalog),
        clients={"mute": SimulatedModelClient("mute", config.providers[0].simulation)},
        admission=admission,
        retry=RetryPolicy(
            max_transient_retries=1,
            backoff_base_seconds=0.01,
            default_timeout_seconds={"chat": 0.05},
            local_deadline_grace_seconds=0.0,
        ),
    )
    with pytest.raises(RetryableTaskError) as info:
        async with asyncio.timeout(HANG_SECONDS):
            await executor.execute_chat("w", [{"role": "user", "content": "hi"}])
    assert info.value.reason == "provider_timeout" and info.value.provider == "mute"
    assert executor.stats.by_outcome == {"local_timeout": 2}
    assert admission.in_flight_total() == 0 and admission.waiters_total() == 0
