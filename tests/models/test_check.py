"""`rowloom models check` and `create --check-models` through the real console script, against
mock servers over HTTP: a good model, one that ignores JSON schema, and a dead endpoint."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import yaml

from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.models.check import check_models
from rowloom.simulation.server import MockProviderServer, MockServerOptions

ROWLOOM = str(Path(sys.executable).with_name("rowloom"))


def dead_endpoint() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def write_config(path: Path, good: str, ignoring: str, dead: str | None) -> Path:
    providers = [
        {"name": "good", "endpoint": good},
        {"name": "lax", "endpoint": ignoring},
    ]
    models: list[dict[str, Any]] = [
        {"alias": "writer", "model": "w", "provider": "good"},
        {"alias": "embedder", "model": "e", "provider": "good", "generation_kind": "embedding"},
        {"alias": "artist", "model": "i", "provider": "good", "generation_kind": "image"},
        {"alias": "sloppy", "model": "s", "provider": "lax"},
    ]
    if dead is not None:
        providers.append({"name": "gone", "endpoint": dead})
        models.append({"alias": "offline", "model": "x", "provider": "gone"})
    data = {
        "providers": providers,
        "models": models,
        "columns": [
            {"name": "q", "column_type": "llm_text", "model_alias": "writer", "prompt": "hi"}
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return path


async def rowloom(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        ROWLOOM,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "PATH": "/usr/bin:/bin"},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_models_check_verdicts_and_exit_codes(tmp_path: Path) -> None:
    lax_options = MockServerOptions(latency_ms=0, ignore_response_format=True)
    async with (
        MockProviderServer(MockServerOptions(latency_ms=5)) as good,
        MockProviderServer(lax_options) as lax,
    ):
        cfg = write_config(tmp_path / "c.yaml", good.url, lax.url, dead_endpoint())
        code, out, err = await rowloom("models", "check", str(cfg), "--json", "--timeout", "5")
        assert code == 1, err
        results = {r["alias"]: r for r in json.loads(out)}
        assert results["writer"]["verdict"] == "ok"
        assert results["writer"]["schema_honoured"] is True
        assert [p["name"] for p in results["writer"]["probes"]] == ["chat", "json_schema"]
        assert all(p["latency_ms"] >= 5 for p in results["writer"]["probes"])
        assert results["embedder"]["verdict"] == "ok"
        assert results["embedder"]["probes"][0]["detail"] == "16 dimensions"
        assert results["artist"]["verdict"] == "ok"
        assert results["sloppy"]["verdict"] == "degraded"
        assert results["sloppy"]["schema_honoured"] is False
        assert results["offline"]["verdict"] == "unusable"
        assert "connection" in results["offline"]["reason"]

        healthy = write_config(tmp_path / "h.yaml", good.url, lax.url, None)
        code, out, _ = await rowloom("models", "check", str(healthy), "--strict")
        assert code == 1  # degraded fails only with --strict (create below runs with it)
        assert "degraded sloppy (chat); JSON schema ignored" in out
        assert "ok writer (chat); JSON schema honoured" in out

        code, out, err = await rowloom(
            "create",
            str(cfg),
            "-n",
            "2",
            "--check-models",
            "--artifact-dir",
            str(tmp_path / "runs"),
            "--quiet",
        )
        assert code == 1 and "not starting the run" in err
        assert "unusable offline (chat)" in err
        assert not (tmp_path / "runs").exists()  # no run folder: nothing was started
        code, out, err = await rowloom(
            "create",
            str(healthy),
            "-n",
            "2",
            "--check-models",
            "--artifact-dir",
            str(tmp_path / "runs"),
        )
        assert code == 0, err
        assert "complete: 2/2 rows" in out


async def test_skip_health_check_and_simulated_models() -> None:
    cfg = DatasetConfig.from_dict(
        {
            "providers": [{"name": "sim", "provider_type": "simulated"}],
            "models": [
                {"alias": "a", "model": "m", "provider": "sim"},
                {"alias": "b", "model": "m", "provider": "sim", "skip_health_check": True},
            ],
            "columns": [
                {"name": "q", "column_type": "llm_text", "model_alias": "a", "prompt": "x"}
            ],
        }
    )
    results = {r.alias: r for r in await check_models(cfg)}
    assert results["a"].verdict == "ok" and results["a"].schema_honoured
    assert results["b"].verdict == "skipped" and not results["b"].probes
    synced = await asyncio.to_thread(Designer().check_models, cfg)  # the blocking Python API
    assert [r.as_json() for r in synced][1] == results["b"].as_json()
