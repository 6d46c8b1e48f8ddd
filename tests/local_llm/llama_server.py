"""A real local model server for the local-LLM tests, started the way a user starts it:
`rowloom serve-local --port 0` (llama.cpp through `xllamacpp`, SmolLM2-135M-Instruct).

The server prints `listening on http://127.0.0.1:PORT` on stdout once the model is loaded, and
runs until SIGTERM. `start_llama_server()` starts it, reads that line, waits for `GET /health`
with a bounded number of attempts, and returns a handle that stops it. The child gets SIGTERM
if the test process dies (Linux `PR_SET_PDEATHSIG`), so no server outlives a killed run.

Findings (xllamacpp 2026.10.x, llama.cpp server inside):
- ONE instance serves both chat and embeddings: with `embedding=True` and mean pooling,
  `/v1/chat/completions` (including `response_format` `json_schema`, enforced by a grammar)
  and `/v1/embeddings` (576-dim, L2-normalised) both answer; no second instance is needed.
- `port = 0` is honoured and `Server.listening_address` reports the bound port.
- Embedding mode clamps `n_batch` to `n_ubatch` (512), so one prompt is at most 512 tokens.
- `model_alias` is a set of names; requests may name any model (the alias is reported back).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import importlib.util
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rowloom.models.local_server import MODEL_ALIAS, MODEL_FILE, installed_model

__all__ = ["MODEL_ALIAS", "LlamaServerHandle", "missing_requirement", "start_llama_server"]
ROWLOOM = str(Path(sys.executable).with_name("rowloom"))
_PR_SET_PDEATHSIG = 1


def missing_requirement() -> str | None:
    """Why the server cannot run here, or None when it can."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed (pip install 'rowloom[llm]')"
    if installed_model() is None:
        return f"{MODEL_FILE} not downloaded yet (rowloom serve-local --download-only)"
    return None


@dataclass
class LlamaServerHandle:
    """A running `rowloom serve-local` child process; `url` ends in `/v1`."""

    base_url: str
    process: subprocess.Popen[str]
    startup_seconds: float
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> LlamaServerHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start_llama_server(
    *,
    slots: int = 2,
    ctx_per_slot: int = 1024,
    start_timeout: float = 120.0,
    health_attempts: int = 100,
    health_interval: float = 0.1,
) -> LlamaServerHandle:
    """`rowloom serve-local` on a free loopback port; returns once `/health` answers 200."""
    started = time.monotonic()
    process = subprocess.Popen(
        [
            ROWLOOM,
            "serve-local",
            "--port",
            "0",
            "--slots",
            str(slots),
            "--ctx",
            str(ctx_per_slot),
            "--threads",
            "1",
        ],
        stdin=subprocess.DEVNULL,  # as when started in the background
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent,
    )
    handle = LlamaServerHandle("", process, 0.0)
    try:
        assert process.stdout is not None
        pool = concurrent.futures.ThreadPoolExecutor(1)
        try:  # bounded wait for the first line; a stuck child is killed below
            line = pool.submit(process.stdout.readline).result(timeout=start_timeout)
        finally:
            pool.shutdown(wait=False)
        if not line.startswith("listening on "):
            raise RuntimeError(f"rowloom serve-local did not start (exit code {process.poll()})")
        handle.base_url = line.removeprefix("listening on ").strip()
        _wait_healthy(handle.base_url, health_attempts, health_interval)
    except BaseException:
        handle.stop()
        raise
    handle.startup_seconds = time.monotonic() - started
    return handle


def _wait_healthy(base_url: str, attempts: int, interval: float) -> None:
    """Readiness probe against the external process: bounded attempts, then give up."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                if response.status == 200 and json.loads(response.read()).get("status") == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        time.sleep(interval)
    raise RuntimeError(f"llama server at {base_url} not healthy after {attempts} attempts")
