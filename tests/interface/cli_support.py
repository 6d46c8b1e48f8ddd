"""Run the `rowloom` entry point (`rowloom.interface.cli:main`, the console script's function)
in process and capture what a user sees: exit code, stdout, stderr."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rowloom.interface.cli import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> CliResult:
    """`rowloom ARGS...` through the console-script entry point; output is piped (not a TTY)."""
    capsys.readouterr()
    argv = sys.argv
    sys.argv = ["rowloom", *(str(a) for a in args)]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


SIM_PROVIDER: dict[str, Any] = {
    "name": "sim",
    "provider_type": "simulated",
    "simulation": {"capacity": 64, "latency_ms": 1, "seed": 3},
}
SIM_MODEL: dict[str, Any] = {
    "alias": "writer",
    "model": "sim-writer",
    "provider": "sim",
    "max_parallel_requests": 32,
}


def write_config(path: Path, columns: list[dict[str, Any]], **extra: Any) -> Path:
    """A YAML config on the embedded simulated provider with these columns."""
    data: dict[str, Any] = {"providers": [SIM_PROVIDER], "models": [SIM_MODEL], "columns": columns}
    data.update(extra)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def failing_every_other_row(path: Path) -> Path:
    """A config whose `ratio` column fails (division by zero) on rows where `v` is 0."""
    return write_config(
        path,
        [
            {
                "name": "v",
                "column_type": "sampler",
                "sampler_type": "category",
                "params": {"values": [0, 1]},
            },
            {"name": "ratio", "column_type": "expression", "expr": "{{ 1 // v }}"},
            {
                "name": "text",
                "column_type": "llm_text",
                "model_alias": "writer",
                "prompt": "Say {{ ratio }}.",
            },
        ],
    )
