"""Every seed source reads the rows it names; hostile inputs get typed errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigValidationError
from rowloom.config.seed import (
    DataFrameSeedSource,
    DirectorySeedSource,
    FileContentsSeedSource,
    LocalFileSeedSource,
    SeedConfig,
)
from rowloom.seeds import blocks as blocks_mod
from rowloom.seeds import compile_seed, open_seed

ROWS = [{"city": f"c{i}", "pop": i} for i in range(10)]


def write(path: Path, rows: list[dict[str, Any]], fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)
    elif fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows))
    return path


def read_all(source: Any, **kw: Any) -> dict[str, list[Any]]:
    ds = open_seed(SeedConfig(source=source, **kw), seed=0)
    try:
        return ds.take(range(ds.num_rows)).to_pydict()
    finally:
        ds.close()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "json"])
def test_one_file_of_each_format(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path / f"seed.{fmt}", ROWS, fmt)
    got = read_all(LocalFileSeedSource(path=str(path)))
    assert got == {"city": [r["city"] for r in ROWS], "pop": [r["pop"] for r in ROWS]}


def test_glob_and_folder_read_files_in_path_order(tmp_path: Path) -> None:
    write(tmp_path / "d" / "b.parquet", ROWS[5:], "parquet")
    write(tmp_path / "d" / "a.parquet", ROWS[:5], "parquet")
    write(tmp_path / "d" / "sub" / "c.parquet", ROWS[:1], "parquet")
    (tmp_path / "d" / "notes.txt").write_text("not data")
    flat = read_all(LocalFileSeedSource(path=str(tmp_path / "d" / "*.parquet")))
    assert flat["pop"] == list(range(10))
    deep = read_all(LocalFileSeedSource(path=str(tmp_path / "d" / "**" / "*.parquet")))
    assert deep["pop"] == [*range(10), 0]
    folder = read_all(LocalFileSeedSource(path=str(tmp_path / "d")))
    assert folder["pop"] == [*range(10), 0]


def test_dataframe_and_table_sources() -> None:
    df = pd.DataFrame(ROWS, index=range(100, 110))
    assert read_all(DataFrameSeedSource(df=df))["pop"] == list(range(10))
    table = pa.Table.from_pylist(ROWS)
    assert read_all(DataFrameSeedSource(df=table))["city"][0] == "c0"
    with pytest.raises(ValueError, match="DataFrame or a pyarrow Table"):
        DataFrameSeedSource(df=[1, 2])


def test_large_text_files_are_spooled_with_the_same_rows_and_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"k": i, "v": f"x{i}"} for i in range(300)]
    path = write(tmp_path / "s.csv", rows, "csv")
    config = SeedConfig(source=LocalFileSeedSource(path=str(path)), sampling_strategy="shuffle")
    whole = open_seed(config, seed=5).take(range(600)).to_pydict()
    monkeypatch.setattr(blocks_mod, "SPOOL_BYTES", 0)
    monkeypatch.setattr(blocks_mod, "BLOCK_ROWS", 64)
    spooled_ds = open_seed(config, seed=5)
    assert isinstance(spooled_ds._blocks, blocks_mod.ParquetBlocks)
    assert list(spooled_ds._blocks.block_rows) == [64, 64, 64, 64, 44]
    monkeypatch.setattr(blocks_mod, "SPOOL_BYTES", 10**9)
    small_blocks = open_seed(config, seed=5)
    assert list(small_blocks._blocks.block_rows) == [64, 64, 64, 64, 44]
    assert spooled_ds.take(range(600)).to_pydict() == small_blocks.take(range(600)).to_pydict()
    assert sorted(whole["k"][:300]) == list(range(300))
    spool_dir = Path(spooled_ds._blocks.paths[0]).parent
    assert spool_dir.is_dir()
    spooled_ds.close()
    assert not spool_dir.exists()  # the spooled copy goes with the seed


def test_spooled_csv_whose_types_change_mid_file_is_read_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks_mod, "SPOOL_BYTES", 0)
    path = tmp_path / "s.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(50_000)) + "oops,y\n")
    ds = open_seed(SeedConfig(source=LocalFileSeedSource(path=str(path))), seed=0)
    assert ds.num_rows == 50_001
    assert ds.column("a", [0, 50_000]) == ["0", "oops"]


def test_directory_lists_files_and_file_contents_reads_them(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "a.md").write_text("# A\n")
    (root / "guides" / "b.md").write_text("# B\n")
    (root / "c.txt").write_text("plain")
    (root / ".hidden.md").write_text("secret")
    (root / ".git").mkdir()
    (root / ".git" / "x.md").write_text("no")
    listed = read_all(DirectorySeedSource(path=str(root)))
    assert listed["relative_path"] == ["a.md", "c.txt", "guides/b.md"]
    assert listed["source_kind"] == ["directory_file"] * 3
    assert listed["source_path"][0] == str(root.resolve() / "a.md")
    md = read_all(FileContentsSeedSource(path=str(root), file_pattern="*.md"))
    assert md["file_name"] == ["a.md", "b.md"]
    assert md["content"] == ["# A\n", "# B\n"]
    top = read_all(FileContentsSeedSource(path=str(root), file_pattern="*.md", recursive=False))
    assert top["relative_path"] == ["a.md"]


def test_large_folder_reads_contents_block_by_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rowloom.seeds import folders

    monkeypatch.setattr(folders, "SPOOL_BYTES", 0)
    for i in range(300):
        (tmp_path / f"f{i:03}.txt").write_text(f"text {i}")
    ds = open_seed(SeedConfig(source=FileContentsSeedSource(path=str(tmp_path))), seed=0)
    assert isinstance(ds._blocks, folders.ContentBlocks)
    assert ds.column("content", [0, 299, 300]) == ["text 0", "text 299", "text 0"]


# --- hostile inputs ------------------------------------------------------------------------


def codes(source: Any, **kw: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigValidationError) as info:
        open_seed(SeedConfig(source=source, **kw), seed=0)
    issue = info.value.issues[0]
    assert issue.location == "seed_config" and issue.message
    return info.value.codes


def test_hostile_paths_give_typed_errors(tmp_path: Path) -> None:
    assert codes(LocalFileSeedSource(path=str(tmp_path / "missing.parquet"))) == ("seed_not_found",)
    (tmp_path / "empty").mkdir()
    assert codes(LocalFileSeedSource(path=str(tmp_path / "empty"))) == ("seed_no_files",)
    assert codes(LocalFileSeedSource(path=str(tmp_path / "*.parquet"))) == ("seed_no_files",)
    assert codes(LocalFileSeedSource(path=str(tmp_path / "[.parquet"))) == ("seed_no_files",)
    assert codes(FileContentsSeedSource(path=str(tmp_path / "nope"))) == ("seed_not_found",)
    assert codes(FileContentsSeedSource(path=str(tmp_path / "empty"))) == ("seed_no_files",)
    (tmp_path / "x.bin").write_bytes(b"\x00\x01")
    assert codes(LocalFileSeedSource(path=str(tmp_path / "x.bin"))) == ("unknown_seed_format",)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    assert codes(LocalFileSeedSource(path=str(tmp_path / "bad.parquet"))) == ("unreadable_seed",)
    (tmp_path / "bad.json").write_text('"just a string"')
    assert codes(LocalFileSeedSource(path=str(tmp_path / "bad.json"))) == ("unreadable_seed",)


def test_mixed_or_mismatched_files_give_typed_errors(tmp_path: Path) -> None:
    write(tmp_path / "m" / "a.csv", ROWS, "csv")
    write(tmp_path / "m" / "b.jsonl", ROWS, "jsonl")
    assert codes(LocalFileSeedSource(path=str(tmp_path / "m"))) == ("mixed_seed_formats",)
    write(tmp_path / "s" / "a.parquet", ROWS, "parquet")
    write(tmp_path / "s" / "b.parquet", [{"other": 1}], "parquet")
    assert codes(LocalFileSeedSource(path=str(tmp_path / "s"))) == ("seed_schema_mismatch",)


def test_undecodable_file_contents_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ConfigValidationError, match=r"latin\.txt") as info:
        open_seed(SeedConfig(source=FileContentsSeedSource(path=str(tmp_path))), seed=0)
    assert info.value.codes == ("unreadable_seed",)
    latin = FileContentsSeedSource(path=str(tmp_path), encoding="latin-1")
    assert read_all(latin)["content"] == ["café"]
    with pytest.raises(ValueError, match="unknown encoding"):
        FileContentsSeedSource(path=str(tmp_path), encoding="klingon")


def test_empty_seed_and_out_of_range_selections(tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), empty)
    assert codes(LocalFileSeedSource(path=str(empty))) == ("empty_seed",)
    path = write(tmp_path / "s.parquet", ROWS, "parquet")
    src = LocalFileSeedSource(path=str(path))
    assert codes(src, selection_strategy={"start": 5, "end": 10}) == (
        "seed_selection_out_of_range",
    )
    assert codes(src, selection_strategy={"index": 0, "num_partitions": 11}) == (
        "seed_selection_out_of_range",
    )


def config_dict(path: Path, **extra: Any) -> dict[str, Any]:
    return {"seed_config": {"source": {"seed_type": "local", "path": str(path)}}, **extra}


def test_config_errors_for_selections_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "s.parquet", ROWS, "parquet")
    bad_partition = config_dict(path)
    bad_partition["seed_config"]["selection_strategy"] = {"index": 3, "num_partitions": 3}
    with pytest.raises(ConfigValidationError, match="index") as info:
        DatasetConfig.from_dict(bad_partition)
    assert info.value.issues[0].location == "seed_config"
    unknown = config_dict(
        path, columns=[{"name": "x", "column_type": "seed_dataset", "source_column": "nope"}]
    )
    with pytest.raises(ConfigValidationError) as info:
        compile_seed(DatasetConfig.from_dict(unknown))
    assert info.value.codes == ("unknown_seed_column",)
    assert "nope" in str(info.value) and "city" in str(info.value)
    clash = config_dict(path, columns=[{"name": "city", "column_type": "expression", "expr": "x"}])
    with pytest.raises(ConfigValidationError) as info:
        compile_seed(DatasetConfig.from_dict(clash))
    assert info.value.codes == ("seed_column_collision",)
    typo = config_dict(
        path, columns=[{"name": "x", "column_type": "expression", "expr": "{{ cty }}"}]
    )
    config = DatasetConfig.from_dict(typo)  # unknown until the seed's columns are known
    with pytest.raises(ConfigValidationError, match="seed's columns are") as info:
        compile_seed(config)
    assert info.value.codes == ("unknown_reference",)
