"""Fault soak over real HTTP: `MockProviderServer` in its own process answers 10% of requests
with 5xx, lets 5% hang past the client timeout, drops 3% of connections, and rejects beyond a
small capacity with 429 + Retry-After (rate-limit storms, since the client starts at three
times the capacity). The run, in its own process (`soak_run.py`), must complete with every row
present or counted as dropped with its reason, leave zero request leases, waiters and task
leases, and keep its memory bounded. The default suite runs 300 rows; `-m slow` runs 20,000."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.reliability.harness import child_env

from rowloom.observability import read_events
from rowloom.simulation.process import MockServerProcess
from rowloom.simulation.server import MockServerOptions

HERE = Path(__file__).parent
SERVER_OPTIONS = MockServerOptions(
    capacity=32,
    latency_ms=15,
    latency_distribution="lognormal",
    overload="reject",
    retry_after=1,
    fail_rate=0.10,
    timeout_rate=0.05,
    drop_rate=0.03,
    seed=9,
)
KNOWN_DROP_REASONS = {
    "provider_5xx",
    "provider_timeout",
    "connection_error",
    "rate_limited",
    "malformed_response",
    "provider_overloaded",
}


def soak(tmp_path: Path, rows: int, *, events: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the soak child against a fresh mock-server process; (run report, server stats)."""
    with MockServerProcess(SERVER_OPTIONS, env=child_env()) as server:
        url = server.url
        out = tmp_path / "report.json"
        args = [
            sys.executable,
            str(HERE / "soak_run.py"),
            url,
            str(rows),
            str(tmp_path / "artifacts"),
            str(out),
        ]
        done = subprocess.run(
            [*args, *(["--events"] if events else [])],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        stats = server.stats()
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return report, stats


def check_soak(report: dict[str, Any], stats: dict[str, Any], rows: int) -> None:
    summary = report["summary"]
    assert summary["status"] == "complete", summary
    dropped = summary["dropped_rows"]
    assert set(dropped) <= KNOWN_DROP_REASONS, dropped
    # Every row is present or counted as dropped with its reason.
    assert summary["rows_written"] + sum(dropped.values()) == rows
    assert report["rows_in_parts"] == summary["rows_written"] == report["unique_ids"]
    # Zero request leases and waiters, zero task leases at the end.
    assert report["request_in_flight"] == 0
    assert report["request_waiters"] == 0
    assert report["task_leases"] == 0 and report["task_leased"] == 0
    # The faults really happened, and each was classified.
    assert stats["server_errors"] > 0 and stats["rate_limited"] > 0
    assert stats["dropped"] > 0 and stats["cancelled"] > 0  # cancelled: hung past the timeout
    outcomes = summary["requests_by_outcome"]
    assert {"success", "provider_failure", "rate_limited", "provider_timeout"} <= set(outcomes)
    assert outcomes["success"] == summary["rows_written"]


def test_fault_soak_short(tmp_path: Path) -> None:
    rows = 300
    report, stats = soak(tmp_path, rows, events=True)
    check_soak(report, stats, rows)
    assert report["peak_rss_mb"] < 400
    # The event streams agree: every lease acquired was released.
    run_dir = tmp_path / "artifacts" / "soak"
    sched = Counter(read_events(run_dir, "scheduler").column("event_kind").to_pylist())
    requests = Counter(read_events(run_dir, "requests").column("event_kind").to_pylist())
    assert sched["task_lease_acquired"] == sched["task_lease_released"] > rows
    assert requests["model_request_started"] == requests["model_request_completed"] > rows


@pytest.mark.slow
def test_fault_soak_20k(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = 20_000
    report, stats = soak(tmp_path, rows, events=False)
    check_soak(report, stats, rows)
    samples = report["rss_samples"]
    quarter = next(rss for done, rss in samples if done >= rows // 4)
    growth = max(rss for _, rss in samples) - quarter
    assert report["peak_rss_mb"] < 400
    assert growth < 40, samples  # flat after warm-up: no per-row memory kept
    with capsys.disabled():
        print(
            f"\nfault soak: {rows} rows in {report['wall_seconds']} s, "
            f"{report['summary']['request_attempts']} attempts "
            f"{report['summary']['requests_by_outcome']}, dropped "
            f"{report['summary']['dropped_rows']}, server {stats}, peak RSS "
            f"{report['peak_rss_mb']} MB, RSS growth after 25%: {growth:.1f} MB"
        )
