"""SimulatedModelClient (in-process adapter) and the make_model_client factory."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, Field

from rowloom.clock import ManualClock
from rowloom.config.models import ModelProvider, SimulationConfig
from rowloom.models.clients import make_model_client
from rowloom.models.clients.base import (
    ChatRequest,
    EmbeddingRequest,
    ModelClient,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient
from rowloom.models.clients.simulated import SimulatedModelClient

REQUEST = ChatRequest(model="writer", messages=({"role": "user", "content": "Describe a river."},))


class Review(BaseModel):
    score: int = Field(ge=1, le=10)
    summary: str


def _client(clock: ManualClock | None = None, **config: Any) -> SimulatedModelClient:
    return SimulatedModelClient("sim", SimulationConfig(**config), clock=clock)


async def test_chat_is_deterministic_with_usage_and_no_transport_pool() -> None:
    a, b = _client(latency_ms=0, seed=4), _client(latency_ms=0, seed=4)
    first, second = await a.chat(REQUEST), await b.chat(REQUEST)
    assert first == second
    assert first.text and first.usage is not None and first.usage.completion_tokens > 0
    assert a.transport_pool_limits is None
    assert a.provider_name == "sim"
    client: ModelClient = a  # satisfies the protocol
    await client.aclose()


async def test_structured_chat_validates_against_the_schema() -> None:
    schema = Review.model_json_schema()
    request = ChatRequest(
        model="writer",
        messages=REQUEST.messages,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    )
    text = (await _client(latency_ms=0).chat(request)).text
    jsonschema.validate(json.loads(text), schema)
    Review.model_validate_json(text)


async def test_invalid_json_rate_knob_reaches_structured_answers() -> None:
    client = SimulatedModelClient("sim", SimulationConfig(latency_ms=0), invalid_json_rate=1.0)
    schema = Review.model_json_schema()
    request = ChatRequest(
        model="writer",
        messages=REQUEST.messages,
        response_format={"type": "json_schema", "json_schema": {"schema": schema}},
    )
    text = (await client.chat(request)).text
    with pytest.raises((ValueError, jsonschema.ValidationError)):
        jsonschema.validate(json.loads(text), schema)


async def test_embeddings_default_and_requested_dimensions() -> None:
    client = _client(latency_ms=0, embedding_dimensions=12)
    plain = await client.embed(EmbeddingRequest(model="emb", inputs=("a", "b", "c")))
    assert [len(v) for v in plain.vectors] == [12, 12, 12]
    sized = await client.embed(
        EmbeddingRequest(model="emb", inputs=("a",), extra_body={"dimensions": 5})
    )
    assert len(sized.vectors[0]) == 5


async def test_over_capacity_raises_rate_limit_error_with_retry_after() -> None:
    clock = ManualClock()
    client = _client(clock, capacity=1, latency_ms=1000, retry_after_s=2.5)
    held = asyncio.create_task(client.chat(REQUEST))
    await client.capacity_model.wait_until(lambda s: s.in_flight == 1)
    with pytest.raises(ProviderRateLimitError) as caught:
        await client.chat(REQUEST)
    assert caught.value.retry_after_seconds == 2.5
    assert caught.value.status_code == 429
    assert caught.value.error_class == "rate_limited"
    clock.advance(1.0)
    assert (await held).text


async def test_rpm_limit_raises_with_window_retry_after_and_headers() -> None:
    client = _client(ManualClock(), latency_ms=0, rpm=1)
    ok = await client.chat(REQUEST)
    assert ok.rate_limit is not None and ok.rate_limit.remaining_requests == 0
    with pytest.raises(ProviderRateLimitError) as caught:
        await client.embed(EmbeddingRequest(model="emb", inputs=("x",)))
    assert caught.value.retry_after_seconds == 60.0
    assert caught.value.rate_limit is not None and caught.value.rate_limit.limit_requests == 1


async def test_injected_failure_raises_server_error() -> None:
    with pytest.raises(ProviderServerError) as caught:
        await _client(latency_ms=0, fail_rate=1.0).chat(REQUEST)
    assert caught.value.status_code == 500
    assert caught.value.retryable


async def test_request_timeout_raises_timeout_error_and_frees_the_slot() -> None:
    clock = ManualClock()
    client = _client(clock, capacity=1, timeout_rate=1.0)
    request = ChatRequest(model="writer", messages=REQUEST.messages, timeout=3.0)
    pending = asyncio.create_task(client.chat(request))
    await client.capacity_model.wait_until(lambda s: s.in_flight == 1)
    clock.advance(3.0)
    with pytest.raises(ProviderTimeoutError):
        await pending
    assert client.capacity_model.stats().in_flight == 0


async def test_factory_picks_the_adapter_by_provider_type() -> None:
    simulated = make_model_client(
        ModelProvider(name="sim", provider_type="simulated"), max_connections=8
    )
    assert isinstance(simulated, SimulatedModelClient)
    assert simulated.capacity_model.config == SimulationConfig()

    remote = make_model_client(
        ModelProvider(name="local", endpoint="http://127.0.0.1:9/v1"), max_connections=7
    )
    try:
        assert isinstance(remote, OpenAICompatibleClient)
        limits = remote.transport_pool_limits
        assert limits is not None
        assert (limits.max_connections, limits.max_keepalive_connections) == (7, 7)
    finally:
        await remote.aclose()
