"""Shared fixtures: the crash-test dataset config and its uninterrupted baseline."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.reliability.harness import dataset, run_create

CRASH_ROWS = 200
CRASH_BUFFER = 25
CRASH_GROUPS = CRASH_ROWS // CRASH_BUFFER
CRASH_WINDOW = 3  # max_concurrent_row_groups
CRASH_COLUMNS = ["row_id", "topic", "text", "blob", "tag"]


def crash_config(latency_ms: float = 10.0) -> dict[str, Any]:
    """Samplers, a model column on the simulated provider, a large custom column (so parts
    take milliseconds to write) and an expression; values do not depend on timing."""
    return {
        "providers": [
            {
                "name": "sim",
                "provider_type": "simulated",
                "simulation": {"capacity": 64, "latency_ms": latency_ms, "seed": 3},
            }
        ],
        "models": [
            {
                "alias": "w",
                "model": "sim-writer",
                "provider": "sim",
                "max_parallel_requests": 48,
                "inference_parameters": {"max_tokens": 24},
            }
        ],
        "columns": [
            {"name": "row_id", "column_type": "sampler", "sampler_type": "uuid"},
            {
                "name": "topic",
                "column_type": "sampler",
                "sampler_type": "category",
                "params": {"values": ["rivers", "lakes", "caves", "dunes"]},
            },
            {
                "name": "text",
                "column_type": "llm_text",
                "model_alias": "w",
                "prompt": "Write about {{ topic }} ({{ row_id }}).",
            },
            {
                "name": "blob",
                "column_type": "custom",
                "function": "tests.reliability.crash_functions:blob",
                "required_columns": ["row_id"],
            },
            {"name": "tag", "column_type": "expression", "expr": "{{ topic }}-{{ text|length }}"},
        ],
        "seed": 11,
        "run": {"buffer_size": CRASH_BUFFER, "max_concurrent_row_groups": CRASH_WINDOW},
    }


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class Baseline:
    """The crash config on disk and the hash and row ids of an uninterrupted run of it."""

    config: Path
    output_hash: str
    row_ids: tuple[str, ...]


@pytest.fixture(scope="session")
def crash_baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    if not sys.platform.startswith("linux"):
        pytest.skip("the crash harness watches run folders with Linux inotify")
    root = tmp_path_factory.mktemp("baseline")
    config = write_config(root / "crash.yaml", crash_config())
    done = run_create(config, CRASH_ROWS, "baseline", root / "artifacts")
    assert done.returncode == 0, done.stderr
    digest, columns = dataset(root / "artifacts" / "baseline")
    row_ids = tuple(columns["row_id"])
    assert len(row_ids) == CRASH_ROWS == len(set(row_ids))
    return Baseline(config, digest, row_ids)
