"""Hugging Face seeds through the real `HfFileSystem`, against a stand-in hub on 127.0.0.1."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.support.hf_hub import Hub, serve

import rowloom as rl
from rowloom.config.errors import ConfigValidationError
from rowloom.config.seed import HuggingFaceSeedSource, SeedConfig
from rowloom.seeds import open_seed

pytest.importorskip("huggingface_hub")


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    q = [f"question {i}" for i in range(10)]
    pq.write_table(pa.table({"q": q}), repo / "data" / "train-0.parquet", row_group_size=3)
    pq.write_table(pa.table({"q": ["extra"]}), repo / "data" / "train-1.parquet")
    (repo / "rows.jsonl").write_text("".join(json.dumps({"q": v}) + "\n" for v in q[:4]))
    (repo / "README.md").write_text("# a dataset card, not data")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with serve({"org/name": repo}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


def read(path: str, **kw: object) -> list[str]:
    ds = open_seed(SeedConfig(source=HuggingFaceSeedSource(path=path, **kw)), seed=0)  # type: ignore[arg-type]
    try:
        return ds.column("q", range(ds.num_rows))  # type: ignore[no-any-return]
    finally:
        ds.close()


def test_file_glob_and_folder_paths(hub: Hub) -> None:
    assert read("datasets/org/name/data/train-0.parquet")[-1] == "question 9"
    assert read("hf://datasets/org/name/data/*.parquet")[-1] == "extra"
    assert read("datasets/org/name/data")[-1] == "extra"
    assert read("datasets/org/name/rows.jsonl") == [f"question {i}" for i in range(4)]
    assert any(p.endswith("/resolve/main/data/train-0.parquet") for _, p, _ in hub.requests)


def test_token_from_hf_token_or_a_named_variable_is_sent(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    read("datasets/org/name/data/train-1.parquet")
    assert {auth for _, _, auth in hub.requests} == {"Bearer hf_from_env"}
    hub.requests.clear()
    monkeypatch.setenv("TEAM_HF_TOKEN", "hf_team")
    read("datasets/org/name/data/train-1.parquet", token="TEAM_HF_TOKEN")
    assert {auth for _, _, auth in hub.requests} == {"Bearer hf_team"}


def test_literal_token_stays_out_of_reprs_and_files() -> None:
    source = HuggingFaceSeedSource(path="datasets/org/name", token="hf_literal_secret")
    assert "hf_literal_secret" not in repr(source)
    cfg = rl.DatasetConfig(seed_config=SeedConfig(source=source))
    assert "hf_literal_secret" not in cfg.to_yaml()
    named = HuggingFaceSeedSource(path="datasets/org/name", token="MY_TOKEN")
    assert named.model_dump()["token"] == "MY_TOKEN"


def test_a_run_seeded_from_the_hub(hub: Hub) -> None:
    cfg = rl.DatasetConfig.from_dict(
        {
            "seed_config": {
                "source": {"seed_type": "hf", "path": "datasets/org/name/data/*.parquet"},
                "sampling_strategy": "shuffle",
            },
            "columns": [{"name": "upper", "column_type": "expression", "expr": "{{ q | upper }}"}],
        }
    )
    data = rl.Designer().preview(cfg, 11).data
    assert sorted(data["q"]) == sorted([f"question {i}" for i in range(10)] + ["extra"])
    assert data["upper"] == [q.upper() for q in data["q"]]


def test_missing_repo_or_file_is_a_typed_error(hub: Hub) -> None:
    for path in ("datasets/org/other/x.parquet", "datasets/org/name/nope.parquet"):
        with pytest.raises(ConfigValidationError) as info:
            read(path)
        assert info.value.codes == ("seed_not_found",), info.value
    with pytest.raises(ConfigValidationError) as info:
        read("datasets/org/name/data/*.csv")
    assert info.value.codes == ("seed_no_files",)


def test_missing_huggingface_hub_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ConfigValidationError, match=r"rowloom\[hf\]") as info:
        read("datasets/org/name/data")
    assert info.value.codes == ("missing_dependency",)
