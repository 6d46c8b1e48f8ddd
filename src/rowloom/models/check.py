"""`rowloom models check`: one small request per model before a long run.

Each model gets the probes its kind needs, each one outbound attempt with a timeout (no
retries, no request admission: a probe should show what the endpoint does, not hide it):

- chat: a short completion, then a structured one with a JSON schema (`response_format`
  `json_schema`); whether the answer is valid for the schema says if the server honours it;
- embedding: one input, reporting the vector's dimension;
- image: one generated image, reporting its size in bytes.

Verdicts: `ok`; `degraded` (works, but JSON-schema output is not honoured, so structured and
judge columns will lean on corrective retries; or the endpoint answered 429 now); `unusable`
(no connection, auth or model errors, timeouts, 5xx, malformed answers); `skipped`
(`skip_health_check: true`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema

from rowloom.clock import Clock
from rowloom.config.dataset import DatasetConfig
from rowloom.config.models import ModelConfig
from rowloom.models.clients import make_model_client
from rowloom.models.clients.base import (
    ChatRequest,
    EmbeddingRequest,
    ImageRequest,
    ModelClient,
    ProviderError,
    ProviderRateLimitError,
)
from rowloom.models.facade import parse_structured
from rowloom.models.reasoning import split_reasoning

__all__ = ["ModelCheck", "Probe", "Verdict", "check_models"]

Verdict = Literal["ok", "degraded", "unusable", "skipped"]

PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "enum": ["yes", "no"]},
        "confidence": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}
_CHAT_PROMPT = "Reply with the single word: ready"
_STRUCTURED_PROMPT = (
    "Is water wet? Answer as a JSON object with `answer` (yes or no) and `confidence` "
    "(an integer from 1 to 5)."
)


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe request: what it asked, how long it took, and what came of it."""

    name: str
    ok: bool
    latency_ms: float | None
    detail: str


@dataclass(slots=True)
class ModelCheck:
    """The probes of one model alias and the verdict over them."""

    alias: str
    model: str
    provider: str
    generation_kind: str
    probes: list[Probe] = field(default_factory=list)
    verdict: Verdict = "ok"
    reason: str = ""
    schema_honoured: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "model": self.model,
            "provider": self.provider,
            "generation_kind": self.generation_kind,
            "verdict": self.verdict,
            "reason": self.reason,
            "schema_honoured": self.schema_honoured,
            "probes": [
                {"name": p.name, "ok": p.ok, "latency_ms": p.latency_ms, "detail": p.detail}
                for p in self.probes
            ],
        }


async def check_models(
    config: DatasetConfig,
    *,
    probe_timeout: float = 30.0,
    aliases: Sequence[str] | None = None,
    clock: Clock | None = None,
) -> list[ModelCheck]:
    """Probe every model of `config` (or only `aliases`), models concurrently."""
    wanted = [m for m in config.models if aliases is None or m.alias in aliases]
    providers = {p.name: p for p in config.providers}
    clients: dict[str, ModelClient] = {}
    for name in sorted({m.provider for m in wanted if not m.skip_health_check}):
        clients[name] = make_model_client(providers[name], max_connections=8, clock=clock)
    try:
        return list(
            await asyncio.gather(
                *(_check(m, clients.get(m.provider), probe_timeout) for m in wanted)
            )
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients.values()), return_exceptions=True)


async def _check(
    model: ModelConfig, client: ModelClient | None, probe_timeout: float
) -> ModelCheck:
    result = ModelCheck(model.alias, model.model, model.provider, model.generation_kind)
    if client is None or model.skip_health_check:
        result.verdict, result.reason = "skipped", "skip_health_check is set"
        return result
    if model.generation_kind == "chat":
        await _check_chat(result, model, client, probe_timeout)
    elif model.generation_kind == "embedding":
        request = EmbeddingRequest(model.model, ("rowloom model check",), timeout=probe_timeout)
        probe = await _timed("embedding", lambda: client.embed(request), _embedding_detail)
        _add(result, probe)
    else:
        image = ImageRequest(model.model, "a small red square", timeout=probe_timeout)
        probe = await _timed(
            "image", lambda: client.generate_image(image), lambda r: f"{len(r.images[0])} bytes"
        )
        _add(result, probe)
    return result


async def _check_chat(
    result: ModelCheck, model: ModelConfig, client: ModelClient, probe_timeout: float
) -> None:
    budget = max(model.inference_parameters.max_tokens or 0, 256)
    chat = ChatRequest(
        model.model,
        ({"role": "user", "content": _CHAT_PROMPT},),
        max_tokens=budget,
        timeout=probe_timeout,
        extra_body=model.inference_parameters.extra_body,
    )
    probe = await _timed("chat", lambda: client.chat(chat), lambda r: _preview(r.text))
    _add(result, probe)
    if result.verdict == "unusable":
        return
    structured = ChatRequest(
        model.model,
        ({"role": "user", "content": _STRUCTURED_PROMPT},),
        max_tokens=budget,
        timeout=probe_timeout,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "probe", "schema": PROBE_SCHEMA, "strict": True},
        },
        extra_body=model.inference_parameters.extra_body,
    )
    validator = jsonschema.Draft202012Validator(PROBE_SCHEMA)
    answers: list[str] = []

    async def call() -> Any:
        response = await client.chat(structured)
        answers.append(split_reasoning(response.text)[0])
        return response

    probe = await _timed("json_schema", call, lambda r: _preview(answers[-1]))
    if probe.ok:
        _, problem = parse_structured(answers[-1], validator)
        result.schema_honoured = not problem
        if problem:
            probe = Probe(probe.name, False, probe.latency_ms, f"not honoured: {problem}")
            if result.verdict == "ok":
                result.verdict = "degraded"
                result.reason = (
                    "JSON-schema output is not honoured: structured and judge columns will "
                    "rely on corrective retries"
                )
        result.probes.append(probe)
        return
    _add(result, probe)


def _add(result: ModelCheck, probe: Probe) -> None:
    result.probes.append(probe)
    if probe.ok:
        return
    if probe.detail.startswith("rate limited"):
        if result.verdict == "ok":
            result.verdict, result.reason = "degraded", probe.detail
        return
    result.verdict, result.reason = "unusable", f"{probe.name}: {probe.detail}"


async def _timed(
    name: str, call: Callable[[], Awaitable[Any]], describe: Callable[[Any], str]
) -> Probe:
    started = time.perf_counter()
    try:
        response = await call()
    except ProviderRateLimitError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return Probe(name, False, round(elapsed, 1), f"rate limited (429): {exc}")
    except ProviderError as exc:
        return Probe(name, False, None, f"{exc.error_class}: {exc}")
    elapsed = (time.perf_counter() - started) * 1000
    return Probe(name, True, round(elapsed, 1), describe(response))


def _embedding_detail(response: Any) -> str:
    return f"{len(response.vectors[0])} dimensions" if response.vectors else "no vector"


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:60] + ("..." if len(flat) > 60 else "")) if flat else "(empty answer)"
