"""Trace and reasoning extraction of an exchange (the `__trace` and `__reasoning_content`
columns' values)."""

from __future__ import annotations

from rowloom.models.clients.base import ChatResponse
from rowloom.models.trace import final_reasoning, trace_messages

EXCHANGE = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400}},
        {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
    ]},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    {"role": "assistant", "content": "<think>it said cat</think>A cat."},
]  # fmt: skip


def test_all_messages_keeps_everything_readable() -> None:
    trace = trace_messages(EXCHANGE, "all_messages")
    assert [m["role"] for m in trace] == ["system", "user", "assistant", "tool", "assistant"]
    image = trace[1]["content"][1]["image_url"]["url"]
    assert image == "data:image/png;base64,<300 bytes>"
    assert trace[1]["content"][2] == EXCHANGE[1]["content"][2]  # type: ignore[index]
    assert trace[2]["tool_calls"][0]["function"]["name"] == "look"
    assert trace[4] == {
        "role": "assistant",
        "content": "A cat.",
        "reasoning_content": "it said cat",
    }
    assert EXCHANGE[4]["content"].startswith("<think>")  # the input is not modified


def test_last_message_and_reasoning() -> None:
    assert trace_messages(EXCHANGE, "last_message") == [
        {"role": "assistant", "content": "A cat.", "reasoning_content": "it said cat"}
    ]
    assert trace_messages(EXCHANGE[:2], "last_message") == []
    assert final_reasoning(ChatResponse(text="x", reasoning_content="  why  ")) == "why"
    assert final_reasoning(ChatResponse(text="<think> inline </think> x")) == "inline"
    assert final_reasoning(ChatResponse(text="x", reasoning_content="  ")) is None
    assert final_reasoning(ChatResponse(text="x")) is None
