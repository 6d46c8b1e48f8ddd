"""Secrets: an API key planted in an environment variable never appears in a repr, a log line,
an event, a report or any artifact, nor in what the CLI prints, even when the provider echoes
the key back in its error bodies and headers. Every byte a run writes is scanned."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.conftest import write_config
from tests.reliability.fake_providers import KeyEchoProvider, ServerThread
from tests.reliability.harness import ROWLOOM, child_env

from rowloom import DatasetConfig, Designer, ModelProvider
from rowloom.errors import RowloomError
from rowloom.models.clients import make_model_client
from rowloom.observability.redaction import REDACTED, register_secret
from rowloom.simulation.process import MockServerProcess
from rowloom.simulation.server import MockServerOptions

HERE = Path(__file__).parent
KEY_ENV = "ROWLOOM_RELIABILITY_KEY"


@pytest.fixture
def planted_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-planted-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


def fragments(key: str) -> list[bytes]:
    """The key and pieces of it a partial mask ("sk-pl...cdef") would still show."""
    token = key.removeprefix("sk-planted-")
    return [key.encode(), token.encode(), token[:8].encode(), token[-8:].encode()]


def scan_tree(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


def assert_nowhere(key: str, *, folders: list[Path], texts: dict[str, str]) -> int:
    """No fragment of `key` in any file under `folders` (as bytes) or in `texts`; returns the
    number of files scanned."""
    scanned = 0
    for folder in folders:
        for path in scan_tree(folder):
            data = path.read_bytes()
            scanned += 1
            for piece in fragments(key):
                assert piece not in data, f"key fragment in {path}"
    for name, text in texts.items():
        for piece in fragments(key):
            assert piece.decode() not in text, f"key fragment in {name}"
    return scanned


def config_for(url: str) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "keyed", "provider_type": "openai", "endpoint": url, "api_key_env": KEY_ENV}
        ],
        "models": [
            {
                "alias": "w",
                "model": "simulated-model",
                "provider": "keyed",
                "max_parallel_requests": 8,
                "inference_parameters": {"timeout": 5},
            }
        ],
        "columns": [
            {
                "name": "topic",
                "column_type": "sampler",
                "sampler_type": "category",
                "params": {"values": ["a", "b", "c"]},
            },
            {
                "name": "text",
                "column_type": "llm_text",
                "model_alias": "w",
                "prompt": "About {{ topic }}.",
            },
        ],
        "run": {"buffer_size": 10},
    }


def test_cli_run_against_an_authenticating_server_leaks_nothing(
    planted_key: str, tmp_path: Path
) -> None:
    """The mock server requires the planted key, so a complete run proves the key was sent;
    then everything the CLI printed and wrote is scanned."""
    options = MockServerOptions(capacity=16, latency_ms=1, api_key=planted_key, seed=1)
    with MockServerProcess(options, env=child_env()) as server:
        config = write_config(tmp_path / "keyed.yaml", config_for(server.url))
        artifacts = tmp_path / "artifacts"
        env = child_env(**{KEY_ENV: planted_key})
        outputs: dict[str, str] = {}
        for args in (
            ["validate", str(config)],
            [
                "create",
                str(config),
                "-n",
                "30",
                "--name",
                "run",
                "--artifact-dir",
                str(artifacts),
                "--plain",
            ],
        ):
            done = subprocess.run(
                [ROWLOOM, *args], env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert done.returncode == 0, (args, done.stderr)
            outputs[f"{args[0]} stdout"] = done.stdout
            outputs[f"{args[0]} stderr"] = done.stderr
    assert "complete: 30/30 rows written" in outputs["create stdout"]
    scanned = assert_nowhere(planted_key, folders=[tmp_path], texts=outputs)
    assert scanned >= 6  # parts, manifest, two event streams, capacity plan, report


def test_hostile_provider_echoing_the_key_leaks_nothing(
    planted_key: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The provider puts the Authorization header into 500 and 429 bodies and headers; with
    every logger at DEBUG, nothing rowloom logs, raises, reprs or writes contains the key."""
    caplog.set_level(logging.DEBUG)
    provider = KeyEchoProvider()
    with ServerThread(provider.app()) as server:
        config = DatasetConfig.from_dict(config_for(server.url))
        result = Designer(tmp_path / "artifacts").create(config, 20, "run")
        client = make_model_client(config.providers[0], max_connections=2)
    assert result.summary.status == "complete"
    assert provider.calls > 20  # the echoing errors really happened (and were retried)
    assert result.summary.requests_by_outcome.get("provider_failure", 0) > 0
    captured = capsys.readouterr()
    log_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    assert caplog.records  # the SDK and HTTP client did log at DEBUG
    reprs = {
        "config repr": repr(config),
        "config str": str(config),
        "config yaml": config.to_yaml(),
        "config json": config.to_json(),
        "config dump": repr(config.model_dump()),
        "provider repr": repr(config.providers[0]),
        "result repr": repr(result),
        "summary": json.dumps(result.summary.to_dict()),
        "capacity plan": json.dumps(result.capacity_plan, default=str),
        "client repr": repr(client),
        "client str": str(client),
    }
    assert_nowhere(
        planted_key,
        folders=[tmp_path],
        texts={"logs": log_text, "stdout": captured.out, "stderr": captured.err, **reprs},
    )


def test_literal_key_in_config_is_never_written_back(tmp_path: Path) -> None:
    key = f"sk-planted-{secrets.token_hex(16)}"
    provider = ModelProvider(name="p", endpoint="http://127.0.0.1:9/v1", api_key=key)
    config = DatasetConfig.from_dict(
        {
            "providers": [provider.model_dump(mode="python") | {"api_key": key}],
            "models": [{"alias": "w", "model": "m", "provider": "p"}],
            "columns": [
                {"name": "t", "column_type": "llm_text", "model_alias": "w", "prompt": "hi"}
            ],
        }
    )
    assert config.providers[0].resolve_api_key() == key
    error = RowloomError(f"failed with {config.providers[0]!r}")
    texts = {
        "provider repr": repr(provider),
        "config repr": repr(config),
        "yaml": config.to_yaml(),
        "json": config.to_json(),
        "error": str(error),
        "fingerprint": config.fingerprint(),
        "dump": repr(config.model_dump()) + json.dumps(config.model_dump(mode="json")),
    }
    config.to_yaml(tmp_path / "out.yaml")
    assert_nowhere(key, folders=[tmp_path], texts=texts)


def test_registered_secret_is_redacted_from_any_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = f"sk-planted-{secrets.token_hex(16)}"
    register_secret(key)
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("some.http.library")
    log.debug("response headers %s", [(b"x-echo", f"Bearer {key}".encode())])
    log.info(f"formatted eagerly: {key}")
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        log.exception("request failed")
    assert caplog.text.count(REDACTED) >= 3
    assert_nowhere(key, folders=[], texts={"caplog": caplog.text})
