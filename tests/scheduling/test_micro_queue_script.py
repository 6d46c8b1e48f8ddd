"""The queue/admission micro benchmark script runs and drains cleanly (no timing asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "micro_queue_admission.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("micro_queue_admission", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("micro_queue_admission", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("policy", ["strict_fair", "bounded_borrow"])
@pytest.mark.parametrize("workload", ["mixed", "local", "model"])
def test_cycles_drain_the_queue(policy: str, workload: str) -> None:
    result = load().run_cycles(300, 8, policy, 4, workload)
    assert set(result) == {
        f"{op}_{q}_us"
        for op in ("select", "acquire", "commit", "release", "cycle")
        for q in ("p50", "p95")
    }
    assert all(value > 0 for value in result.values())


def test_main_prints_one_row_per_shape(capsys: pytest.CaptureFixture[str]) -> None:
    load().main(["--tasks", "50", "--groups", "1", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4  # title, header, two shapes
