"""`rowloom create` against a folder that already holds a run, through the real entry point:
nothing is deleted without a flag; --overwrite keeps the old run aside; --resume starts,
continues with the run's own settings, extends, and names the config fields it cannot accept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.interface.cli_support import run_cli, write_config

from rowloom.interface.results import DatasetResult

COLUMNS = [
    {
        "name": "topic",
        "column_type": "sampler",
        "sampler_type": "category",
        "params": {"values": ["rivers", "volcanoes"]},
    },
    {
        "name": "text",
        "column_type": "llm_text",
        "model_alias": "writer",
        "prompt": "Write about {{ topic }}.",
    },
]


def test_a_second_create_refuses_and_overwrite_keeps_the_old_run_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "topics.yaml", COLUMNS)
    args = ("create", config, "-n", "20", "--artifact-dir", tmp_path / "a")
    assert run_cli(capsys, *args).code == 0
    again = run_cli(capsys, *args)  # up-arrow, Enter
    assert again.code == 2
    assert "holds a finished run (20 of 20 rows)" in again.err
    assert "--resume" in again.err and "--overwrite" in again.err
    assert DatasetResult.open(tmp_path / "a" / "topics").summary.rows_written == 20
    replaced = run_cli(capsys, *args, "--overwrite")
    assert replaced.code == 0
    assert "moved the previous run to" in replaced.err
    (aside,) = (tmp_path / "a").glob("topics.replaced-*")
    assert len(DatasetResult.open(aside).to_arrow()) == 20
    assert len(DatasetResult.open(tmp_path / "a" / "topics").to_arrow()) == 20
    both = run_cli(capsys, *args, "--overwrite", "--resume")
    assert both.code == 2 and "choose one" in both.err


def test_resume_starts_continues_with_the_runs_settings_and_extends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "topics.yaml", COLUMNS)
    base = ("create", config, "--artifact-dir", tmp_path, "--resume")
    first = run_cli(capsys, *base, "-n", "20", "--buffer-size", "5")
    assert first.code == 0 and "nothing to resume" in first.err
    more = run_cli(capsys, *base, "-n", "30")  # no --buffer-size: the run's own 5 is kept
    assert more.code == 0, more.err
    assert "extended the run from 20 to 30 rows" in more.err
    assert "resumed with the run's own buffer_size 5" in more.err
    result = DatasetResult.open(tmp_path / "topics")
    assert result.summary.rows_written == 30 and len(result.part_paths()) == 6
    assert result.summary.request_attempts == 10  # only the new rows were generated
    fewer = run_cli(capsys, *base, "-n", "10")
    assert fewer.code == 2 and "-n 10 is smaller" in fewer.err


def test_extending_a_run_keeps_every_finished_row_and_equals_a_run_of_that_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "topics.yaml", COLUMNS)
    small = ("create", config, "--artifact-dir", tmp_path / "x", "--quiet")
    assert run_cli(capsys, *small, "-n", "20").code == 0  # one short row group (default size)
    (part,) = DatasetResult.open(tmp_path / "x" / "topics").part_paths()
    before = part.read_bytes()
    assert run_cli(capsys, *small, "-n", "30", "--resume").code == 0
    extended = DatasetResult.open(tmp_path / "x" / "topics")
    assert part.read_bytes() == before  # the finished rows were not regenerated
    assert extended.summary.request_attempts == 10  # only the 10 new rows cost requests
    direct = ("create", config, "--artifact-dir", tmp_path / "y", "--quiet", "-n", "30")
    assert run_cli(capsys, *direct).code == 0
    assert extended.output_hash() == DatasetResult.open(tmp_path / "y" / "topics").output_hash()


def test_resume_names_the_changed_fields_it_cannot_accept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "topics.yaml", COLUMNS)
    args = ("create", config, "-n", "10", "--artifact-dir", tmp_path, "--resume")
    assert run_cli(capsys, *args).code == 0
    data = yaml.safe_load(config.read_text())
    data["models"][0]["max_parallel_requests"] = 8  # a limit: fine
    config.write_text(yaml.safe_dump(data))
    assert run_cli(capsys, *args[:3], "20", *args[4:]).code == 0
    data["columns"][1]["prompt"] = "Write a poem about {{ topic }}."
    config.write_text(yaml.safe_dump(data))
    refused = run_cli(capsys, *args[:3], "30", *args[4:])
    assert refused.code == 2
    assert "columns.text.prompt" in refused.err and "--overwrite" in refused.err
    assert "Traceback" not in refused.text


def test_a_small_run_without_buffer_size_checkpoints_several_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "topics.yaml", COLUMNS)
    assert run_cli(capsys, "create", config, "-n", "200", "--artifact-dir", tmp_path).code == 0
    parts = DatasetResult.open(tmp_path / "topics").part_paths()
    assert len(parts) >= 4  # 200 rows: about ten row groups, at least 32 rows each
