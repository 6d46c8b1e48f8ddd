"""`rowloom bench compare` with per-side environment and knobs (V1 vs current on one commit).

No venv is built: a stand-in `rowloom` executable records the environment and arguments each
invocation received and writes a minimal `result.json`.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rowloom.__main__ import app
from rowloom.bench.compare import (
    CompareOptions,
    Side,
    comparison_markdown,
    metric_rows,
    parse_env_assignments,
    run_one,
)
from rowloom.bench.registry import get_scenario

PROFILE = "ROWLOOM_REQUEST_ADMISSION_PROFILE"

FAKE_ROWLOOM = f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
out = Path(sys.argv[sys.argv.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
seen = {{"profile": os.environ.get("{PROFILE}"), "argv": sys.argv[1:]}}
(out / "result.json").write_text(json.dumps(seen))
"""


@pytest.fixture
def fake_side(tmp_path: Path) -> Side:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    exe = venv / "bin" / "rowloom"
    exe.write_text(FAKE_ROWLOOM)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return Side("baseline", "HEAD", "a" * 40, tmp_path, venv)


def test_each_side_runs_with_its_own_environment_and_knobs(
    fake_side: Side, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PROFILE, raising=False)
    options = CompareOptions(
        repo=tmp_path,
        baseline="HEAD",
        candidate="HEAD",
        scenarios=("queueing_overload",),
        out=tmp_path / "out",
        knobs={"slots": "4", "limit_rule": "latency"},
        baseline_env={PROFILE: "v1"},
        baseline_knobs={"limit_rule": "aimd"},
    )
    baseline = Side(
        "baseline",
        "HEAD",
        fake_side.sha,
        fake_side.worktree,
        fake_side.venv,
        env=options.baseline_env,
        knobs=options.baseline_knobs,
    )
    candidate = Side("candidate", "HEAD", fake_side.sha, fake_side.worktree, fake_side.venv)
    a = run_one(baseline, "queueing_overload", tmp_path / "a", options)
    b = run_one(candidate, "queueing_overload", tmp_path / "b", options)
    assert a["profile"] == "v1" and b["profile"] is None
    assert a["argv"][a["argv"].index("--limit-rule") + 1] == "aimd"
    assert b["argv"][b["argv"].index("--limit-rule") + 1] == "latency"
    assert a["argv"][a["argv"].index("--slots") + 1] == "4"
    assert PROFILE not in os.environ  # the harness's own environment is untouched
    assert "ROWLOOM_REQUEST_ADMISSION_PROFILE=v1" in baseline.label()
    assert "--limit-rule aimd" in baseline.label()


def test_env_assignments_parse_and_reject_malformed_items() -> None:
    assert parse_env_assignments(["A_B=1", "X=a=b", "EMPTY="]) == {
        "A_B": "1",
        "X": "a=b",
        "EMPTY": "",
    }
    for bad in ("NOVALUE", "=1", "1X=2", "A-B=3"):
        with pytest.raises(ValueError):
            parse_env_assignments([bad])


def _metrics(goodput: float, after: float, cpu: float) -> dict[str, float]:
    return {
        "wall_time_seconds": 10.0,
        "goodput_ratio": goodput,
        "rate_limited_fraction_after_settling": after,
        "cpu_per_request_ms": cpu,
        "rate_limited_fraction": after,
    }


def test_metric_rows_give_both_sides_target_verdicts() -> None:
    scenario = get_scenario("aimd_convergence")
    before = [_metrics(g, 0.05, 1.0) for g in (0.40, 0.45, 0.50)]
    after = [_metrics(g, 0.001, 1.0) for g in (0.94, 0.96, 0.95)]
    rows = {r["metric"]: r for r in metric_rows(scenario, before, after, http=False)}
    goodput = rows["goodput_ratio"]
    assert goodput["baseline_verdict"] == "missed" and goodput["candidate_verdict"] == "met"
    assert goodput["ratio"] == pytest.approx(0.95 / 0.45)
    assert rows["rate_limited_fraction_after_settling"]["candidate_verdict"] == "met"
    assert "cpu_per_request_ms" not in rows  # an HTTP-only target, and this is in process
    http_rows = {r["metric"] for r in metric_rows(scenario, before, after, http=True)}
    assert "cpu_per_request_ms" in http_rows


def test_comparison_markdown_names_each_sides_settings_and_figures() -> None:
    row = {
        "metric": "goodput_ratio",
        "target": ">= 0.9",
        "baseline": {"mean": 0.45, "trimmed_mean": 0.45},
        "candidate": {"mean": 0.95, "trimmed_mean": 0.95},
        "ratio": 2.11,
        "trimmed_ratio": 2.11,
        "baseline_verdict": "missed",
        "candidate_verdict": "met",
    }
    result = {
        "baseline": {"ref": "HEAD", "sha": "a" * 40, "label": f"HEAD (aaa) [{PROFILE}=v1]"},
        "candidate": {"ref": "HEAD", "sha": "a" * 40},
        "inputs": {"iterations": 3, "order": "A B A B (baseline first)"},
        "machine": {"cpu": "cpu", "cores": 2},
        "passed": True,
        "scenarios": {
            "aimd_convergence": {
                "gate_verdict": "pass",
                "gate": {"label": "neutral"},
                "rows": [],
                "metrics": [row],
                "invariants": {"passed": True, "problems": []},
            }
        },
    }
    text = comparison_markdown(result)
    assert f"# Comparison: HEAD (aaa) [{PROFILE}=v1] vs HEAD (aaaaaaaaaaaa)" in text
    assert (
        "| `goodput_ratio` | >= 0.9 | 0.45 / 0.45 | 0.95 / 0.95 | 2.11 | 2.11 | missed, met |"
        in (text)
    )


@pytest.mark.parametrize(
    "extra",
    [
        ["--baseline-env", "NOT_AN_ASSIGNMENT"],
        ["--candidate-knob", "no_such_knob=1"],
        ["--baseline-knob", "limit_rule=sideways"],
    ],
)
def test_cli_rejects_bad_per_side_settings_with_exit_2(extra: list[str], tmp_path: Path) -> None:
    out = CliRunner().invoke(
        app,
        [
            "bench",
            "compare",
            "--baseline",
            "HEAD",
            "--candidate",
            "HEAD",
            "--out",
            str(tmp_path),
            *extra,
            "queueing_overload",
        ],
    )
    assert out.exit_code == 2, out.output
    assert not (tmp_path / "comparison.json").exists()
