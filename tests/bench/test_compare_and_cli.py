"""`rowloom bench compare` refusals (no venv is built here) and the CLI's argument handling."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rowloom.__main__ import app
from rowloom.bench.compare import CompareError, comparison_markdown, prepare_side


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def old_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "bench@example.invalid")
    _git(repo, "config", "user.name", "bench")
    (repo / "README.md").write_text("before the harness\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "initial")
    return repo


def test_a_ref_without_the_harness_is_refused_with_a_reason(old_repo: Path, tmp_path: Path) -> None:
    logs: list[str] = []
    with pytest.raises(CompareError, match="predates the benchmark harness") as info:
        prepare_side(old_repo, "baseline", "HEAD", tmp_path / "cache", logs.append)
    assert "rowloom bench run" in str(info.value)
    assert not (tmp_path / "cache" / "venvs").exists()  # refused before any install
    subprocess.run(["git", "-C", str(old_repo), "worktree", "prune"], check=True)


def test_an_unknown_ref_is_refused(old_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(CompareError, match="rev-parse"):
        prepare_side(old_repo, "candidate", "no-such-ref", tmp_path / "cache", print)


def test_comparison_markdown_shows_each_gate_verdict() -> None:
    result = {
        "baseline": {"ref": "HEAD~1", "sha": "a" * 40},
        "candidate": {"ref": "HEAD", "sha": "b" * 40},
        "inputs": {"iterations": 5, "order": "A B A B (baseline first)"},
        "machine": {"cpu": "cpu", "cores": 2},
        "passed": False,
        "scenarios": {
            "e2e_narrow": {
                "gate_verdict": "fail",
                "gate": {"label": "neutral: mean wall time within 5% of baseline"},
                "rows": [
                    {
                        "metric": "wall_time_seconds",
                        "baseline_mean": 10.0,
                        "candidate_mean": 12.0,
                        "ratio": 1.2,
                        "trimmed_ratio": 1.19,
                        "verdict": "fail",
                        "pairs_worse": 5,
                        "pairs": 5,
                    }
                ],
                "invariants": {"passed": True, "problems": []},
            }
        },
    }
    text = comparison_markdown(result)
    assert "| `wall_time_seconds` | 10 | 12 | 1.200 | 1.190 | 5/5 | fail |" in text
    assert "Overall: **FAIL**" in text


runner = CliRunner()


def test_cli_lists_every_scenario() -> None:
    out = runner.invoke(app, ["bench", "list"])
    assert out.exit_code == 0
    for sid in ("queue_admission_micro", "e2e_dual_model", "aimd_convergence", "scale_rows"):
        assert sid in out.output


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "run", "no_such_scenario"],
        ["bench", "run", "e2e_dual_model", "--bogus-knob", "1"],
        ["bench", "run", "e2e_dual_model", "--layout", "sideways"],
    ],
)
def test_cli_rejects_bad_arguments_with_exit_2(args: list[str], tmp_path: Path) -> None:
    out = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert out.exit_code == 2, out.output
    assert not (tmp_path / "result.json").exists()


def test_cli_run_writes_the_three_artifacts(tmp_path: Path) -> None:
    out = runner.invoke(
        app,
        [
            "bench",
            "run",
            "e2e_narrow",
            "--records",
            "12",
            "--iterations",
            "1",
            "--warmups",
            "0",
            "--out",
            str(tmp_path),
            "--latency-ms",
            "1",
            "--chain",
            "2",
        ],
    )
    assert out.exit_code == 0, out.output
    assert {p.name for p in tmp_path.iterdir()} >= {"result.json", "timeline.csv", "summary.md"}
