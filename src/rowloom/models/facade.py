"""`ModelFacade`: what generators (built-in and custom) call to use a model.

Every call goes through the run's `ModelRequestExecutor`, so each concrete attempt (retries and
structured-output corrections included) is admitted, classified and released on its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import jsonschema

from rowloom.errors import NonRetryableTaskError
from rowloom.models.clients.base import ChatResponse, EmbeddingResponse

T = TypeVar("T")


class ModelCallExecutor(Protocol):
    """The executor surface the facade needs (implemented by `ModelRequestExecutor`)."""

    async def execute_chat(
        self,
        alias: str,
        messages: Sequence[Mapping[str, str]],
        *,
        response_format: Mapping[str, Any] | None = None,
    ) -> ChatResponse: ...

    async def execute_embedding(self, alias: str, inputs: Sequence[str]) -> EmbeddingResponse: ...


def build_messages(prompt: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    """A chat message list from a user prompt and an optional system prompt."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": prompt})
    return messages


class ModelFacade:
    """Model calls for generators: chat text, schema-valid JSON, embeddings."""

    def __init__(self, executor: ModelCallExecutor, allowed_aliases: Sequence[str] | None = None):
        self._executor = executor
        self._allowed = frozenset(allowed_aliases) if allowed_aliases is not None else None

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
        prompt: str | Sequence[Mapping[str, str]],
        *,
        system_prompt: str | None = None,
    ) -> str:
        """One chat completion; returns the text of the answer."""
        self._check(alias)
        messages = (
            build_messages(prompt, system_prompt) if isinstance(prompt, str) else list(prompt)
        )
        response = await self._executor.execute_chat(alias, messages)
        return response.text

    async def structured(
        self,
        alias: str,
        prompt: str | Sequence[Mapping[str, str]],
        schema: Mapping[str, Any],
        *,
        system_prompt: str | None = None,
        max_correction_attempts: int = 2,
        schema_name: str = "output",
    ) -> Any:
        """JSON valid for `schema`; invalid output gets up to `max_correction_attempts`
        corrective follow-ups, each its own request attempt. Raises `NonRetryableTaskError`
        (reason `invalid_structured_output`) when every attempt is invalid."""
        self._check(alias)
        messages: list[Mapping[str, str]] = (
            list(build_messages(prompt, system_prompt)) if isinstance(prompt, str) else list(prompt)
        )
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": dict(schema), "strict": False},
        }
        validator = jsonschema.Draft202012Validator(dict(schema))
        problem = ""
        for attempt in range(max_correction_attempts + 1):
            response = await self._executor.execute_chat(
                alias, messages, response_format=response_format
            )
            value, problem = parse_structured(response.text, validator)
            if not problem:
                return value
            if attempt < max_correction_attempts:
                messages = [
                    *messages,
                    {"role": "assistant", "content": response.text[:4000]},
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
        response = await self._executor.execute_embedding(alias, [text])
        if len(response.vectors) != 1:
            raise NonRetryableTaskError(
                "malformed_response", f"expected 1 embedding, got {len(response.vectors)}"
            )
        return list(response.vectors[0])


def parse_structured(text: str, validator: jsonschema.protocols.Validator) -> tuple[Any, str]:
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
        prompt: str | Sequence[Mapping[str, str]],
        *,
        system_prompt: str | None = None,
    ) -> str:
        """See `ModelFacade.chat`."""
        return self._run(self._facade.chat(alias, prompt, system_prompt=system_prompt))

    def structured(
        self,
        alias: str,
        prompt: str | Sequence[Mapping[str, str]],
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
