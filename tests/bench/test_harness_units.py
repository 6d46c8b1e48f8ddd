"""The harness's own logic: knobs, statistics, verdicts, settling, leaks, timeline bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowloom.bench.artifacts import target_verdicts
from rowloom.bench.cli import parse_knob_args
from rowloom.bench.compare import gate_rows
from rowloom.bench.events import EventDigest, digest_run
from rowloom.bench.execute import leak_findings
from rowloom.bench.machine import Measurement
from rowloom.bench.metrics import settling
from rowloom.bench.registry import SCENARIOS, get_scenario
from rowloom.bench.runner import _checks
from rowloom.bench.scenario import Gate, IterationResult, OracleCheck, Target
from rowloom.bench.stats import SummaryStats
from rowloom.observability.eventlog import EventLog, events_to_table

SPEC_IDS = {
    "queue_admission_micro",
    "heavy_root",
    "hidden_waiter",
    "idle_utilization",
    "e2e_narrow",
    "e2e_wide",
    "e2e_dual_model",
    "e2e_dynamic_requests",
    "aimd_convergence",
    "queueing_overload",
    "cross_provider_cooldown",
    "scale_rows",
}
ISSUE_7_IDS = {"rate_limit_headers"}
ISSUE_16_IDS = {"fleet_sim", "ray_fleet"}
ISSUE_15_IDS = {"seed_stream"}
ISSUE_18_IDS = {"profile_scale", "estimate_accuracy"}
ISSUE_17_IDS = {"sink_overhead", "ramp"}
ISSUE_13_IDS = {"dispatch_throughput", "mock_server_load"}  # were scripts/


def test_every_spec_scenario_is_registered() -> None:
    later = ISSUE_7_IDS | ISSUE_13_IDS | ISSUE_15_IDS | ISSUE_16_IDS | ISSUE_17_IDS | ISSUE_18_IDS
    assert {s.id for s in SCENARIOS} == SPEC_IDS | later


def test_knob_args_parse_both_forms() -> None:
    assert parse_knob_args(["--latency-ms", "50", "--layout=separate"]) == {
        "latency_ms": "50",
        "layout": "separate",
    }
    with pytest.raises(ValueError):
        parse_knob_args(["--capacity"])
    with pytest.raises(ValueError):
        parse_knob_args(["stray"])


def test_scenario_knobs_are_typed_and_validated() -> None:
    dual = get_scenario("e2e_dual_model")
    knobs = dual.resolve_knobs({"latency_ms": "50", "writer_cap": "8", "buffer_size": "100"})
    assert knobs["latency_ms"] == 50.0 and knobs["writer_cap"] == 8 and knobs["capacity"] == 32
    with pytest.raises(ValueError, match="unknown knob"):
        dual.resolve_knobs({"bogus": "1"})
    with pytest.raises(ValueError, match="must be one of"):
        dual.resolve_knobs({"layout": "sideways"})
    with pytest.raises(ValueError):
        dual.resolve_knobs({"capacity": "many"})


def test_spec_provider_settings_are_the_defaults() -> None:
    dual = get_scenario("e2e_dual_model")
    (script,) = dual.provider_scripts(dual.resolve_knobs({}), 0)
    assert (script.capacity, script.latency_ms, script.rpm) == (32, 200.0, None)
    assert script.physical_limit_rps == pytest.approx(160.0)
    aimd = get_scenario("aimd_convergence")
    knobs = aimd.resolve_knobs({})
    (script,) = aimd.provider_scripts(knobs, 0)
    assert (script.capacity, script.retry_after_s, knobs["configured_max"]) == (32, 1.0, 64)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30))
def test_summary_stats_are_ordered(values: list[float]) -> None:
    s = SummaryStats.of(values)
    assert s.minimum <= s.p50 <= s.p95 <= s.maximum
    assert s.minimum - 1e-6 <= s.mean <= s.maximum + 1e-6
    if s.trimmed_mean is not None:
        assert s.minimum - 1e-6 <= s.trimmed_mean <= s.maximum + 1e-6
    else:
        assert len(values) < 3


def test_trimmed_mean_drops_the_fastest_and_slowest() -> None:
    assert SummaryStats.of([1.0, 10.0, 11.0, 12.0, 100.0]).trimmed_mean == pytest.approx(11.0)


def test_gate_passes_fails_or_is_inconclusive() -> None:
    gate = Gate("wall", 0.05, "neutral")
    base = [{"wall": v} for v in (10.0, 10.1, 9.9, 10.0, 10.0)]
    same = [{"wall": v} for v in (10.2, 10.0, 10.1, 9.9, 10.3)]
    slow = [{"wall": v} for v in (12.0, 12.2, 11.9, 12.1, 12.0)]
    one_outlier = [{"wall": v} for v in (10.0, 10.1, 9.9, 10.0, 20.0)]
    assert [r.verdict for r in gate_rows(gate, base, same)] == ["pass"]
    (slow_row,) = gate_rows(gate, base, slow)
    assert slow_row.verdict == "fail" and (slow_row.pairs_worse, slow_row.pairs) == (5, 5)
    # the mean says 20% slower, the trimmed mean says equal: not a claim either way
    assert [r.verdict for r in gate_rows(gate, base, one_outlier)] == ["inconclusive"]
    assert [r.verdict for r in gate_rows(gate, base[:2], slow[:2])] == ["inconclusive"]


def test_target_verdicts_need_mean_and_trimmed_mean_to_agree() -> None:
    scenario = get_scenario("aimd_convergence")
    derived = {
        "goodput_ratio": SummaryStats.of([0.95, 0.96, 0.94]),
        "rate_limited_fraction_after_settling": SummaryStats.of([0.0, 0.0, 0.5]),
    }
    rows = {r["metric"]: r for r in target_verdicts(scenario, derived, http=False)}
    assert rows["goodput_ratio"]["verdict"] == "met"
    assert rows["rate_limited_fraction_after_settling"]["verdict"] == "inconclusive"
    assert rows["cpu_per_request_ms"]["verdict"].startswith("not applicable")
    missed = target_verdicts(scenario, {"goodput_ratio": SummaryStats.of([0.5] * 3)}, http=True)
    goodput = next(r for r in missed if r["metric"] == "goodput_ratio")
    assert goodput["verdict"] == "missed" and goodput["gap"] == pytest.approx(-0.4)


def test_wildcard_targets_expand_to_each_measured_cell() -> None:
    micro = get_scenario("queue_admission_micro")
    derived = {
        "cycle_p50_us@100000x1/mixed": SummaryStats.of([8.0]),
        "cycle_p50_us@100000x256/mixed": SummaryStats.of([12.0]),
        "cycle_p50_us@1000x256/mixed": SummaryStats.of([99.0]),
    }
    rows = [
        r
        for r in target_verdicts(micro, derived, http=False)
        if r["metric"].startswith("cycle_p50_us")
    ]
    assert {r["metric"]: r["verdict"] for r in rows} == {
        "cycle_p50_us@100000x1/mixed": "met",
        "cycle_p50_us@100000x256/mixed": "missed",
    }


def test_target_gap_for_a_band() -> None:
    band = Target("x", "between", 1.0, 2.0)
    assert band.met(1.5) and band.gap(1.5) == 0
    assert band.gap(0.5) == pytest.approx(-0.5) and band.gap(3.0) == pytest.approx(-1.0)


def _digest(steps: list[tuple[float, int]]) -> EventDigest:
    d = EventDigest()
    d.limit_steps["p/m/chat"] = steps
    return d


def test_settling_finds_when_the_limit_stops_leaving_its_band() -> None:
    # 64 -> 48 -> 36 -> 27, then a sawtooth 27..33 for the rest of the run
    steps = [(0.0, 64), (1.0, 48), (2.0, 36), (3.0, 27)]
    steps += [(4.0 + i, 27 + i % 7) for i in range(20)]
    result = settling(_digest(steps), 0.0, 24.0)
    # the settled level is ~30, so the band is ~[22.5, 37.5]: 36 (at t=2) is the first value in it
    assert result["settled_at"] == pytest.approx(2.0)
    assert 27 <= result["settled_limits"]["p/m/chat"] <= 33


def test_settling_reports_none_when_the_limit_keeps_swinging() -> None:
    steps = [(float(i), 64 if i % 2 else 8) for i in range(20)]
    assert settling(_digest(steps), 0.0, 20.0)["settled_at"] is None


def test_a_limit_that_never_moved_is_settled_from_the_start() -> None:
    result = settling(_digest([(0.5, 32)]), 0.0, 10.0)
    assert result["settled_at"] == 0.0 and not result["limits_moved"]


def test_leak_findings_name_every_kind_of_leak() -> None:
    clean_task = {"active_leases": 0, "leased": {"submission": 0}}
    clean_req = {
        "in_flight_total": 0,
        "waiters_total": 0,
        "counters": {"leases_granted": 3, "leases_released": 3},
    }
    assert leak_findings(clean_task, clean_req) == []
    found = leak_findings(
        {"active_leases": 2, "leased": {"submission": 2}},
        {
            "in_flight_total": 1,
            "waiters_total": 4,
            "counters": {"leases_granted": 5, "leases_released": 4},
        },
    )
    assert len(found) == 5


def _result(metrics: dict[str, float], digest: str | None, leaks: list[str]) -> IterationResult:
    return IterationResult(Measurement(), metrics, output_hashes={"async": digest}, leaks=leaks)


def test_run_checks_fail_on_hash_mismatch_leak_or_hidden_waiter() -> None:
    oracle = OracleCheck("full", 10, "abc")
    good = _result({"hidden_scheduler_resource_waiters": 0.0}, "abc", [])
    ok = _checks([good], [{"index": 0, "output_hashes": {"matches_oracle": True}}], oracle, [])
    assert ok["passed"]
    bad_hash = _checks(
        [_result({}, "xyz", [])],
        [{"index": 0, "output_hashes": {"matches_oracle": False}}],
        oracle,
        [],
    )
    assert not bad_hash["passed"] and "differ" in bad_hash["problems"][0]
    leak = _checks(
        [_result({}, "abc", ["1 task lease(s) still active"])],
        [{"index": 0, "output_hashes": {"matches_oracle": True}}],
        oracle,
        [],
    )
    assert not leak["passed"]
    hidden = _checks(
        [_result({"hidden_scheduler_resource_waiters": 1.0}, "abc", [])],
        [{"index": 0, "output_hashes": {"matches_oracle": True}}],
        oracle,
        [],
    )
    assert not hidden["passed"]
    stopped = _result({}, "abc", [])
    stopped.status = "incomplete"
    unfinished = _checks(
        [stopped], [{"index": 0, "output_hashes": {"matches_oracle": True}}], oracle, []
    )
    assert not unfinished["passed"] and "did not complete" in unfinished["problems"][0]


def _write_events(run_dir: Path, executions: int) -> None:
    events = run_dir / "events"
    events.mkdir(parents=True)
    sched: list[dict[str, Any]] = []
    req: list[dict[str, Any]] = []
    t = 0.0
    for i in range(executions):
        ex = f"te-{i}"
        for kind in (
            "selected",
            "task_lease_acquired",
            "worker_spawned",
            "task_completed",
            "task_lease_released",
        ):
            t += 0.001
            sched.append(
                {
                    "stream": "scheduler",
                    "event_kind": kind,
                    "sequence": len(sched) + 1,
                    "captured_at_monotonic": t,
                    "task_execution_id": ex,
                    "task_id": f"t{i}",
                    "captured_correlation": {},
                }
            )
        for kind in ("model_request_started", "model_request_completed"):
            t += 0.001
            req.append(
                {
                    "stream": "requests",
                    "event_kind": kind,
                    "sequence": len(req) + 1,
                    "captured_at_monotonic": t,
                    "request_attempt_id": f"ra-{i}",
                    "request_resource_key": "p/m/chat",
                    "reason": "success",
                    "captured_correlation": {"task_execution_id": ex},
                }
            )
    for stream, rows in (("scheduler", sched), ("requests", req)):
        log = EventLog(stream, events / f"{stream}.arrows")
        table = events_to_table(stream, rows)
        log.append_table(table)
        log.close()


def test_bounded_timelines_keep_whole_task_executions(tmp_path: Path) -> None:
    _write_events(tmp_path, 400)
    full = digest_run(tmp_path, timeline_cap=10_000)
    assert len(full.timeline) == 2800 and full.keep_fraction == 1.0
    bounded = digest_run(tmp_path, timeline_cap=700)
    kept: dict[str, int] = {}
    for row in bounded.timeline:
        kept[row["task_execution_id"]] = kept.get(row["task_execution_id"], 0) + 1
    assert 0 < len(bounded.timeline) < 1400
    assert set(kept.values()) == {7}  # every kept execution has all of its 7 events
    assert bounded.sampling["total_events"] == 2800
    assert len(bounded.attempts) == 400  # metrics still see every event


def test_the_engine_switches_are_read_at_the_harness_edge() -> None:
    from rowloom.bench.baselines import v1
    from rowloom.bench.switches import PROFILE_ENV, TASK_POLICY_ENV, engine_options
    from rowloom.builder.options import EngineOptions

    assert engine_options({}) == EngineOptions()
    chosen = engine_options({PROFILE_ENV: "v1", TASK_POLICY_ENV: " bounded_borrow "})
    assert chosen == EngineOptions(task_policy="bounded_borrow", request_admission=v1)
    with pytest.raises(ValueError, match=PROFILE_ENV):
        engine_options({PROFILE_ENV: "fastest"})
    with pytest.raises(ValueError, match=TASK_POLICY_ENV):
        engine_options({TASK_POLICY_ENV: "greedy"})
