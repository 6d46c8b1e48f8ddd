"""The simulated provider over real HTTP (aiohttp, 127.0.0.1 by default): `rowloom mock-server`.

OpenAI-compatible routes: `POST /v1/chat/completions` (with reasoning and tool calls, see
`simulation.turns`), `POST /v1/embeddings`, `POST /v1/images/generations` (deterministic small
PNGs as `b64_json`), `GET /v1/models`, plus `GET /stats` (JSON counters). Each request runs
through the same `ProviderCapacityModel` and `SimulatedResponses` as the in-process adapter,
so both paths behave alike:

- 429 with a `Retry-After` header (integer seconds, or an HTTP date when
  `retry_after_format="http-date"`) and `x-ratelimit-*-requests` headers when `rpm` is set;
- injected 5xx answers with a JSON error body (`fail_status`, 500 by default);
- injected timeouts hold the request open until the client gives up (disconnects);
- `drop_rate` closes that fraction of connections abruptly, before any answer.

A configured `api_key` makes every route except `/stats` require `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import math
import random
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from typing import Any, Literal

import numpy as np
from aiohttp import web

from rowloom.clock import Clock
from rowloom.config.models import SimulationConfig
from rowloom.provider_wire import RateLimitHeaders
from rowloom.simulation.capacity import CapacityStats, ProviderCapacityModel, ServiceOutcome
from rowloom.simulation.cell_key import CELL_KEY_HEADER
from rowloom.simulation.media import simulated_png
from rowloom.simulation.responses import SimulatedResponses
from rowloom.simulation.turns import SimulatedTurns

__all__ = ["MockProviderServer", "MockServerOptions", "MockServerStats", "serve"]


@dataclass(frozen=True, slots=True)
class MockServerOptions:
    """The `rowloom mock-server` flags (product.md) plus test-only fault knobs.

    `host`/`port` are used by `serve()`; `MockProviderServer` takes its bind address explicitly.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    capacity: int = 32
    latency_ms: float = 200.0
    overload: Literal["reject", "queue"] = "reject"
    retry_after: float = 1.0
    rpm: int | None = None
    fail_rate: float = 0.0
    timeout_rate: float = 0.0
    seed: int = 0
    latency_distribution: Literal["fixed", "lognormal"] = "fixed"
    latency_sigma: float = 0.25
    embedding_dimensions: int = 16
    drop_rate: float = 0.0
    retry_after_format: Literal["seconds", "http-date"] = "seconds"
    fail_status: int = 500
    invalid_json_rate: float = 0.0
    api_key: str | None = field(default=None, repr=False)
    models: tuple[str, ...] = ("simulated-model",)
    reasoning: Literal["none", "field", "inline"] = "none"
    tool_call_turns: int = 1
    image_size: int = 8
    ignore_response_format: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_rate <= 1.0:
            raise ValueError("drop_rate must be within [0, 1]")
        if not 500 <= self.fail_status <= 599:
            raise ValueError("fail_status must be a 5xx code")
        self.simulation_config()  # fail early on out-of-range capacity-model values

    def simulation_config(self) -> SimulationConfig:
        """The capacity-model part of these options (validated by `SimulationConfig`)."""
        return SimulationConfig(
            capacity=self.capacity,
            latency_ms=self.latency_ms,
            latency_distribution=self.latency_distribution,
            latency_sigma=self.latency_sigma,
            overload=self.overload,
            retry_after_s=self.retry_after,
            rpm=self.rpm,
            fail_rate=self.fail_rate,
            timeout_rate=self.timeout_rate,
            seed=self.seed,
            embedding_dimensions=self.embedding_dimensions,
            reasoning=self.reasoning,
            tool_call_turns=self.tool_call_turns,
            image_size=self.image_size,
        )


@dataclass(frozen=True, slots=True)
class MockServerStats:
    """The capacity model's counters plus HTTP-level ones."""

    capacity: CapacityStats
    http_requests: int
    dropped: int
    unauthorized: int
    bad_requests: int

    def as_dict(self) -> dict[str, Any]:
        """A flat JSON-ready mapping (the `/stats` body)."""
        out = self.capacity.as_dict()
        out.update({k: v for k, v in asdict(self).items() if k != "capacity"})
        return out


class MockProviderServer:
    """The simulated provider on a real socket; always bind to loopback in tests.

    Use as `async with MockProviderServer(options) as server:` or call `start()`/`stop()`.
    `url` is the OpenAI base URL (ending in `/v1`).
    """

    def __init__(
        self,
        options: MockServerOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._options = options if options is not None else MockServerOptions()
        self._host = host
        self._requested_port = port
        opts = self._options
        self._capacity = ProviderCapacityModel(opts.simulation_config(), clock=clock)
        self._responses = SimulatedResponses(
            seed=opts.seed,
            embedding_dimensions=opts.embedding_dimensions,
            invalid_json_rate=opts.invalid_json_rate,
        )
        self._turns = SimulatedTurns(
            self._responses,
            seed=opts.seed,
            reasoning=opts.reasoning,
            tool_call_turns=opts.tool_call_turns,
            ignore_response_format=opts.ignore_response_format,
        )
        self._drop_rng = random.Random(f"{opts.seed}:drop")
        self._api_key = f"Bearer {opts.api_key}".encode() if opts.api_key else None
        self._models = list(opts.models)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._ids = 0
        self._http_requests = self._dropped = self._unauthorized = self._bad_requests = 0

    def __repr__(self) -> str:
        return f"MockProviderServer(url={self.url if self._port else None!r})"

    @property
    def options(self) -> MockServerOptions:
        return self._options

    @property
    def capacity_model(self) -> ProviderCapacityModel:
        return self._capacity

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients, e.g. `http://127.0.0.1:41234/v1`."""
        return f"http://{self._host}:{self.port}/v1"

    async def __aenter__(self) -> MockProviderServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind and start serving; `url` is valid afterwards."""
        if self._runner is not None:
            raise RuntimeError("the server is already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/stats", self._stats)
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or ()
        self._port = int(sockets[0].getsockname()[1]) if sockets else self._requested_port

    async def stop(self) -> None:
        """Abort requests still held open and close the socket; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in list(self._handlers):
            task.cancel()
        await runner.cleanup()

    def stats(self) -> MockServerStats:
        """Counters now."""
        return MockServerStats(
            capacity=self._capacity.stats(),
            http_requests=self._http_requests,
            dropped=self._dropped,
            unauthorized=self._unauthorized,
            bad_requests=self._bad_requests,
        )

    # ------------------------------------------------------------------------------ handlers

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._admit(request)
        if isinstance(body, web.StreamResponse):
            return body
        messages = body.get("messages")
        model = body.get("model")
        response_format = body.get("response_format")
        if (
            not isinstance(model, str)
            or not isinstance(messages, list)
            or not all(isinstance(m, dict) for m in messages)
            or not isinstance(response_format, dict | None)
            or body.get("stream")
        ):
            return self._bad_request(
                "`model` and a list of message objects are required; streaming is off"
            )
        outcome = await self._run(request)
        if outcome.kind != "ok":
            return self._failure(outcome)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        tools = body.get("tools")
        turn = self._turns.chat(
            model,
            messages,
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            response_format=response_format,
            tools=tools if isinstance(tools, list) else None,
            tool_choice=body.get("tool_choice"),
            sample_key=request.headers.get(CELL_KEY_HEADER),
        )
        finish = turn.finish_reason
        if finish == "stop" and turn.completion_tokens == max_tokens:
            finish = "length"
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
        if turn.reasoning is not None:
            message["reasoning_content"] = turn.reasoning
        if turn.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in turn.tool_calls
            ]
        self._ids += 1
        payload = {
            "id": f"chatcmpl-sim-{self._ids}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _usage(turn.prompt_tokens, turn.completion_tokens, turn.reasoning_tokens),
        }
        return _json(payload, 200, _headers_of(outcome.rate_limit))

    async def _images(self, request: web.Request) -> web.StreamResponse:
        body = await self._admit(request)
        if isinstance(body, web.StreamResponse):
            return body
        model, prompt, n = body.get("model"), body.get("prompt"), body.get("n", 1)
        if (
            not isinstance(model, str)
            or not isinstance(prompt, str)
            or not isinstance(n, int)
            or not 1 <= n <= 10
            or body.get("response_format", "b64_json") != "b64_json"
        ):
            return self._bad_request(
                "`model` and a string `prompt` are required; n in 1..10; only b64_json answers"
            )
        outcome = await self._run(request)
        if outcome.kind != "ok":
            return self._failure(outcome)
        size = self._options.image_size
        data = [
            {
                "b64_json": base64.b64encode(
                    simulated_png(
                        self._options.seed, model, f"{prompt}#{i}" if i else prompt, size=size
                    )
                ).decode("ascii")
            }
            for i in range(n)
        ]
        tokens = len(prompt.split()) + 1
        payload = {
            "created": int(time.time()),
            "data": data,
            "usage": {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens},
        }
        return _json(payload, 200, _headers_of(outcome.rate_limit))

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self._admit(request)
        if isinstance(body, web.StreamResponse):
            return body
        model = body.get("model")
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        dims = body.get("dimensions")
        if (
            not isinstance(model, str)
            or not isinstance(inputs, list)
            or not all(isinstance(x, str) for x in inputs)
            or (dims is not None and (not isinstance(dims, int) or dims < 1))
        ):
            return self._bad_request("`model` and a string or list-of-strings `input` are required")
        outcome = await self._run(request)
        if outcome.kind != "ok":
            return self._failure(outcome)
        vectors = self._responses.embed(model, inputs, dimensions=dims)
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _b64(vec) if as_base64 else list(vec),
            }
            for i, vec in enumerate(vectors)
        ]
        tokens = sum(len(x.split()) + 1 for x in inputs)
        payload = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _json(payload, 200, _headers_of(outcome.rate_limit))

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._reject_unauthorized()
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "rowloom"} for m in self._models
        ]
        return _json({"object": "list", "data": data}, 200)

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        return _json(self.stats().as_dict(), 200)

    async def _admit(self, request: web.Request) -> dict[str, Any] | web.StreamResponse:
        """Drop, auth and body checks shared by the model routes."""
        self._http_requests += 1
        if self._options.drop_rate and self._drop_rng.random() < self._options.drop_rate:
            self._dropped += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp ends the handler silently
        if not self._authorized(request):
            return self._reject_unauthorized()
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            return self._bad_request("the body is not valid JSON")
        if not isinstance(body, dict):
            return self._bad_request("the body must be a JSON object")
        return body

    async def _run(self, request: web.Request) -> ServiceOutcome:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            return await self._capacity.serve(None)  # hangs until the client disconnects
        finally:
            if task is not None:
                self._handlers.discard(task)

    def _authorized(self, request: web.Request) -> bool:
        if self._api_key is None:
            return True
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self._api_key)

    def _reject_unauthorized(self) -> web.Response:
        self._unauthorized += 1
        return _error(401, "invalid or missing API key", "invalid_request_error", "invalid_api_key")

    def _bad_request(self, message: str) -> web.Response:
        self._bad_requests += 1
        return _error(400, message, "invalid_request_error", None)

    def _failure(self, outcome: ServiceOutcome) -> web.Response:
        headers = _headers_of(outcome.rate_limit)
        if outcome.kind == "rate_limited":
            headers["Retry-After"] = self._retry_after(outcome.retry_after_seconds or 0.0)
            return _error(
                429, "rate limit reached", "rate_limit_error", "rate_limit_exceeded", headers
            )
        # server_error; a `timeout` cannot reach here without a client timeout
        return _error(self._options.fail_status, "simulated failure", "server_error", None, headers)

    def _retry_after(self, seconds: float) -> str:
        if self._options.retry_after_format == "http-date":
            return formatdate(math.ceil(time.time() + seconds), usegmt=True)
        return str(max(0, math.ceil(seconds)))


def _usage(prompt: int, completion: int, reasoning: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def _b64(vector: tuple[float, ...]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _json(payload: Any, status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _error(
    status: int,
    message: str,
    kind: str,
    code: str | None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _json(body, status, headers)


def serve(
    options: MockServerOptions | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    on_ready: Callable[[MockProviderServer], None] | None = None,
) -> None:
    """Run the mock server until SIGINT/SIGTERM (blocking). Prints the URL unless `on_ready`."""
    opts = options if options is not None else MockServerOptions()
    asyncio.run(
        _serve_until_signalled(
            opts, host or opts.host, opts.port if port is None else port, on_ready
        )
    )


async def _serve_until_signalled(
    options: MockServerOptions,
    host: str,
    port: int,
    on_ready: Callable[[MockProviderServer], None] | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with MockProviderServer(options, host, port) as server:
        if on_ready is not None:
            on_ready(server)
        else:
            print(f"rowloom mock-server listening on {server.url}", flush=True)
        await stop.wait()


def _headers_of(limits: RateLimitHeaders | None) -> dict[str, str]:
    return {} if limits is None else limits.as_headers()
