"""The `rowloom` command line as a user meets it: help, version, exit codes, errors without
tracebacks, what a failed or partial run prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.interface.cli_support import failing_every_other_row, run_cli, write_config

from rowloom.interface.results import DatasetResult

TOPIC = {
    "name": "topic",
    "column_type": "sampler",
    "sampler_type": "category",
    "params": {"values": ["rivers", "volcanoes"]},
}
TEXT = {
    "name": "text",
    "column_type": "llm_text",
    "model_alias": "writer",
    "prompt": "Write about {{ topic }}.",
}


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    short = run_cli(capsys, "-h")
    assert short.code == 0
    assert "create" in short.out and "--version" in short.out
    create_help = run_cli(capsys, "create", "-h")
    assert create_help.code == 0
    assert "Usage: rowloom create [OPTIONS] CONFIG" in create_help.out
    assert "<bool>" not in create_help.out and "{" not in create_help.out
    assert "row groups generated at once" in create_help.out  # every option says what it does
    version = run_cli(capsys, "--version")
    assert version.code == 0 and version.out.startswith("rowloom ")


def test_a_partial_run_exits_1_with_counts_and_sample_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = failing_every_other_row(tmp_path / "ratio.yaml")
    result = run_cli(
        capsys, "create", config, "-n", "20", "--artifact-dir", tmp_path / "a", "--quiet"
    )
    assert result.code == 1
    assert "incomplete:" in result.err and "template_error:" in result.err
    samples = [line for line in result.err.splitlines() if line.startswith("  column 'ratio'")]
    assert len(samples) == 3, result.err
    assert "by zero" in samples[0] and "row " in samples[0]
    assert "Traceback" not in result.text
    # the run folder tells the same story
    opened = DatasetResult.open(tmp_path / "a" / "ratio")
    assert 0 < opened.summary.rows_written < 20
    assert not opened.summary.every_row_written
    assert [s.column for s in opened.summary.error_samples] == ["ratio"] * 3
    assert "by zero" in (tmp_path / "a" / "ratio" / "report.html").read_text()
    # every row group finished, yet rows are missing: one status everywhere, not "complete"
    run = tmp_path / "a" / "ratio"
    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert summary["row_groups_done"] == summary["row_groups_total"]
    assert summary["status"] == manifest["status"] == opened.summary.status == "incomplete"
    missing = 20 - opened.summary.rows_written
    assert summary["stop_reason"] == manifest["incomplete_reason"]
    assert summary["stop_reason"].startswith(f"{missing} of 20 rows dropped (template_error: ")
    assert f"incomplete because: {missing} of 20 rows dropped" in result.err
    report = run_cli(capsys, "report", run)
    assert "incomplete" in report.out and "complete " not in report.out.replace("incomplete", "")
    again = run_cli(
        capsys, "create", config, "-n", "20", "--artifact-dir", tmp_path / "a", "--quiet"
    )
    assert again.code == 2 and "a finished run" in again.err and "dropped" in again.err


def test_preview_shows_each_dropped_rows_error_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = failing_every_other_row(tmp_path / "ratio.yaml")
    result = run_cli(capsys, "preview", config, "-n", "6", "--format", "json")
    assert result.code == 1
    dropped = [line for line in result.err.splitlines() if line.startswith("dropped ")]
    kept = [line for line in result.out.splitlines() if line.startswith("{")]
    assert dropped and len(dropped) == 6 - len(kept)
    assert all("by zero" in line for line in dropped)


def test_a_complete_run_exits_0_and_quiet_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "ok.yaml", [TOPIC, TEXT])
    deep = tmp_path / ("x" * 90)  # longer than 80 columns: piped output is not wrapped
    loud = run_cli(capsys, "create", config, "-n", "5", "--artifact-dir", deep)
    assert loud.code == 0
    assert f"dataset:       {deep / 'ok' / 'data'}\n" in loud.out
    assert "\ncomplete: 5/5 rows written" in loud.out
    quiet = run_cli(
        capsys, "create", config, "-n", "5", "--artifact-dir", deep, "--name", "q", "--quiet"
    )
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")


def test_filesystem_and_argument_problems_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "ok.yaml", [TOPIC, TEXT])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the artifact folder should go")
    unwritable = run_cli(capsys, "create", config, "-n", "5", "--artifact-dir", blocker)
    assert unwritable.code == 2
    assert f"cannot write the run folder {blocker / 'ok'}" in unwritable.err
    assert "Traceback" not in unwritable.text
    bad_name = run_cli(capsys, "create", config, "--name", "../up", "--artifact-dir", tmp_path)
    assert bad_name.code == 2 and "run name '../up'" in bad_name.err
    bad_engine = run_cli(capsys, "create", config, "--engine", "turbo")
    assert bad_engine.code == 2 and "turbo" in bad_engine.err
    missing = run_cli(capsys, "validate", tmp_path / "nope.yaml")
    assert missing.code == 2 and "nope.yaml" in missing.err
    assert "Traceback" not in missing.text + bad_name.text + bad_engine.text


def test_yaml_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("columns: [\n")
    result = run_cli(capsys, "validate", broken)
    assert result.code == 2
    assert f'in "{broken}", line 2' in result.err
    assert "<unicode string>" not in result.err
