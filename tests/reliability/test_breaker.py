"""A provider that never recovers: the error-rate breaker stops the run with a message naming
the provider and the last error class; the row groups finished before it died stay intact, and
`--resume` after the provider is back completes the run exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from tests.reliability.conftest import write_config
from tests.reliability.fake_providers import DyingProvider, ServerThread
from tests.reliability.harness import dataset, read_manifest, run_create

from rowloom import DatasetConfig, Designer
from rowloom.errors import RunAbortedError

ROWS, BUFFER = 60, 10


def dying_config(url: str) -> dict[str, Any]:
    return {
        "providers": [{"name": "dying-provider", "provider_type": "openai", "endpoint": url}],
        "models": [
            {
                "alias": "w",
                "model": "m",
                "provider": "dying-provider",
                "max_parallel_requests": 8,
                "inference_parameters": {"timeout": 5},
            }
        ],
        "columns": [
            {
                "name": "n",
                "column_type": "sampler",
                "sampler_type": "uniform",
                "params": {"low": 0, "high": 1000, "integer": True},
            },
            {
                "name": "text",
                "column_type": "llm_text",
                "model_alias": "w",
                "prompt": "Say {{ n }}.",
            },
        ],
        "run": {"buffer_size": BUFFER, "max_concurrent_row_groups": 1, "error_rate_window": 10},
    }


def test_breaker_names_provider_and_error_class_and_keeps_finished_groups(tmp_path: Path) -> None:
    provider = DyingProvider(healthy_requests=2 * BUFFER)  # row groups 0 and 1, then dead
    with ServerThread(provider.app()) as server:
        config = write_config(tmp_path / "dying.yaml", dying_config(server.url))
        stopped = run_create(config, ROWS, "run", tmp_path / "artifacts")
        assert stopped.returncode == 1
        err = " ".join(stopped.stderr.split())
        assert "Traceback" not in err
        assert "run stopped: error-rate breaker tripped on provider 'dying-provider'" in err
        assert "last error class provider_5xx" in err
        assert "2 of 6 row groups (20 rows) are saved" in err and "--resume" in err

        run_dir = tmp_path / "artifacts" / "run"
        manifest = read_manifest(run_dir)
        assert manifest is not None and manifest["status"] == "incomplete"
        reason = manifest["incomplete_reason"]
        assert "provider 'dying-provider'" in reason and "provider_5xx" in reason
        assert sorted(manifest["row_groups"]) == ["0", "1"]
        for rec in manifest["row_groups"].values():
            assert pq.read_table(run_dir / "data" / rec["part"]).num_rows == BUFFER
        assert provider.failures > 0

        provider.revive()
        resumed = run_create(config, ROWS, "run", tmp_path / "artifacts", resume=True)
        assert resumed.returncode == 0, resumed.stderr
        fresh = Designer(tmp_path / "artifacts").create(
            DatasetConfig.from_yaml(config), ROWS, "fresh"
        )
    assert fresh.summary.status == "complete"
    assert dataset(run_dir)[0] == fresh.output_hash()


def _always_failing(run: dict[str, Any]) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "columns": [
                {
                    "name": "v",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": [0]},
                },
                {"name": "ratio", "column_type": "expression", "expr": "{{ 1 // v }}"},
            ],
            "run": {"buffer_size": 10, **run},
        }
    )


def test_early_shutdown_uses_dd_names_and_can_be_turned_off(tmp_path: Path) -> None:
    legacy = _always_failing({"error_rate_threshold": 0.4, "error_rate_window": 12})
    assert (legacy.run_config.shutdown_error_rate, legacy.run_config.shutdown_error_window) == (
        0.4,
        12,
    )
    assert "shutdown_error_rate" in legacy.to_yaml()

    designer = Designer(tmp_path)
    with pytest.raises(RunAbortedError, match="error-rate breaker tripped: 3 of the last 5"):
        designer.preview(_always_failing({"shutdown_error_window": 5}), 40)

    off = designer.preview(
        _always_failing({"shutdown_error_window": 5, "disable_early_shutdown": True}), 40
    )
    assert off.summary.status == "incomplete" and not off.summary.every_row_written
    assert off.summary.stop_reason == "40 of 40 rows dropped (template_error: 40)"
    assert off.summary.dropped_rows == {"template_error": 40}
    assert len(off.errors) == 40 and "by zero" in off.errors[0].message
