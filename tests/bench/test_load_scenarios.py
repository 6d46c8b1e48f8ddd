"""`dispatch_throughput` and `mock_server_load` (the scripts they replaced are gone) at a small
size: every task and request is accounted for, nothing is left leased, figures are sane."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rowloom.bench.registry import get_scenario
from rowloom.bench.scenario import IterationContext, IterationResult, Scenario


def iteration(scenario: Scenario, tmp_path: Path, **raw: str) -> IterationResult:
    knobs = scenario.resolve_knobs(raw)
    return asyncio.run(scenario.run_iteration(IterationContext(0, 1, knobs, False, tmp_path, 0)))


def test_dispatch_throughput_runs_every_cell_with_events_off_and_on(tmp_path: Path) -> None:
    scenario = get_scenario("dispatch_throughput")
    result = iteration(scenario, tmp_path, cells="3000", rows="100", columns="3")
    for mode in ("off", "on"):
        assert result.metrics[f"tasks_run@events_{mode}"] == 3000
        assert result.metrics[f"tasks_per_second@events_{mode}"] > 0
        assert result.metrics[f"us_per_task@events_{mode}"] > 0
    assert result.metrics["events@events_off"] == 0
    assert result.metrics["events@events_on"] >= 3000  # at least one event per task
    assert result.final_task_snapshot["active_leases"] == 0


def test_mock_server_load_counts_every_request_on_both_clients(tmp_path: Path) -> None:
    scenario = get_scenario("mock_server_load")
    result = iteration(scenario, tmp_path, requests="60", concurrency="4", warmup="5")
    for client in ("raw", "adapter"):
        assert result.metrics[f"requests@{client}"] == 60
        assert result.metrics[f"requests_per_second@{client}"] > 0
        assert result.metrics[f"client_cpu_ms_per_request@{client}"] > 0
    assert result.metrics["server_completed"] == 2 * (60 + 5)
    assert 1 <= result.metrics["server_peak_in_flight"] <= 4
    assert result.final_request_snapshot["in_flight_total"] == 0
