"""A provider that cannot work (nothing listening, unknown host, TLS to a plain-HTTP port, a
URL without /v1, a refused key, a 400 on every request) stops the run within seconds with one
line naming provider, URL, model and cause, exit 1, through the real `rowloom` entry point
against real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.interface.cli_support import CliResult, run_cli

from rowloom.simulation.process import MockServerProcess
from rowloom.simulation.server import MockServerOptions


def _config(path: Path, endpoint: str, **model: Any) -> Path:
    data = {
        "providers": [
            {"name": "local", "provider_type": "openai", "endpoint": endpoint, **model.pop("p", {})}
        ],
        "models": [
            {
                "alias": "writer",
                "model": "simulated-model",
                "provider": "local",
                "max_parallel_requests": 16,
                **model,
            }
        ],
        "columns": [
            {
                "name": "topic",
                "column_type": "sampler",
                "sampler_type": "category",
                "params": {"values": ["rivers", "volcanoes"]},
            },
            {
                "name": "text",
                "column_type": "llm_text",
                "model_alias": "writer",
                "prompt": "Write about {{ topic }}.",
            },
        ],
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_line(result: CliResult) -> str:
    lines = [line for line in result.err.splitlines() if line.startswith("run stopped: ")]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.text
    return lines[0]


def test_a_dead_endpoint_stops_a_2000_row_run_in_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    config = _config(tmp_path / "dead.yaml", url)
    started = time.monotonic()
    result = run_cli(capsys, "create", config, "-n", "2000", "--artifact-dir", tmp_path, "--quiet")
    elapsed = time.monotonic() - started
    assert result.code == 1
    line = _stop_line(result)
    assert f"provider 'local' at {url}, model 'simulated-model': " in line
    assert "connection refused" in line
    summary = json.loads((tmp_path / "dead" / "summary.json").read_text())
    assert summary["request_attempts"] < 50, summary["requests_by_outcome"]
    # fail-fast costs the probe's backoff (about 2.5 s), never the 600 s of a hang; the bound
    # is loose because the machine running the suite may be loaded
    assert elapsed < 60, elapsed
    assert summary["stop_reason"] == line.removeprefix("run stopped: ")


def test_unknown_host_and_tls_to_a_plain_port_stop_the_preview(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dns = run_cli(
        capsys, "preview", _config(tmp_path / "dns.yaml", "http://no-such-host.invalid/v1")
    )
    assert dns.code == 1 and "could not resolve the host name" in _stop_line(dns)
    with MockServerProcess(MockServerOptions(latency_ms=1)) as server:
        tls_url = server.url.replace("http://", "https://")
        tls = run_cli(capsys, "preview", _config(tmp_path / "tls.yaml", tls_url))
    assert tls.code == 1
    line = _stop_line(tls)
    assert "TLS failed" in line and tls_url in line


def test_wrong_url_refused_key_and_bad_requests_name_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_FAST_KEY", "sk-wrong-key-123456789")
    options = MockServerOptions(latency_ms=1, api_key="sk-right-key-987654321")
    with MockServerProcess(options) as server:
        no_v1 = server.url.removesuffix("/v1")
        missing_v1 = run_cli(capsys, "preview", _config(tmp_path / "a.yaml", no_v1), "-n", "20")
        refused = run_cli(
            capsys,
            "preview",
            _config(tmp_path / "b.yaml", server.url, p={"api_key_env": "FAIL_FAST_KEY"}),
            "-n",
            "20",
        )
        monkeypatch.setenv("FAIL_FAST_KEY", "sk-right-key-987654321")
        streaming = {"extra_body": {"stream": True}}  # the mock server refuses it with a 400
        bad = run_cli(
            capsys,
            "preview",
            _config(
                tmp_path / "c.yaml",
                server.url,
                p={"api_key_env": "FAIL_FAST_KEY"},
                inference_parameters=streaming,
            ),
            "-n",
            "40",
        )
        http_requests = server.stats()["http_requests"]
    assert missing_v1.code == 1
    assert "HTTP 404 (not found): does the endpoint end in /v1?" in _stop_line(missing_v1)
    assert f"at {no_v1}, model 'simulated-model'" in _stop_line(missing_v1)
    assert refused.code == 1
    line = _stop_line(refused)
    assert "HTTP 401: the API key was refused" in line
    assert "invalid or missing API key" in line  # the provider's own words
    assert "sk-" not in refused.text
    assert bad.code == 1
    assert "every request so far was refused with HTTP 400 (5)" in _stop_line(bad)
    assert http_requests < 3 * 16 + 10  # each run stopped after its first wave of attempts


def test_hung_requests_cost_seconds_not_the_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2% of requests hang until the client gives up; the model sets no timeout (so 120 s
    applies). Straggler cancellation (1 s floor here, 30 s by default) retries them instead."""
    options = MockServerOptions(latency_ms=20, timeout_rate=0.02, capacity=64, seed=3)
    with MockServerProcess(options) as server:
        config = _config(tmp_path / "hangs.yaml", server.url)
        data = yaml.safe_load(config.read_text())
        data["run"] = {"stragglers": {"min_seconds": 1.0, "min_samples": 20}}
        config.write_text(yaml.safe_dump(data))
        started = time.monotonic()
        result = run_cli(
            capsys, "create", config, "-n", "300", "--artifact-dir", tmp_path, "--quiet"
        )
        elapsed = time.monotonic() - started
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "hangs" / "summary.json").read_text())
    assert summary["rows_written"] == 300
    assert summary["stragglers_cancelled"] >= 1
    assert summary["requests_by_outcome"]["straggler_cancelled"] == summary["stragglers_cancelled"]
    assert elapsed < 30, elapsed
