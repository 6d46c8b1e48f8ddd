"""Atomic parts, manifest, resume refusal and encoding round trips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rowloom.builder import storage as storage_mod
from rowloom.builder.storage import RunStorage, decode_json_columns, encode_table
from rowloom.errors import ResumeError


def _open(store: RunStorage, resume: storage_mod.ResumeMode = False, **kw: object) -> set[int]:
    args: dict[str, object] = dict(
        fingerprint="fp1", num_records=10, buffer_size=5, output_columns=["a", "b"]
    )
    args.update(kw)
    return store.open(resume=resume, **args)  # type: ignore[arg-type]


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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fingerprint": "other"}, "config changed"),
        ({"num_records": 11}, "10 records"),
        ({"buffer_size": 7}, "buffer_size 5"),
    ],
)
def test_resume_refuses_a_different_run(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    store = RunStorage(tmp_path / "run")
    _open(store)
    with pytest.raises(ResumeError, match=message):
        _open(RunStorage(tmp_path / "run"), resume=True, **change)
    # "if_possible" starts fresh instead
    fresh = RunStorage(tmp_path / "run")
    assert _open(fresh, resume="if_possible", **change) == set()


def test_resume_without_a_run_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ResumeError, match="no manifest"):
        _open(RunStorage(tmp_path / "nothing"), resume=True)


def test_fresh_run_replaces_old_parts(tmp_path: Path) -> None:
    store = RunStorage(tmp_path / "run")
    _open(store)
    store.write_row_group(0, encode_table(["a", "b"], {"a": [1], "b": ["x"]}), {})
    assert _open(RunStorage(tmp_path / "run")) == set()
    assert list((tmp_path / "run" / "data").iterdir()) == []
