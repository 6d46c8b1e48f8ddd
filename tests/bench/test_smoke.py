"""`rowloom bench smoke` in the test suite: it must pass, and its artifacts must prove it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rowloom.bench.smoke import SMOKE_RUNS, SmokeReport, run_smoke

SCHEMA_KEYS = {
    "scenario_id",
    "artifact_schema_version",
    "scenario_version",
    "harness_version",
    "baseline_sha",
    "candidate_sha",
    "inputs",
    "command_line",
    "machine",
    "environment",
    "provider_script",
    "clock_script",
    "capacity_plan",
    "iterations",
    "derived_metrics",
}
ITERATION_KEYS = {
    "wall_time_seconds",
    "cpu_seconds",
    "peak_rss_bytes",
    "timeline",
    "final_task_snapshot",
    "final_request_snapshot",
    "output_hashes",
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeReport:
    return run_smoke(tmp_path_factory.mktemp("smoke"))


def test_smoke_passes_every_check(smoke: SmokeReport) -> None:
    assert smoke.passed, smoke.problems()
    assert set(smoke.reports) == {name for name, _, _ in SMOKE_RUNS}
    summary = json.loads((smoke.out / "smoke.json").read_text())
    assert summary["passed"] is True


def test_results_follow_the_artifact_schema(smoke: SmokeReport) -> None:
    for name, report in smoke.reports.items():
        data = json.loads((report.out / "result.json").read_text())
        assert set(data) >= SCHEMA_KEYS, name
        assert data["scenario_id"] == name
        for it in data["iterations"]:
            assert set(it) >= ITERATION_KEYS, name
        for stats in data["derived_metrics"].values():
            assert {"mean", "p50", "p95", "min", "max", "stdev", "noise_note"} <= set(stats)
        assert (report.out / "summary.md").read_text().startswith(f"# `{name}`")


def test_dataset_runs_end_with_no_lease_and_match_the_oracle(smoke: SmokeReport) -> None:
    for name, report in smoke.reports.items():
        data = report.result
        if data["hash_check"]["mode"] == "none":
            continue
        for it in data["iterations"]:
            assert it["output_hashes"]["matches_oracle"], name
            assert it["final_task_snapshot"]["active_leases"] == 0, name
            request = it["final_request_snapshot"]
            assert request["in_flight_total"] == 0 and request["waiters_total"] == 0, name
            counters = request["counters"]
            assert counters["leases_granted"] == counters["leases_released"], name
            assert it["metrics"]["hidden_scheduler_resource_waiters"] == 0, name


def test_hidden_waiter_smoke_really_cancels_drops_and_retries(smoke: SmokeReport) -> None:
    it = smoke.reports["hidden_waiter"].result["iterations"][0]
    assert it["details"]["cancelled_segment"]["status"] == "cancelled"
    summary = it["details"]["run_summary"]
    assert summary["dropped_rows"].get("bench_rejected", 0) > 0
    counts = it["details"]["event_counts"]["scheduler"]
    assert counts.get("retry_deferred", 0) > 0 and counts.get("salvage_redispatched", 0) > 0


def test_dynamic_requests_count_one_lease_per_outbound_attempt(smoke: SmokeReport) -> None:
    metrics = smoke.reports["e2e_dynamic_requests"].result["iterations"][0]["metrics"]
    assert metrics["request_lease_attempt_mismatch"] == 0
    assert metrics["request_leases"] == metrics["provider_requests"] > 0
    assert metrics["timeline_monotonic_violations"] == 0
    assert metrics["sequence_violations"] == 0


def test_timeline_csv_holds_the_spec_columns(smoke: SmokeReport) -> None:
    path = Path(smoke.reports["e2e_dual_model"].out) / "timeline.csv"
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and "reason_or_outcome" in rows[0] and "request_lease_id" in rows[0]
    kinds = {r["event_kind"] for r in rows}
    assert {"task_lease_acquired", "request_lease_acquired", "model_request_completed"} <= kinds


def test_micro_smoke_reports_the_per_operation_breakdown(smoke: SmokeReport) -> None:
    metrics = smoke.reports["queue_admission_micro"].result["derived_metrics"]
    for op in ("select", "acquire", "commit", "release", "cycle"):
        assert f"{op}_p50_us@400x8/mixed" in metrics
