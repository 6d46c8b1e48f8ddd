"""The OpenAI adapter against a real local model (llama.cpp server + SmolLM2-135M)."""

from __future__ import annotations

import json
import math
import signal
from collections.abc import AsyncIterator
from typing import Literal

import jsonschema
import pytest
from llama_server import MODEL_ALIAS, LlamaServerHandle, missing_requirement, start_llama_server
from pydantic import BaseModel, Field

from rowloom.models.clients.base import ChatRequest, EmbeddingRequest
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient

pytestmark = pytest.mark.llm


class Verdict(BaseModel):
    verdict: Literal["correct", "incorrect"]
    score: int = Field(ge=1, le=5)


@pytest.fixture
async def client(llama_server: LlamaServerHandle) -> AsyncIterator[OpenAICompatibleClient]:
    adapter = OpenAICompatibleClient("llama", llama_server.url, max_connections=4)
    try:
        yield adapter
    finally:
        await adapter.aclose()


async def test_chat_completion_returns_text_and_usage(client: OpenAICompatibleClient) -> None:
    request = ChatRequest(
        model=MODEL_ALIAS,
        messages=({"role": "user", "content": "Name one river in Europe."},),
        temperature=0.0,
        max_tokens=16,
        timeout=60.0,
    )
    response = await client.chat(request)
    assert response.text.strip()
    assert response.status_code == 200
    assert response.usage is not None
    assert 0 < response.usage.completion_tokens <= 16


async def test_json_schema_completion_parses_and_validates(client: OpenAICompatibleClient) -> None:
    schema = Verdict.model_json_schema()
    request = ChatRequest(
        model=MODEL_ALIAS,
        messages=(
            {"role": "system", "content": "Answer with JSON only."},
            {"role": "user", "content": "Is 2 + 2 = 4? Give a verdict and a score from 1 to 5."},
        ),
        temperature=0.0,
        max_tokens=64,
        timeout=60.0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": schema, "strict": True},
        },
    )
    response = await client.chat(request)
    document = json.loads(response.text)
    jsonschema.validate(document, schema)
    assert Verdict.model_validate(document).score in range(1, 6)


async def test_embeddings_are_fixed_size_unit_vectors(client: OpenAICompatibleClient) -> None:
    request = EmbeddingRequest(
        model=MODEL_ALIAS, inputs=("a quiet river", "a loud volcano"), timeout=60.0
    )
    response = await client.embed(request)
    assert len(response.vectors) == 2
    first, second = response.vectors
    assert len(first) == len(second) > 0
    assert math.isclose(math.fsum(x * x for x in first), 1.0, rel_tol=1e-3)
    assert first != second


def test_serve_local_stops_cleanly_on_ctrl_c() -> None:
    """`rowloom serve-local`, started with stdin closed (as in the background), serves until
    SIGINT, then exits 0."""
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    with start_llama_server(slots=1) as server:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=30) == 0
