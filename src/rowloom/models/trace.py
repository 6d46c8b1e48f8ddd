"""What an LLM column keeps of its exchange: the reasoning and the message trace.

`with_trace: all_messages` keeps every message (system, user, assistant with tool calls, tool
results, corrective follow-ups); `last_message` keeps the final assistant message only, as a
one-element list (Data Designer's shape). Inline `<think>` blocks move from an assistant
message's `content` to its `reasoning_content`, and inline image data is abbreviated so a
trace stays a readable record rather than a copy of every image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rowloom.models.clients.base import ChatResponse
from rowloom.models.reasoning import split_reasoning

__all__ = ["final_reasoning", "trace_messages"]

_DATA_URI = re.compile(r"^(data:[\w/+.-]+;base64,)(.*)$", re.DOTALL)


def final_reasoning(response: ChatResponse) -> str | None:
    """The final answer's reasoning: its `reasoning_content` field, else its inline think
    blocks; None when it has none."""
    text = response.reasoning_content
    if text is None:
        text = split_reasoning(response.text)[1]
    text = text.strip() if text else None
    return text or None


def trace_messages(messages: Sequence[Mapping[str, Any]], mode: str) -> list[dict[str, Any]]:
    """The trace of an exchange for `mode` (`all_messages` or `last_message`)."""
    if mode == "last_message":
        last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
        return [_clean(last)] if last is not None else []
    return [_clean(m) for m in messages]


def _clean(message: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(message)
    content = out.get("content")
    if out.get("role") == "assistant" and isinstance(content, str):
        answer, thoughts = split_reasoning(content)
        if thoughts is not None:
            out["content"] = answer
            out.setdefault("reasoning_content", thoughts)
    elif isinstance(content, list):
        out["content"] = [_abbreviate(part) for part in content]
    return out


def _abbreviate(part: Any) -> Any:
    if not isinstance(part, Mapping) or part.get("type") != "image_url":
        return part
    image = part.get("image_url")
    if not isinstance(image, Mapping):
        return part
    url = image.get("url")
    match = _DATA_URI.match(url) if isinstance(url, str) else None
    if match is None:
        return part
    size = len(match.group(2)) * 3 // 4
    return {**part, "image_url": {**image, "url": f"{match.group(1)}<{size:,} bytes>"}}
