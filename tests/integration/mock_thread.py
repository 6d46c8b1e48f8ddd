"""`MockProviderServer` on its own thread and loop, for tests that drive the `rowloom` entry
point (which runs its own event loop) against real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from rowloom.simulation.server import MockProviderServer, MockServerOptions, MockServerStats


class MockServerThread:
    """`with MockServerThread(options) as server:` serves on 127.0.0.1; `server.url` ends in
    /v1. Stopped (and the thread joined) on exit."""

    def __init__(self, options: MockServerOptions | None = None) -> None:
        self._server = MockProviderServer(options or MockServerOptions(latency_ms=1))
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    def stats(self) -> MockServerStats:
        return self._server.stats()

    def __enter__(self) -> MockServerThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the mock server did not start: {self._error!r}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by __enter__ when start-up fails
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self._server:
            self._ready.set()
            await self._stop.wait()
