"""`rowloom push`: the dataset, its card and its profile reach a (local stand-in) Hub, with
the token sent but never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from tests.interface.cli_support import run_cli, write_config
from tests.support.hf_hub import serve

from rowloom.interface.designer import Designer

TOKEN = "hf_test_token_9d8c7b6a5f4e"
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
        "prompt": "On {{ topic }}",
    },
]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    config = write_config(tmp_path / "c.yaml", COLUMNS, run={"buffer_size": 7})
    return Designer(tmp_path / "art").create(config, 20, "qa").run_dir


def test_push_uploads_data_card_and_profile(
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve({}, upload_root=tmp_path / "hub") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        args = ("push", run_dir, "--repo", "acme/qa", "--private", "--license", "cc-by-4.0")
        result = run_cli(capsys, *args)
        assert result.code == 0, result.text
        assert TOKEN not in result.text
        assert hub.created["acme/qa"] == {"private": True, "type": "dataset"}
        assert all(
            auth == f"Bearer {TOKEN}" for method, _, auth in hub.requests if method == "POST"
        )
        assert len(hub.commits) == 1
    repo = tmp_path / "hub" / "acme" / "qa"
    shards = sorted((repo / "data").glob("*.parquet"))
    table = pq.read_table(shards)
    assert table.num_rows == 20 and set(table.column_names) == {"topic", "text"}
    card = (repo / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["license"] == "cc-by-4.0" and meta["size_categories"] == ["n<1K"]
    assert meta["configs"][0]["data_files"][0]["path"] == "data/*.parquet"
    assert "20 rows" in card
    assert "| `text` | llm_text | writer |" in card  # the model of each column, from config.yaml
    assert "## Models" in card and "| writer | `" in card
    assert "| writer | 20 |" in card  # token usage per model
    assert TOKEN not in card
    assert (repo / "rowloom" / "profile.json").is_file()
    saved = yaml.safe_load((repo / "rowloom" / "config.yaml").read_text())
    assert [c["name"] for c in saved["columns"]] == ["topic", "text"]


def test_push_needs_org_and_name(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "push", run_dir, "--repo", "just-a-name").code == 2


def test_push_refused_by_the_hub_exits_1(
    run_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve({}) as hub:  # read-only: repo creation is refused
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        result = run_cli(capsys, "push", run_dir, "--repo", "acme/qa")
    assert result.code == 1
    assert "push failed" in result.err and TOKEN not in result.text
