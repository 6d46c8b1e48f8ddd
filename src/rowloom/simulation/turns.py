"""One simulated assistant turn: text (via `SimulatedResponses`), optional reasoning, tool calls.

Shared by the in-process simulated client and `rowloom mock-server`, and deterministic like
the rest of the simulation (a pure function of the request and the seed):

- reasoning (`reasoning="field"`: a separate `reasoning_content`, its words counted as
  reasoning tokens inside the completion tokens; `"inline"`: a `<think>` block before the
  text, as servers without a reasoning parser send it, counted as plain completion tokens);
- tool calls: when the request offers `tools` (and `tool_choice` is not `"none"`), the first
  `tool_call_turns` turns after the last user message call a tool (turn k calls tool
  k mod n) with arguments valid for its parameter schema; the next turn answers in text that
  quotes the tool results, so a test can see them flow through;
- `ignore_response_format` answers text even when JSON is asked for (a model that ignores
  JSON-schema output, for `rowloom models check`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rowloom.simulation.responses import SimulatedResponses, generate_json, request_digest

__all__ = ["ReasoningMode", "SimulatedToolCall", "SimulatedTurn", "SimulatedTurns"]

ReasoningMode = Literal["none", "field", "inline"]
_WORD = re.compile(r"[A-Za-z]{4,}")
_THOUGHTS = tuple(
    [
        "first",
        "consider",
        "what",
        "the",
        "question",
        "asks",
        "then",
        "check",
        "each",
        "part",
        "against",
        "the",
        "context",
        "compare",
        "the",
        "options",
        "weigh",
        "the",
        "evidence",
        "and",
        "settle",
        "on",
        "the",
        "clearest",
        "answer",
    ]
)


@dataclass(frozen=True, slots=True)
class SimulatedToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class SimulatedTurn:
    """One assistant answer and its token counts (reasoning tokens inside completion)."""

    text: str
    reasoning: str | None
    tool_calls: tuple[SimulatedToolCall, ...]
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    finish_reason: str


class SimulatedTurns:
    """Builds simulated assistant turns over a `SimulatedResponses`."""

    __slots__ = ("_ignore_format", "_reasoning", "_responses", "_seed", "_tool_turns")

    def __init__(
        self,
        responses: SimulatedResponses,
        *,
        seed: int = 0,
        reasoning: ReasoningMode = "none",
        tool_call_turns: int = 1,
        ignore_response_format: bool = False,
    ) -> None:
        if tool_call_turns < 0:
            raise ValueError("tool_call_turns must be >= 0")
        self._responses = responses
        self._seed = seed
        self._reasoning = reasoning
        self._tool_turns = tool_call_turns
        self._ignore_format = ignore_response_format

    def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        sample_key: str | None = None,
    ) -> SimulatedTurn:
        """The answer to one chat request (`sample_key`: the cell it serves, if known)."""
        fmt = None if self._ignore_format else response_format
        answer = self._responses.chat(
            model, messages, max_tokens=max_tokens, response_format=fmt, sample_key=sample_key
        )
        since_user = _since_last_user(messages)
        calls: tuple[SimulatedToolCall, ...] = ()
        text = answer.text
        if tools and tool_choice != "none":
            turns_done = sum(
                1 for m in since_user if m.get("role") == "assistant" and m.get("tool_calls")
            )
            if turns_done < self._tool_turns:
                calls = (self._tool_call(model, messages, tools, turns_done),)
                text = ""
        results = [str(m.get("content", "")) for m in since_user if m.get("role") == "tool"]
        if not calls and results and fmt is None:
            text = f"{text} Tool results: " + "; ".join(r[:160] for r in results)
        reasoning = self._thoughts(model, messages)
        reasoning_tokens = len(reasoning.split()) if reasoning else 0
        completion = (answer.completion_tokens if not calls else 8) + reasoning_tokens
        if reasoning and self._reasoning == "inline":
            text = f"<think>{reasoning}</think>\n{text}"
            reasoning = None
            reasoning_tokens = 0  # servers that inline reasoning do not count it apart
        return SimulatedTurn(
            text=text,
            reasoning=reasoning,
            tool_calls=calls,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=completion,
            reasoning_tokens=reasoning_tokens,
            finish_reason="tool_calls" if calls else "stop",
        )

    def _tool_call(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        turn: int,
    ) -> SimulatedToolCall:
        function = tools[turn % len(tools)].get("function") or {}
        digest = request_digest(
            self._seed, model, ("tool", json.dumps(list(messages), sort_keys=True, default=str))
        )
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        arguments = generate_json(schema, random.Random(digest))
        if isinstance(arguments, dict):
            _prompt_words(arguments, schema, messages)
        return SimulatedToolCall(
            id=f"call_{digest:032x}"[:17],
            name=str(function.get("name", "tool")),
            arguments=json.dumps(arguments, ensure_ascii=False),
        )

    def _thoughts(self, model: str, messages: Sequence[Mapping[str, Any]]) -> str | None:
        if self._reasoning == "none":
            return None
        digest = request_digest(
            self._seed,
            model,
            ("reasoning", json.dumps(list(messages), sort_keys=True, default=str)),
        )
        rng = random.Random(digest)
        words = [rng.choice(_THOUGHTS) for _ in range(rng.randint(6, 16))]
        return "Let me think: " + " ".join(words) + "."


def _since_last_user(messages: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return messages[i + 1 :]
    return messages


def _prompt_words(
    arguments: dict[str, Any], schema: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
) -> None:
    """Free-text string arguments take the last word (4+ letters) of the last user message,
    as a model asked "capital of france?" would pass "france"."""
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    content = user.get("content") if user is not None else None
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    words = _WORD.findall(content) if isinstance(content, str) else []
    if not words:
        return
    properties = schema.get("properties") or {}
    for name, prop in properties.items():
        if (
            name in arguments
            and isinstance(prop, Mapping)
            and prop.get("type") == "string"
            and not {"enum", "const", "format", "pattern"} & set(prop)
        ):
            arguments[name] = words[-1]
