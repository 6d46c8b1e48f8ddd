"""`rate_limit_headers`: the RPM-limited provider announces its budget and the profile knob
reaches the engine for the scenario's own runs only.

Runs stay below one window's budget (no 60 s wait): they check the plumbing, not the pacing
(the pacer itself is tested with request admission).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rowloom.bench.rate_limits import RateLimitHeadersScenario
from rowloom.bench.runner import RunOptions, run_benchmark_async
from rowloom.bench.scenario import scoped_environment

PROFILE = "ROWLOOM_REQUEST_ADMISSION_PROFILE"
SMALL = {"rpm": "200", "latency_ms": "1", "model_cap": "4"}


def _rule(result: dict[str, object]) -> str:
    plan = result["capacity_plan"]
    assert isinstance(plan, dict)
    rules = plan["configured"]["request_limit_rules"]
    (entry,) = rules.values()
    return str(entry["value"])


@pytest.mark.parametrize(("profile", "rule"), [(None, "aimd"), ("v1", "aimd_v1")])
async def test_profile_knob_applies_to_the_run_and_is_restored(
    profile: str | None, rule: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PROFILE, raising=False)
    knobs = dict(SMALL, **({"admission_profile": profile} if profile else {}))
    report = await run_benchmark_async(
        RunOptions("rate_limit_headers", tmp_path, records=24, iterations=1, warmups=0, knobs=knobs)
    )
    assert report.passed, report.result["checks"]["problems"]
    assert _rule(dict(report.result)) == rule
    assert PROFILE not in os.environ
    metrics = report.result["iterations"][0]["metrics"]
    assert metrics["rate_limited_requests"] == 0  # 24 requests fit the 200-request window
    summary = (tmp_path / "summary.md").read_text()
    assert f"Request admission profile: {profile or 'default'}" in summary


def test_provider_script_sets_the_rpm_limit_and_knobs_validate() -> None:
    scenario = RateLimitHeadersScenario()
    knobs = scenario.resolve_knobs({"rpm": "120", "admission_profile": "no_header_pacing"})
    (script,) = scenario.provider_scripts(knobs, seed=1)
    assert script.rpm == 120 and script.physical_limit_rps == 2.0
    assert scenario.engine_environment(knobs) == {PROFILE: "no_header_pacing"}
    assert scenario.engine_environment(scenario.resolve_knobs({})) == {}
    with pytest.raises(ValueError, match="must be one of"):
        scenario.resolve_knobs({"admission_profile": "fast"})


def test_scoped_environment_restores_previous_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE, "v1")
    monkeypatch.delenv("ROWLOOM_BENCH_TEST_UNSET", raising=False)
    with scoped_environment({PROFILE: "default", "ROWLOOM_BENCH_TEST_UNSET": "x"}):
        assert os.environ[PROFILE] == "default"
        assert os.environ["ROWLOOM_BENCH_TEST_UNSET"] == "x"
    assert os.environ[PROFILE] == "v1"
    assert "ROWLOOM_BENCH_TEST_UNSET" not in os.environ
