"""Records people can read: preview cards and JSON lines through the real entry point, the
notebook HTML of results, sample records, and a run folder opened as a result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.interface.cli_support import run_cli, write_config

from rowloom.interface.designer import Designer
from rowloom.interface.preview_view import print_records, records_html
from rowloom.interface.results import DatasetResult

JUDGE = {
    "name": "verdict",
    "column_type": "llm_judge",
    "model_alias": "writer",
    "prompt": "Judge {{ text }}.",
    "scores": [{"name": "clarity", "description": "how clear", "options": {"1": "bad", "2": "ok"}}],
}
COLUMNS: list[dict[str, Any]] = [
    {
        "name": "topic",
        "column_type": "sampler",
        "sampler_type": "category",
        "params": {"values": ["rivers", "lakes"]},
    },
    {
        "name": "text",
        "column_type": "llm_text",
        "model_alias": "writer",
        "prompt": "On {{ topic }}.",
    },
    JUDGE,
]


def test_preview_prints_one_card_per_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_cli(capsys, "preview", write_config(tmp_path / "c.yaml", COLUMNS), "-n", "2")
    assert result.code == 0, result.text
    assert "record 1 of 2" in result.out and "record 2 of 2" in result.out
    assert "clarity:" in result.out  # judge scores shown by name, not as raw JSON
    assert '"score"' not in result.out


def test_preview_json_lines_are_machine_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.yaml", COLUMNS)
    result = run_cli(capsys, "preview", config, "-n", "3", "--format", "json")
    assert result.code == 0, result.text
    rows = [json.loads(line) for line in result.out.splitlines() if line.startswith("{")]
    assert len(rows) == 3
    assert set(rows[0]) == {"topic", "text", "verdict"}
    assert set(rows[0]["verdict"]["clarity"]) == {"score", "reasoning"}


def test_preview_rejects_an_unknown_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.yaml", COLUMNS)
    assert run_cli(capsys, "preview", config, "--format", "xml").code == 2


def test_cards_wrap_long_text_and_summarise_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    console = Console(width=60, force_terminal=False)
    print_records({"t": ["word " * 40], "v": [[0.5] * 32]}, console)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 60
    assert "(32 values)" in out


def test_html_escapes_values_and_says_how_many_are_shown() -> None:
    html = records_html({"x": ["<script>alert(1)</script>"] * 30}, total=30)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "20 of 30 records" in html


def test_results_in_notebooks_and_sample_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.yaml", COLUMNS, run={"buffer_size": 4})
    designer = Designer(tmp_path / "art")
    preview = designer.preview(config, 3)
    assert "<table>" in preview._repr_html_() and "3 records" in preview._repr_html_()
    capsys.readouterr()
    preview.display_sample_record()
    preview.display_sample_record()
    out = capsys.readouterr().out
    assert "record 0 of 3" in out and "record 1 of 3" in out
    with pytest.raises(IndexError):
        preview.display_sample_record(7)

    created = designer.create(config, 10, "run")
    opened = DatasetResult.open(created.run_dir)
    assert opened.record(9) == {c: v[9] for c, v in created.columns().items()}
    assert opened.head(5) == {c: v[:5] for c, v in created.columns().items()}
    html = opened._repr_html_()
    assert "10 of 10 rows" in html and "<td" in html
    files = opened.export(tmp_path / "out.jsonl")
    assert len(files[0].read_text().splitlines()) == 10
    assert opened.profile is not None and opened.profile["rows"] == 10
