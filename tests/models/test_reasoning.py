"""Reasoning over real HTTP: the adapter reads `reasoning_content` and reasoning tokens, inline
`<think>` blocks are split off, and values never carry them."""

from __future__ import annotations

import pytest

from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.models.clients.base import ChatRequest
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient
from rowloom.models.reasoning import split_reasoning
from rowloom.simulation.server import MockProviderServer, MockServerOptions

REQUEST = ChatRequest("m", ({"role": "user", "content": "Why is the sky blue?"},), timeout=10)


@pytest.mark.parametrize(
    ("text", "answer", "reasoning"),
    [
        ("plain answer", "plain answer", None),
        ("<think>step 1</think>\nThe answer.", "The answer.", "step 1"),
        ("<THINK> a </THINK> b <think>c</think> d", "b  d", "a\n\nc"),
        ("<think>cut off mid-thought", "", "cut off mid-thought"),
        ("opened by the template</think>\n\nanswer", "answer", "opened by the template"),
        ('<think></think>{"a": 1}', '{"a": 1}', None),
    ],
)
def test_split_reasoning(text: str, answer: str, reasoning: str | None) -> None:
    assert split_reasoning(text) == (answer, reasoning)


async def test_reasoning_field_and_tokens_over_http() -> None:
    async with MockProviderServer(MockServerOptions(latency_ms=0, reasoning="field")) as server:
        client = OpenAICompatibleClient("mock", server.url)
        try:
            response = await client.chat(REQUEST)
        finally:
            await client.aclose()
    assert response.reasoning_content is not None
    assert response.reasoning_content.startswith("Let me think:")
    assert "<think>" not in response.text and response.text
    assert response.usage is not None
    assert response.usage.reasoning_tokens == len(response.reasoning_content.split())
    assert response.usage.completion_tokens > response.usage.reasoning_tokens


async def test_inline_think_blocks_over_http_never_reach_values() -> None:
    async with MockProviderServer(MockServerOptions(latency_ms=0, reasoning="inline")) as server:
        client = OpenAICompatibleClient("mock", server.url)
        try:
            response = await client.chat(REQUEST)
        finally:
            await client.aclose()
        assert response.reasoning_content is None
        answer, thoughts = split_reasoning(response.text)
        assert response.text.startswith("<think>Let me think:") and thoughts and answer
        cfg = DatasetConfig.from_dict(
            {
                "providers": [{"name": "p", "endpoint": server.url}],
                "models": [{"alias": "r1", "model": "reasoner", "provider": "p"}],
                "columns": [
                    {
                        "name": "text",
                        "column_type": "llm_text",
                        "model_alias": "r1",
                        "prompt": "Say something.",
                    },
                    {
                        "name": "fact",
                        "column_type": "llm_structured",
                        "model_alias": "r1",
                        "prompt": "A fact about {{ text }}",
                        "output_format": {
                            "type": "object",
                            "properties": {"n": {"type": "integer"}},
                            "required": ["n"],
                        },
                        "max_correction_attempts": 0,
                    },
                ],
            }
        )
        result = await Designer().apreview(cfg, 4)
    assert result.summary.status == "complete"
    assert all("<think>" not in t and t for t in result.data["text"])
    assert all(isinstance(f["n"], int) for f in result.data["fact"])
    assert result.summary.token_usage["total"]["reasoning_tokens"] == 0  # inline: not reported
