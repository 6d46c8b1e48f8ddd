"""The mock provider in a child process: the one way tests, the benchmark harness and load
scenarios start `MockProviderServer` apart from their own event loop (and core).

`with MockServerProcess(MockServerOptions(...)) as server:` spawns
`python -m rowloom.simulation.process` and writes the options to its stdin as one JSON line
(so an `api_key` never shows in a process listing); the child binds 127.0.0.1 on a port the OS
chooses and prints `rowloom-mock <port>` once listening; `server.url` is the OpenAI base
URL, `server.stats()` the server's `/stats` counters. The child is stopped (SIGTERM, then
SIGKILL) on exit, also when the block raises.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import asdict, replace
from types import TracebackType
from typing import Any

from rowloom.simulation.server import MockProviderServer, MockServerOptions, serve

READY_PREFIX = "rowloom-mock "
STOP_GRACE_SECONDS = 5.0


class MockServerProcess:
    """`MockProviderServer` in a child process bound to 127.0.0.1 on a free port."""

    def __init__(self, options: MockServerOptions, *, env: dict[str, str] | None = None) -> None:
        self.options = replace(options, host="127.0.0.1", port=0)
        self._env = env
        self._proc: subprocess.Popen[str] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL (`http://127.0.0.1:PORT/v1`)."""
        if self.port is None:
            raise RuntimeError("the mock server is not started")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> MockServerProcess:
        """Spawn the server and wait until it listens (raises if it does not come up)."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "rowloom.simulation.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**(self._env if self._env is not None else os.environ), "PYTHONUNBUFFERED": "1"},
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(asdict(self.options)) + "\n")
        self._proc.stdin.close()
        line = self._proc.stdout.readline()
        if not line.startswith(READY_PREFIX):
            err = self._proc.stderr.read() if self._proc.stderr else ""
            self.stop()
            raise RuntimeError(f"the mock server did not start: {err[-2000:]}")
        self.port = int(line[len(READY_PREFIX) :].strip())
        return self

    def stats(self) -> dict[str, Any]:
        """The server's `/stats` counters (a blocking GET on loopback)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read().decode())
        return data

    def stop(self) -> int | None:
        """Stop the child (SIGTERM, then SIGKILL); its exit code. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_GRACE_SECONDS)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return proc.returncode

    def __enter__(self) -> MockServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    """Child entry point: serve the options (one JSON line on stdin) until SIGTERM/SIGINT."""
    fields = json.loads(sys.stdin.readline())
    if "models" in fields:
        fields["models"] = tuple(fields["models"])
    options = MockServerOptions(**fields)

    def ready(server: MockProviderServer) -> None:
        print(f"{READY_PREFIX}{server.port}", flush=True)

    serve(options, "127.0.0.1", 0, on_ready=ready)


if __name__ == "__main__":
    main()
