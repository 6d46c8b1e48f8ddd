"""`ModelFacade`: what generators (built-in and custom) call to use a model.

Every call goes through the run's `ModelRequestExecutor`, so each concrete attempt (retries and
structured-output corrections included) is admitted, classified and released on its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import jsonschema

from rowloom.errors import NonRetryableTaskError, RetryableTaskError
from rowloom.models.clients.base import (
    ChatResponse,
    EmbeddingResponse,
    ImageResponse,
    Message,
    ToolCall,
)
from rowloom.models.reasoning import split_reasoning
from rowloom.models.usage import CallTag

T = TypeVar("T")


class ModelCallExecutor(Protocol):
    """The executor surface the facade needs (implemented by `ModelRequestExecutor`)."""

    async def execute_chat(
        self,
        alias: str,
        messages: Sequence[Message],
        *,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        tag: CallTag | None = None,
    ) -> ChatResponse: ...

    async def execute_embedding(
        self, alias: str, inputs: Sequence[str], *, tag: CallTag | None = None
    ) -> EmbeddingResponse: ...

    async def execute_image(
        self, alias: str, prompt: str, *, tag: CallTag | None = None
    ) -> ImageResponse: ...


class ToolBox(Protocol):
    """The tools one column may call (implemented over MCP by `rowloom.models.mcp`)."""

    @property
    def specs(self) -> Sequence[Mapping[str, Any]]:
        """OpenAI function-tool specs offered to the model."""
        ...

    @property
    def max_turns(self) -> int:
        """Turns in which the model may ask for tools before it must answer."""
        ...

    @property
    def loop_timeout(self) -> float | None:
        """Seconds the whole tool-calling loop of one cell may take."""
        ...

    async def call(self, call: ToolCall) -> str:
        """Run one tool call; the text result (errors as text the model can read)."""
        ...


def build_messages(
    prompt: str, system_prompt: str | None = None, images: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """A chat message list from a user prompt, an optional system prompt and optional image
    content parts (`{"type": "image_url", ...}`), which come before the prompt text (as Data
    Designer sends them; the text part is kept when the prompt is empty)."""
    messages: list[dict[str, Any]] = (
        [{"role": "system", "content": system_prompt}] if system_prompt else []
    )
    if images:
        content: Any = [*(dict(part) for part in images), {"type": "text", "text": prompt}]
    else:
        content = prompt
    messages.append({"role": "user", "content": content})
    return messages


@dataclass(slots=True)
class Conversation:
    """The messages of one cell's exchange with a model (its final answer included) and
    that final answer."""

    messages: list[dict[str, Any]]
    response: ChatResponse
    tool_calls: int = 0


class ModelFacade:
    """Model calls for generators: chat text, schema-valid JSON, tool use, embeddings, images.

    A facade bound to a cell (`bind`) tags each call with it, so usage is booked per column
    and row group and sampled inference parameters are drawn per cell.
    """

    def __init__(
        self,
        executor: ModelCallExecutor,
        allowed_aliases: Sequence[str] | None = None,
        *,
        tag: CallTag | None = None,
        tools: Mapping[str, ToolBox] | None = None,
    ):
        self._executor = executor
        self._allowed = frozenset(allowed_aliases) if allowed_aliases is not None else None
        self._tag = tag
        self._tools: Mapping[str, ToolBox] = tools or {}
        self._validators: dict[int, tuple[Mapping[str, Any], jsonschema.Validator]] = {}

    def bind(self, tag: CallTag) -> ModelFacade:
        """The same facade, its calls made for the cell `tag`."""
        bound = ModelFacade.__new__(ModelFacade)
        bound._executor = self._executor
        bound._allowed = self._allowed
        bound._tag = tag
        bound._tools = self._tools
        bound._validators = self._validators
        return bound

    def _validator(self, schema: Mapping[str, Any]) -> jsonschema.Validator:
        """The validator of `schema`, built once per schema object (a column's schema is one
        object for the whole run) and shared by every bound copy of this facade."""
        hit = self._validators.get(id(schema))
        if hit is not None and hit[0] is schema:
            return hit[1]
        validator = jsonschema.Draft202012Validator(dict(schema))
        self._validators[id(schema)] = (schema, validator)  # the key's object is kept alive
        return validator

    def toolbox(self, tool_alias: str) -> ToolBox:
        """The tools of a tool config this run opened."""
        try:
            return self._tools[tool_alias]
        except KeyError:
            raise NonRetryableTaskError(
                "unknown_tool_alias", f"tool alias {tool_alias!r} is not open in this run"
            ) from None

    def _check(self, alias: str) -> None:
        if self._allowed is not None and alias not in self._allowed:
            raise NonRetryableTaskError(
                "undeclared_model_alias",
                f"model alias {alias!r} is not in this column's model_aliases "
                f"{sorted(self._allowed)}",
            )

    async def chat(
        self,
        alias: str,
        prompt: str | Sequence[Message],
        *,
        system_prompt: str | None = None,
    ) -> str:
        """One chat completion; returns the text of the answer."""
        self._check(alias)
        messages = (
            build_messages(prompt, system_prompt) if isinstance(prompt, str) else list(prompt)
        )
        response = await self._executor.execute_chat(alias, messages, tag=self._tag)
        return response.text

    async def converse(
        self,
        alias: str,
        messages: Sequence[Message],
        *,
        response_format: Mapping[str, Any] | None = None,
        tools: ToolBox | None = None,
    ) -> Conversation:
        """A chat completion that may use `tools`: while the model asks for tool calls (at
        most `tools.max_turns` turns, within `tools.loop_timeout`), the calls run and their
        results go back; then the final answer. Each model call is its own admitted request."""
        self._check(alias)
        history = [dict(m) for m in messages]
        if tools is None or not tools.specs:
            response = await self._executor.execute_chat(
                alias, history, response_format=response_format, tag=self._tag
            )
            history.append(response.assistant_message())
            return Conversation(history, response)
        try:
            async with asyncio.timeout(tools.loop_timeout):
                return await self._tool_loop(alias, history, response_format, tools)
        except TimeoutError:
            raise RetryableTaskError(
                "tool_loop_timeout",
                f"the tool-calling loop took longer than {tools.loop_timeout} s",
            ) from None

    async def _tool_loop(
        self,
        alias: str,
        history: list[dict[str, Any]],
        response_format: Mapping[str, Any] | None,
        tools: ToolBox,
    ) -> Conversation:
        calls = 0
        for turn in range(tools.max_turns + 1):
            last_turn = turn == tools.max_turns
            response = await self._executor.execute_chat(
                alias,
                history,
                response_format=response_format,
                tools=tools.specs,
                tool_choice="none" if last_turn else None,
                tag=self._tag,
            )
            history.append(response.assistant_message())
            if not response.tool_calls or last_turn:
                return Conversation(history, response, calls)
            results = await asyncio.gather(*(tools.call(c) for c in response.tool_calls))
            calls += len(response.tool_calls)
            for call, result in zip(response.tool_calls, results, strict=True):
                history.append({"role": "tool", "tool_call_id": call.id, "content": result})
        raise AssertionError("unreachable: the last turn always returns")  # pragma: no cover

    async def structured(
        self,
        alias: str,
        prompt: str | Sequence[Message],
        schema: Mapping[str, Any],
        *,
        system_prompt: str | None = None,
        max_correction_attempts: int = 2,
        schema_name: str = "output",
        normalize: Callable[[Any], Any] | None = None,
    ) -> Any:
        """JSON valid for `schema`; invalid output gets up to `max_correction_attempts`
        corrective follow-ups, each its own request attempt. `normalize` maps the parsed JSON
        before it is checked (e.g. `"4"` -> `4` for an integer option). Raises
        `NonRetryableTaskError` (reason `invalid_structured_output`) when every attempt is
        invalid."""
        messages = (
            build_messages(prompt, system_prompt) if isinstance(prompt, str) else list(prompt)
        )
        value, _ = await self.structured_conversation(
            alias,
            messages,
            schema,
            max_correction_attempts=max_correction_attempts,
            schema_name=schema_name,
            normalize=normalize,
        )
        return value

    async def structured_conversation(
        self,
        alias: str,
        messages: Sequence[Message],
        schema: Mapping[str, Any],
        *,
        max_correction_attempts: int = 2,
        schema_name: str = "output",
        tools: ToolBox | None = None,
        normalize: Callable[[Any], Any] | None = None,
    ) -> tuple[Any, Conversation]:
        """`structured` from a message list (tools allowed); the value and the conversation."""
        self._check(alias)
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": dict(schema), "strict": False},
        }
        validator = self._validator(schema)
        history: list[Message] = list(messages)
        problem = ""
        for attempt in range(max_correction_attempts + 1):
            conversation = await self.converse(
                alias, history, response_format=response_format, tools=tools
            )
            value, problem = parse_structured(
                split_reasoning(conversation.response.text)[0], validator, normalize
            )
            if not problem:
                return value, conversation
            if attempt < max_correction_attempts:
                history = [
                    *conversation.messages[:-1],
                    {"role": "assistant", "content": conversation.response.text[:4000]},
                    {
                        "role": "user",
                        "content": "Your answer was not valid: "
                        f"{problem}. Reply with only a JSON document valid for the schema.",
                    },
                ]
        raise NonRetryableTaskError(
            "invalid_structured_output",
            f"output stayed invalid after {max_correction_attempts} correction(s): {problem}",
        )

    async def embed(self, alias: str, text: str) -> list[float]:
        """The embedding vector of one text."""
        self._check(alias)
        response = await self._executor.execute_embedding(alias, [text], tag=self._tag)
        if len(response.vectors) != 1:
            raise NonRetryableTaskError(
                "malformed_response", f"expected 1 embedding, got {len(response.vectors)}"
            )
        return list(response.vectors[0])

    async def image(self, alias: str, prompt: str) -> bytes:
        """The bytes of one generated image."""
        self._check(alias)
        response = await self._executor.execute_image(alias, prompt, tag=self._tag)
        if len(response.images) != 1:
            raise NonRetryableTaskError(
                "malformed_response", f"expected 1 image, got {len(response.images)}"
            )
        return response.images[0]


def parse_structured(
    text: str,
    validator: jsonschema.protocols.Validator,
    normalize: Callable[[Any], Any] | None = None,
) -> tuple[Any, str]:
    """Parse model output as JSON (tolerating a fenced code block) and validate it.

    Returns `(value, "")` when valid, else `(None, problem)`.
    """
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        if body.lower().startswith("json"):
            body = body[4:]
        body = body.strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at position {exc.pos})"
    if normalize is not None:
        value = normalize(value)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return None, f"schema violation at {path}: {error.message[:300]}"
    return value, ""


class SyncModelFacade:
    """The same calls as `ModelFacade`, blocking, for sync custom functions running in a
    worker thread; each call runs on the run's event loop."""

    def __init__(self, facade: ModelFacade, loop: asyncio.AbstractEventLoop) -> None:
        self._facade = facade
        self._loop = loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def chat(
        self,
        alias: str,
        prompt: str | Sequence[Message],
        *,
        system_prompt: str | None = None,
    ) -> str:
        """See `ModelFacade.chat`."""
        return self._run(self._facade.chat(alias, prompt, system_prompt=system_prompt))

    def structured(
        self,
        alias: str,
        prompt: str | Sequence[Message],
        schema: Mapping[str, Any],
        *,
        system_prompt: str | None = None,
        max_correction_attempts: int = 2,
    ) -> Any:
        """See `ModelFacade.structured`."""
        return self._run(
            self._facade.structured(
                alias,
                prompt,
                schema,
                system_prompt=system_prompt,
                max_correction_attempts=max_correction_attempts,
            )
        )

    def embed(self, alias: str, text: str) -> list[float]:
        """See `ModelFacade.embed`."""
        return self._run(self._facade.embed(alias, text))
