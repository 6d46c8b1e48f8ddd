"""What `create` does with its run folder: refuse without a flag, overwrite by moving aside,
resume with the run's own settings, extend, and name the config fields that block a resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rowloom.builder.row_groups import RowGroupPlan
from rowloom.builder.run_folder import RunRequest, open_run
from rowloom.builder.storage import RunStorage, encode_table
from rowloom.config.diff import config_differences
from rowloom.errors import ResumeError, RunFolderError

CONFIG: dict[str, Any] = {
    "providers": [{"name": "p", "endpoint": "http://a/v1"}],
    "models": [{"alias": "w", "model": "m", "provider": "p", "max_parallel_requests": 4}],
    "columns": [
        {"name": "topic", "column_type": "sampler"},
        {"name": "text", "column_type": "llm_text", "prompt": "About {{ topic }}"},
    ],
}


def request(**change: Any) -> RunRequest:
    fields: dict[str, Any] = {
        "fingerprint": "fp1",
        "num_records": 10,
        "buffer_size": 4,
        "output_columns": ["a"],
        "config": CONFIG,
    }
    fields.update(change)
    return RunRequest(**fields)


def stopped_run(folder: Path, groups: tuple[int, ...] = (0, 1), **change: Any) -> RunStorage:
    """A run of 10 rows in groups of 4 with `groups` written (then stopped)."""
    store = RunStorage(folder)
    open_run(store, request(**change))
    for rg in groups:
        rows = 2 if rg == 2 else 4
        store.write_row_group(rg, encode_table(["a"], {"a": list(range(rows))}), {})
    store.finish("complete" if len(groups) == 3 else "incomplete")
    return store


def test_a_folder_holding_a_run_is_refused_without_a_flag(tmp_path: Path) -> None:
    stopped_run(tmp_path / "run")
    with pytest.raises(RunFolderError, match="holds a stopped run \\(8 of 10 rows saved\\)"):
        open_run(RunStorage(tmp_path / "run"), request())
    stopped_run(tmp_path / "done", groups=(0, 1, 2))
    with pytest.raises(RunFolderError, match=r"--resume .* --overwrite") as info:
        open_run(RunStorage(tmp_path / "done"), request())
    assert "a finished run (10 of 10 rows)" in str(info.value)
    assert len(list((tmp_path / "done" / "data").iterdir())) == 3  # untouched


def test_overwrite_moves_the_old_run_aside_whole(tmp_path: Path) -> None:
    stopped_run(tmp_path / "run")
    opened = open_run(RunStorage(tmp_path / "run"), request(overwrite=True))
    assert opened.done == set() and opened.replaced is not None
    assert opened.replaced.name.startswith("run.replaced-")
    assert len(list((opened.replaced / "data").iterdir())) == 2
    assert "moved the previous run to" in opened.notes[0]
    assert list((tmp_path / "run" / "data").iterdir()) == []


def test_resume_with_nothing_to_resume_starts_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "early" / "data").mkdir(parents=True)  # killed before the manifest existed
    opened = open_run(RunStorage(tmp_path / "early"), request(resume=True))
    assert opened.done == set() and "nothing to resume" in opened.notes[0]
    assert (tmp_path / "early" / "manifest.json").is_file()
    assert (tmp_path / "early" / "config.yaml").is_file()


def test_resume_keeps_the_runs_own_buffer_size(tmp_path: Path) -> None:
    stopped_run(tmp_path / "run")
    opened = open_run(RunStorage(tmp_path / "run"), request(resume=True, buffer_size=100))
    assert (opened.done, opened.buffer_size) == ({0, 1}, 4)
    assert "resumed with the run's own buffer_size 4" in opened.notes


def test_a_larger_n_extends_a_finished_run_keeping_a_short_last_group(tmp_path: Path) -> None:
    stopped_run(tmp_path / "run", groups=(0, 1, 2))
    store = RunStorage(tmp_path / "run")
    opened = open_run(store, request(resume=True, num_records=15))
    assert opened.done == {0, 1, 2}  # group 2 keeps its 2 rows; new rows start group 3
    assert opened.breaks == (10,)
    assert store.manifest is not None and store.manifest.num_records == 15
    plan = store.manifest.plan()
    assert [(plan.offset(rg), plan.size(rg)) for rg in range(plan.count)] == [
        (0, 4),
        (4, 4),
        (8, 2),
        (10, 4),
        (14, 1),
    ]
    assert "extended the run from 10 to 15 rows" in opened.notes
    # the breaks are the run's: a later resume (and a second extension) plans the same groups
    store.finish("incomplete")
    again = open_run(RunStorage(tmp_path / "run"), request(resume=True, num_records=17))
    assert again.breaks == (10, 15) and again.done == {0, 1, 2}
    with pytest.raises(ResumeError, match="-n 5 is smaller"):
        open_run(RunStorage(tmp_path / "run"), request(resume=True, num_records=5))


def test_row_group_plans_with_breaks() -> None:
    plan = RowGroupPlan(10, 4)
    assert (plan.count, plan.size(2), plan.offset(2)) == (3, 2, 8)
    assert plan.extended(12) == RowGroupPlan(12, 4, (10,))
    assert RowGroupPlan(8, 4).extended(12) == RowGroupPlan(12, 4)  # no short group: no break
    with pytest.raises(ValueError, match="rise strictly"):
        RowGroupPlan(10, 4, (10,))
    with pytest.raises(ValueError, match="must add rows"):
        plan.extended(10)


def test_a_config_change_in_generated_values_is_refused_naming_the_fields(
    tmp_path: Path,
) -> None:
    stopped_run(tmp_path / "run")
    changed = {**CONFIG, "columns": [CONFIG["columns"][0], {**CONFIG["columns"][1], "prompt": "x"}]}
    with pytest.raises(ResumeError) as info:
        open_run(
            RunStorage(tmp_path / "run"), request(resume=True, fingerprint="fp2", config=changed)
        )
    message = str(info.value)
    assert "columns.text.prompt" in message and "--overwrite" in message


def test_a_provider_or_limit_change_does_not_block_a_resume(tmp_path: Path) -> None:
    stopped_run(tmp_path / "run")
    fixed = {
        **CONFIG,
        "providers": [{"name": "p", "endpoint": "http://b/v1", "api_key_env": "KEY"}],
        "models": [{**CONFIG["models"][0], "max_parallel_requests": 16}],
    }
    store = RunStorage(tmp_path / "run")
    opened = open_run(store, request(resume=True, fingerprint="fp2", config=fixed))
    assert opened.done == {0, 1}
    assert store.manifest is not None and store.manifest.config_fingerprint == "fp2"
    assert opened.notes[0].startswith("the config changed only in models.w.max_parallel_requests")


def test_config_differences_match_named_entries() -> None:
    old = {"columns": [{"name": "a", "x": 1}, {"name": "b"}], "seed": 1}
    new = {"columns": [{"name": "b"}, {"name": "a", "x": 2}, {"name": "c"}], "seed": 1}
    assert config_differences(old, new) == ["columns.a.x", "columns.c (added)"]
