"""The real `openai` path end to end: OpenAICompatibleClient -> MockProviderServer on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

import aiohttp
import jsonschema
import numpy as np
import pytest
from aiohttp import web
from pydantic import BaseModel, Field

from rowloom.clock import ManualClock
from rowloom.models.clients.base import (
    ChatRequest,
    EmbeddingRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloadedError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient, _env_proxy
from rowloom.models.clients.simulated import SimulatedModelClient
from rowloom.simulation.server import (
    MockProviderServer,
    MockServerOptions,
)

SECRET = "sk-test-secret-0123456789"
MESSAGES = ({"role": "user", "content": "Write about volcanoes."},)
CHAT = ChatRequest(model="writer", messages=MESSAGES, max_tokens=24, timeout=10.0)


class Fact(BaseModel):
    topic: str = Field(min_length=1, max_length=40)
    confidence: float = Field(ge=0, le=1)
    kind: str = Field(json_schema_extra={"enum": ["geology", "history"]})


@asynccontextmanager
async def serving(
    options: MockServerOptions, *, clock: ManualClock | None = None, api_key: str | None = None
) -> AsyncIterator[tuple[MockProviderServer, OpenAICompatibleClient]]:
    async with MockProviderServer(options, clock=clock) as server:
        client = OpenAICompatibleClient("mock", server.url, api_key=api_key, max_connections=8)
        try:
            yield server, client
        finally:
            await client.aclose()


async def test_chat_through_the_sdk_matches_the_in_process_adapter() -> None:
    options = MockServerOptions(latency_ms=0, seed=9)
    async with serving(options) as (server, client):
        response = await client.chat(CHAT)
    local = await SimulatedModelClient("sim", options.simulation_config()).chat(CHAT)
    assert response.text == local.text
    assert response.status_code == 200
    assert response.usage == local.usage
    assert response.rate_limit is None
    assert server.stats().capacity.completed == 1


async def test_structured_output_is_valid_for_a_pydantic_schema() -> None:
    schema = Fact.model_json_schema()
    request = ChatRequest(
        model="writer",
        messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "fact", "schema": schema}},
    )
    async with serving(MockServerOptions(latency_ms=0)) as (_, client):
        for _ in range(3):
            text = (await client.chat(request)).text
            jsonschema.validate(json.loads(text), schema)
            assert Fact.model_validate_json(text).kind in {"geology", "history"}


async def test_embeddings_sizes_norms_and_dimension_override() -> None:
    async with serving(MockServerOptions(latency_ms=0, embedding_dimensions=10)) as (_, client):
        plain = await client.embed(EmbeddingRequest(model="emb", inputs=("a", "b")))
        sized = await client.embed(
            EmbeddingRequest(model="emb", inputs=("a",), extra_body={"dimensions": 4})
        )
    assert [len(v) for v in plain.vectors] == [10, 10]
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0) for v in plain.vectors)
    assert len(sized.vectors[0]) == 4
    assert plain.usage is not None and plain.usage.prompt_tokens > 0


async def test_base64_embeddings_models_and_stats_routes() -> None:
    async with serving(MockServerOptions(latency_ms=0, models=("m1", "m2"))) as (server, _):
        base = server.url.removesuffix("/v1")
        async with aiohttp.ClientSession() as session:
            body = {"model": "emb", "input": "hello", "encoding_format": "base64"}
            async with session.post(f"{server.url}/embeddings", json=body) as resp:
                encoded = (await resp.json())["data"][0]["embedding"]
            async with session.get(f"{server.url}/models") as resp:
                models = [m["id"] for m in (await resp.json())["data"]]
            async with session.post(f"{server.url}/chat/completions", data=b"{oops") as resp:
                bad_status = resp.status
            bad_body = {"model": "m", "messages": ["not an object"], "response_format": "json"}
            async with session.post(f"{server.url}/chat/completions", json=bad_body) as resp:
                bad_shape_status = resp.status
            async with session.get(f"{base}/stats") as resp:
                stats = await resp.json()
    vector = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert vector.shape == (16,) and math.isclose(float(vector @ vector), 1.0, rel_tol=1e-5)
    assert models == ["m1", "m2"]
    assert bad_status == bad_shape_status == 400
    assert stats["completed"] == 1 and stats["bad_requests"] == 2 and stats["http_requests"] == 3


async def test_429_over_capacity_carries_retry_after_seconds() -> None:
    clock = ManualClock()
    options = MockServerOptions(capacity=1, latency_ms=1000, retry_after=2)
    async with serving(options, clock=clock) as (server, client):
        held = asyncio.create_task(client.chat(CHAT))
        await server.capacity_model.wait_until(lambda s: s.in_flight == 1)
        with pytest.raises(ProviderRateLimitError) as caught:
            await client.chat(CHAT)
        clock.advance(1.0)
        assert (await held).text
    assert caught.value.status_code == 429
    assert caught.value.retry_after_seconds == 2.0


async def test_429_retry_after_as_http_date_is_converted_to_seconds() -> None:
    clock = ManualClock()
    options = MockServerOptions(
        capacity=1, latency_ms=1000, retry_after=5, retry_after_format="http-date"
    )
    async with serving(options, clock=clock) as (server, client):
        held = asyncio.create_task(client.chat(CHAT))
        await server.capacity_model.wait_until(lambda s: s.in_flight == 1)
        with pytest.raises(ProviderRateLimitError) as caught:
            await client.chat(CHAT)
        clock.advance(1.0)
        await held
    retry_after = caught.value.retry_after_seconds
    assert retry_after is not None and 3.0 <= retry_after <= 6.0


async def test_rpm_headers_are_parsed_and_the_limit_answers_429() -> None:
    async with serving(MockServerOptions(latency_ms=0, rpm=2), clock=ManualClock()) as (_, client):
        first = await client.chat(CHAT)
        second = await client.embed(EmbeddingRequest(model="emb", inputs=("x",)))
        with pytest.raises(ProviderRateLimitError) as caught:
            await client.chat(CHAT)
    assert first.rate_limit is not None
    assert (first.rate_limit.limit_requests, first.rate_limit.remaining_requests) == (2, 1)
    assert first.rate_limit.reset_requests_seconds == 60.0
    assert second.rate_limit is not None and second.rate_limit.remaining_requests == 0
    assert caught.value.retry_after_seconds == 60.0
    assert caught.value.rate_limit is not None and caught.value.rate_limit.remaining_requests == 0


@pytest.mark.parametrize(
    ("status", "error"), [(500, ProviderServerError), (503, ProviderOverloadedError)]
)
async def test_injected_failures_map_to_server_errors(
    status: int, error: type[ProviderError]
) -> None:
    options = MockServerOptions(latency_ms=0, fail_rate=1.0, fail_status=status)
    async with serving(options) as (_, client):
        with pytest.raises(error) as caught:
            await client.chat(CHAT)
    assert type(caught.value) is error
    assert caught.value.status_code == status


async def test_hung_request_times_out_and_the_server_frees_the_slot() -> None:
    async with serving(MockServerOptions(capacity=1, timeout_rate=1.0)) as (server, client):
        request = ChatRequest(model="writer", messages=MESSAGES, timeout=0.3)
        with pytest.raises(ProviderTimeoutError):
            await client.chat(request)
        stats = await asyncio.wait_for(
            server.capacity_model.wait_until(lambda s: s.cancelled == 1), timeout=10
        )
    assert stats.in_flight == 0


async def test_dropped_and_refused_connections_are_connection_errors() -> None:
    async with serving(MockServerOptions(latency_ms=0, drop_rate=1.0)) as (server, client):
        with pytest.raises(ProviderConnectionError):
            await client.chat(CHAT)
        url = server.url
        assert server.stats().dropped == 1
    refused = OpenAICompatibleClient("gone", url, max_connections=1)  # the server is stopped
    try:
        with pytest.raises(ProviderConnectionError):
            await refused.embed(EmbeddingRequest(model="emb", inputs=("x",), timeout=5.0))
    finally:
        await refused.aclose()


async def test_bad_request_is_a_non_retryable_request_error() -> None:
    async with serving(MockServerOptions(latency_ms=0)) as (_, client):
        request = ChatRequest(model="writer", messages=MESSAGES, extra_body={"stream": True})
        with pytest.raises(ProviderRequestError) as caught:
            await client.chat(request)
    assert caught.value.status_code == 400
    assert not caught.value.retryable


async def test_api_key_is_checked_and_never_shown() -> None:
    options = MockServerOptions(latency_ms=0, api_key=SECRET)
    assert SECRET not in repr(options)
    async with MockProviderServer(options) as server:
        good = OpenAICompatibleClient("mock", server.url, api_key=SECRET, max_connections=2)
        wrong = OpenAICompatibleClient("mock", server.url, api_key=SECRET + "x", max_connections=2)
        try:
            assert (await good.chat(CHAT)).text
            with pytest.raises(ProviderRequestError) as caught:
                await wrong.chat(CHAT)
        finally:
            await good.aclose()
            await wrong.aclose()
    error = caught.value
    assert error.status_code == 401
    for shown in (repr(good), str(good), repr(wrong), str(error), repr(error), repr(error.args)):
        assert SECRET not in shown
        assert "invalid or missing API key" not in shown  # no response body either
    assert error.__cause__ is None and error.__suppress_context__


async def test_rate_limit_error_text_has_no_body_or_key() -> None:
    clock = ManualClock()
    options = MockServerOptions(capacity=1, latency_ms=1000, api_key=SECRET)
    async with serving(options, clock=clock, api_key=SECRET) as (server, client):
        held = asyncio.create_task(client.chat(CHAT))
        await server.capacity_model.wait_until(lambda s: s.in_flight == 1)
        with pytest.raises(ProviderRateLimitError) as caught:
            await client.chat(CHAT)
        clock.advance(1.0)
        await held
    for shown in (str(caught.value), repr(caught.value)):
        assert SECRET not in shown and "rate limit reached" not in shown


# ------------------------------------------------------------------------- malformed answers


@asynccontextmanager
async def stub_server(
    handler: Callable[[web.Request], Any],
) -> AsyncIterator[str]:
    """A one-route loopback server answering every POST with `handler`."""
    app = web.Application()
    app.router.add_post("/v1/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "response",
    [
        lambda: web.Response(text="<html>not json</html>", content_type="text/html"),
        lambda: web.json_response({"unexpected": True}),
        lambda: web.json_response({"choices": []}),
    ],
    ids=["html", "wrong-shape", "no-choices"],
)
async def test_malformed_2xx_bodies_are_response_errors(response: Callable[[], Any]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return response()  # type: ignore[no-any-return]

    async with stub_server(handler) as url:
        client = OpenAICompatibleClient("stub", url, max_connections=1)
        try:
            with pytest.raises(ProviderResponseError):
                await client.chat(CHAT)
            with pytest.raises(ProviderResponseError):
                await client.embed(EmbeddingRequest(model="emb", inputs=("x",)))
        finally:
            await client.aclose()


async def test_retry_after_ms_and_408_classification() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("embeddings"):
            return web.json_response({"error": {}}, status=408)
        return web.json_response(
            {"error": {}}, status=429, headers={"retry-after-ms": "1500", "retry-after": "9"}
        )

    async with stub_server(handler) as url:
        client = OpenAICompatibleClient("stub", url, max_connections=1)
        try:
            with pytest.raises(ProviderRateLimitError) as limited:
                await client.chat(CHAT)
            with pytest.raises(ProviderTimeoutError):
                await client.embed(EmbeddingRequest(model="emb", inputs=("x",)))
        finally:
            await client.aclose()
    assert limited.value.retry_after_seconds == 1.5


# ------------------------------------------------------------------------- the wire itself


async def test_the_request_carries_the_key_headers_and_the_json_body() -> None:
    seen: list[tuple[dict[str, str], Any]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((dict(request.headers), json.loads(await request.read())))
        message = {
            "content": "ok",
            "reasoning_content": "thought",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        }
        return web.json_response({"choices": [{"message": message, "finish_reason": "stop"}]})

    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    request = ChatRequest(  # any Mapping is a message, a tool or a format
        model="writer",
        messages=(MappingProxyType(MESSAGES[0]),),
        max_tokens=8,
        response_format=MappingProxyType({"type": "json_object"}),
        tools=(MappingProxyType(tool),),
        extra_headers={"X-Call": "c"},
    )
    async with stub_server(handler) as url:
        client = OpenAICompatibleClient(
            "stub", url, api_key=SECRET, extra_headers={"X-Team": "t"}, extra_body={"seed": 3}
        )
        try:
            answer = await client.chat(request)
        finally:
            await client.aclose()
    ((headers, body),) = seen
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert (headers["X-Team"], headers["X-Call"]) == ("t", "c")
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "model": "writer",
        "messages": [dict(m) for m in MESSAGES],
        "max_tokens": 8,
        "response_format": {"type": "json_object"},
        "tools": [tool],
        "seed": 3,
    }
    assert (answer.text, answer.reasoning_content) == ("ok", "thought")
    assert answer.finish_reason == "stop"
    assert [(c.id, c.name, c.arguments) for c in answer.tool_calls] == [("c1", "f", "{}")]


async def test_a_4xx_keeps_the_providers_short_message_with_the_key_redacted() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        text = f"model   nope does not exist for key {SECRET}"
        return web.json_response({"error": {"message": text}}, status=404)

    async with stub_server(handler) as url:
        client = OpenAICompatibleClient("stub", url, api_key=SECRET, max_connections=1)
        try:
            with pytest.raises(ProviderRequestError) as caught:
                await client.chat(CHAT)
        finally:
            await client.aclose()
    assert caught.value.status_code == 404
    assert caught.value.provider_message == "model nope does not exist for key [REDACTED]"
    assert SECRET not in str(caught.value)


async def test_no_free_pooled_connection_in_time_is_a_pool_timeout() -> None:
    """A pool of one connection held by a slow call: the next call waits for it for its own
    timeout, then fails as `pool_timeout` (not a connect timeout); the held call still ends."""
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.json_response({"choices": [{"message": {"content": "late"}}]})

    async with stub_server(handler) as url:
        client = OpenAICompatibleClient("stub", url, max_connections=1)
        try:
            held = asyncio.create_task(client.chat(CHAT))
            await arrived.wait()
            quick = ChatRequest(model="writer", messages=MESSAGES, timeout=0.2)
            with pytest.raises(ProviderConnectionError) as caught:
                await client.chat(quick)
            release.set()
            assert (await held).text == "late"
        finally:
            await client.aclose()
    assert caught.value.failure == "pool_timeout"


async def test_tls_to_a_plain_http_server_is_a_tls_connection_error() -> None:
    async with serving(MockServerOptions(latency_ms=0)) as (server, _):
        client = OpenAICompatibleClient(
            "tls", server.url.replace("http://", "https://"), max_connections=1
        )
        try:
            with pytest.raises(ProviderConnectionError) as caught:
                await client.chat(CHAT)
        finally:
            await client.aclose()
    assert caught.value.failure == "tls"


def test_a_proxy_named_by_the_environment_is_used_unless_the_host_is_bypassed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert _env_proxy("https://api.example/v1", "api.example") == "http://proxy.example:3128"
    assert _env_proxy("https://internal.example/v1", "internal.example") is None
    assert _env_proxy("http://api.example/v1", "api.example") is None  # no HTTP_PROXY
