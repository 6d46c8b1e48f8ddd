"""Tiny OpenAI-compatible HTTP providers for the reliability tests (aiohttp, 127.0.0.1 only).

- `DyingProvider`: deterministic answers for the first `healthy_requests` chat calls, then HTTP
  500 forever (until `revive()`).
- `KeyEchoProvider`: a hostile server that puts the caller's Authorization header into its error
  bodies and headers, to prove rowloom never copies a provider body anywhere.
- `ServerThread`: runs an `aiohttp` app on its own event loop in a thread, so a `rowloom`
  subprocess can talk to it while the test waits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from typing import Any

from aiohttp import web


def answer_for(messages: list[dict[str, Any]]) -> str:
    """A deterministic answer derived from the prompt only."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
    return f"answer {digest[:16]}"


def completion(text: Any, model: str = "m") -> dict[str, Any]:
    """A chat.completion body whose first choice's content is `text` (any JSON value)."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class DyingProvider:
    """Healthy for `healthy_requests` chat calls, then 500 on every call until `revive()`."""

    def __init__(self, healthy_requests: int) -> None:
        self.healthy_requests = healthy_requests
        self.calls = 0
        self.failures = 0
        self._revived = False

    def revive(self) -> None:
        self._revived = True

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        if self.calls > self.healthy_requests and not self._revived:
            self.failures += 1
            return web.json_response(
                {"error": {"message": "upstream exploded", "type": "server_error"}}, status=500
            )
        return web.json_response(completion(answer_for(body["messages"]), body["model"]))


class KeyEchoProvider:
    """Answers some calls normally and others with errors that echo the caller's key."""

    def __init__(self) -> None:
        self.calls = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        auth = request.headers.get("Authorization", "")
        echo = {"X-Echo-Authorization": auth, "Retry-After": "0"}
        if self.calls % 3 == 1:
            return web.json_response(
                {"error": {"message": f"Incorrect API key provided: {auth}", "type": "server"}},
                status=500,
                headers=echo,
            )
        if self.calls % 3 == 2:
            return web.json_response(
                {"error": {"message": f"slow down {auth}"}}, status=429, headers=echo
            )
        return web.json_response(completion(answer_for(body["messages"]), body["model"]))


class ServerThread:
    """`with ServerThread(app) as server:` serves `app` on 127.0.0.1; `server.url` ends in /v1."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
