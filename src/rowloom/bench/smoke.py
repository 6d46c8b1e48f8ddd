"""`rowloom bench smoke`: small, deterministic runs that fail on a leak, a hash mismatch or a
hidden waiter. Seconds on a laptop; the test suite runs it.

Each entry is a real scenario with tiny knobs (millisecond latencies, tens of rows), one
measured iteration and no warm-up, in process. Timings are not checked; invariants are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rowloom.bench.artifacts import write_json
from rowloom.bench.runner import BenchRunOutcome, RunOptions, run_benchmark_async

SMOKE_RUNS: tuple[tuple[str, int, Mapping[str, str]], ...] = (
    (
        "e2e_dual_model",
        40,
        {
            "latency_ms": "5",
            "capacity": "8",
            "writer_cap": "4",
            "judge_cap": "4",
            "buffer_size": "20",
        },
    ),
    (
        "e2e_dynamic_requests",
        40,
        {"latency_ms": "2", "capacity": "8", "model_cap": "8", "buffer_size": "15"},
    ),
    ("hidden_waiter", 60, {"latency_ms": "2", "timeout_rate": "0.01", "buffer_size": "20"}),
    (
        "aimd_convergence",
        80,
        {"latency_ms": "5", "capacity": "4", "configured_max": "8", "retry_after_s": "0.05"},
    ),
    (
        "heavy_root",
        30,
        {
            "slow_latency_ms": "20",
            "fast_latency_ms": "2",
            "root_cap": "4",
            "fast_cap": "4",
            "buffer_size": "10",
        },
    ),
    ("queue_admission_micro", 0, {"tasks": "200,400", "groups": "1,8", "inflight": "6"}),
)


@dataclass(slots=True)
class SmokeReport:
    """Per-scenario reports; `passed` when every check of every run passed."""

    out: Path
    reports: dict[str, BenchRunOutcome] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports.values())

    def problems(self) -> dict[str, list[str]]:
        return {k: list(r.result["checks"]["problems"]) for k, r in self.reports.items()}

    def lines(self) -> list[str]:
        out = []
        for name, report in self.reports.items():
            checks = report.result["checks"]
            state = "pass" if checks["passed"] else "FAIL: " + "; ".join(checks["problems"])
            out.append(f"{name}: {state}")
        out.append(f"smoke {'passed' if self.passed else 'FAILED'}; artifacts in {self.out}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "problems": self.problems(),
            "runs": {k: str(r.out) for k, r in self.reports.items()},
        }


def run_smoke(out: Path) -> SmokeReport:
    """Run every smoke entry and write `smoke.json` plus each run's artifacts under `out`."""
    return asyncio.run(run_smoke_async(out))


async def run_smoke_async(out: Path) -> SmokeReport:
    """Async `run_smoke`."""
    report = SmokeReport(out)
    for scenario_id, records, knobs in SMOKE_RUNS:
        options = RunOptions(
            scenario_id,
            out / scenario_id,
            records=records or None,
            iterations=1,
            warmups=0,
            seed=7,
            knobs=knobs,
            timeline_cap=2_000,
            command_line=("rowloom", "bench", "smoke", "--out", str(out)),
        )
        report.reports[scenario_id] = await run_benchmark_async(options)
    await asyncio.to_thread(_write_summary, out, report)
    return report


def _write_summary(out: Path, report: SmokeReport) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "smoke.json", report.as_json())
