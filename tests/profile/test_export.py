"""Exports round-trip: what is written reads back as the run's data, in every format."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from tests.profile.run_folder import make_run

from rowloom.profile.export import ExportError, ExportSpec, export_run

DATA: dict[str, list[Any]] = {
    "topic": ["rivers", "lakes", None, "seas", "bays"],
    "n": [1, 2, 3, 4, 5],
    "scores": [{"q": {"score": 1, "reasoning": "r"}}] * 5,
    "vec": [[0.5, 1.0]] * 5,
    "answer__reasoning_content": ["think"] * 5,
}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", DATA, parts=3)


def _rows() -> list[dict[str, Any]]:
    return [{k: DATA[k][i] for k in DATA} for i in range(5)]


def test_jsonl_round_trip_keeps_nested_values(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert export_run(ExportSpec(run, out, "jsonl")) == [out]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == _rows()


def test_parquet_round_trip(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    export_run(ExportSpec(run, out, "parquet"))
    assert pq.read_table(out).to_pylist() == _rows()


def test_csv_writes_nested_values_as_json(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    export_run(ExportSpec(run, out, "csv"))
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["topic"] for r in rows] == ["rivers", "lakes", "", "seas", "bays"]
    assert json.loads(rows[0]["scores"]) == DATA["scores"][0]
    assert json.loads(rows[0]["vec"]) == [0.5, 1.0]
    assert rows[4]["n"] == "5"


def test_shards_of_at_most_n_rows_in_order(run: Path, tmp_path: Path) -> None:
    paths = export_run(ExportSpec(run, tmp_path / "s.jsonl", "jsonl", max_rows_per_file=2))
    assert [p.name for p in paths] == ["s-00000.jsonl", "s-00001.jsonl", "s-00002.jsonl"]
    counts = [len(p.read_text().splitlines()) for p in paths]
    assert counts == [2, 2, 1]
    topics = [json.loads(line)["topic"] for p in paths for line in p.read_text().splitlines()]
    assert topics == DATA["topic"]


def test_column_selection_and_side_columns(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    export_run(ExportSpec(run, out, "jsonl", columns=["n", "topic"]))
    assert json.loads(out.read_text().splitlines()[0]) == {"n": 1, "topic": "rivers"}
    no_side = tmp_path / "b.jsonl"
    export_run(ExportSpec(run, no_side, "jsonl", side_columns=False))
    assert "answer__reasoning_content" not in json.loads(no_side.read_text().splitlines()[0])


def test_refuses_to_replace_an_existing_file_unless_asked(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("keep me")
    with pytest.raises(ExportError, match="exists"):
        export_run(ExportSpec(run, out, "jsonl"))
    assert out.read_text() == "keep me"
    export_run(ExportSpec(run, out, "jsonl", overwrite=True))
    assert len(out.read_text().splitlines()) == 5


def test_unknown_column_is_named(run: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"unknown column.*nope"):
        export_run(ExportSpec(run, tmp_path / "x.csv", "csv", columns=["nope"]))


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not a run folder"):
        export_run(ExportSpec(tmp_path, tmp_path / "x.csv", "csv"))
