"""Atomic parts, the manifest, resume of missing parts and encoding round trips (what
`create` does with a folder that holds a run: tests/builder/test_run_folder.py)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from rowloom.builder.run_folder import RunRequest, open_run
from rowloom.builder.storage import ResumeMode, RunStorage, decode_json_columns, encode_table
from rowloom.errors import RunFolderError


def _open(store: RunStorage, resume: ResumeMode = False) -> set[int]:
    request = RunRequest("fp1", 10, 5, ["a", "b"], {"columns": []}, resume=resume)
    return open_run(store, request).done


def test_encode_decode_keeps_structured_and_vector_values() -> None:
    values = {
        "a": ["x", None, "z"],
        "b": [{"k": [1, 2]}, None, {"k": []}],
        "v": [[0.1, 0.2], None, [1.0, -1.0]],
        "mixed": [1, "two", 3.0],
    }
    table = encode_table(list(values), values)
    assert str(table.schema.field("v").type) == "list<item: double>"
    assert decode_json_columns(table) == values


def test_write_is_atomic_and_recorded(tmp_path: Path) -> None:
    store = RunStorage(tmp_path / "run")
    assert _open(store) == set()
    table = encode_table(["a", "b"], {"a": [1, 2], "b": ["x", "y"]})
    path = store.write_row_group(0, table, {"template_error": 3})
    assert path.name == "part-00000.parquet"
    assert pq.read_table(path).num_rows == 2
    manifest = json.loads(store.manifest_path.read_text())
    assert manifest["row_groups"]["0"] == {
        "rows": 2,
        "dropped": {"template_error": 3},
        "part": "part-00000.parquet",
    }
    assert not [p for p in store.data_dir.iterdir() if p.name.startswith(".")]


def test_crash_between_write_and_rename_leaves_no_visible_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStorage(tmp_path / "run")
    _open(store)
    table = encode_table(["a", "b"], {"a": [1], "b": ["x"]})

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.write_row_group(0, table, {})
    monkeypatch.undo()
    visible = sorted(store.data_dir.glob("part-*.parquet"))
    assert visible == []
    # a resume cleans the temporary and does not count the row group as done
    store2 = RunStorage(tmp_path / "run")
    assert _open(store2, resume=True) == set()
    assert list(store2.data_dir.iterdir()) == []


def test_resume_reports_done_groups_and_redoes_missing_parts(tmp_path: Path) -> None:
    store = RunStorage(tmp_path / "run")
    _open(store)
    for rg in (0, 1):
        store.write_row_group(rg, encode_table(["a", "b"], {"a": [rg], "b": ["x"]}), {})
    (store.data_dir / "part-00001.parquet").unlink()
    again = RunStorage(tmp_path / "run")
    assert _open(again, resume=True) == {0}
    assert sorted(again.manifest.row_groups) == [0]  # type: ignore[union-attr]


def test_a_new_run_saves_config_and_manifest_off_the_start_and_nothing_overtakes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`open_run(settle=False)` (what `create` does) returns before the config and manifest
    are on disk, so the first requests need not wait for the disk; the first row group's
    write waits for that saving, so the stale start manifest never lands after it."""
    saving, release, settling = threading.Event(), threading.Event(), threading.Event()
    save_config = RunStorage._save_config
    settle = RunStorage.settle

    def gated_save(self: RunStorage, config: Any) -> None:
        saving.set()
        release.wait(10)
        save_config(self, config)

    def watched_settle(self: RunStorage) -> None:
        settling.set()
        settle(self)

    monkeypatch.setattr(RunStorage, "_save_config", gated_save)
    monkeypatch.setattr(RunStorage, "settle", watched_settle)
    store = RunStorage(tmp_path / "run")
    request = RunRequest("fp1", 10, 5, ["a"], {"columns": []})
    assert open_run(store, request, settle=False).done == set()
    assert saving.wait(10) and not release.is_set()
    assert not store.manifest_path.exists() and not store.config_path.exists()
    table = encode_table(["a"], {"a": [1, 2, 3, 4, 5]})
    writer = threading.Thread(target=store.write_row_group, args=(0, table, {}))
    writer.start()
    assert settling.wait(10)  # the part's write waits for the start's saving
    release.set()
    writer.join(10)
    manifest = json.loads(store.manifest_path.read_text())
    assert manifest["row_groups"]["0"]["rows"] == 5
    assert store.config_path.is_file()


def test_a_start_that_cannot_save_is_a_run_folder_error(tmp_path: Path) -> None:
    store = RunStorage(tmp_path / "run")
    store.config_path.mkdir(parents=True)  # config.yaml cannot be written: a folder is there
    open_run(store, RunRequest("fp1", 10, 5, ["a"], {"columns": []}), settle=False)
    with pytest.raises(RunFolderError, match="cannot write the run folder"):
        store.settle()
    with pytest.raises(RunFolderError):  # and every later write says so too
        store.write_row_group(0, encode_table(["a"], {"a": [1]}), {})
    with pytest.raises(RunFolderError):  # the default waits: the error comes at once
        open_run(RunStorage(tmp_path / "run"), RunRequest("fp1", 10, 5, ["a"], {"c": 1}))
