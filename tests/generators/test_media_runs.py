"""Image columns' files across the life of a run folder: a resumed run keeps the images of its
finished rows (and drops a killed writer's temporaries), --overwrite keeps the old run's images
with the old run, and a folder whose parts live elsewhere (a Ray worker's) writes images where
the dataset's paths point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rowloom.builder.builder import DatasetBuilder
from rowloom.builder.storage import RunStorage
from rowloom.config.dataset import DatasetConfig
from rowloom.generators.media import MediaStore
from rowloom.interface.designer import Designer
from rowloom.simulation.media import simulated_png


def config(style: str = "A watercolour", *, fail_column: bool = False) -> DatasetConfig:
    columns: list[dict[str, Any]] = [
        {
            "name": "n",
            "column_type": "sampler",
            "sampler_type": "uniform",
            "params": {"low": 0, "high": 10**6, "integer": True},
        },
        {
            "name": "picture",
            "column_type": "image",
            "model_alias": "artist",
            "prompt": f"{style} of owl number {{{{ n }}}}",
        },
        {
            "name": "caption",
            "column_type": "llm_text",
            "model_alias": "eye",
            "prompt": "Describe it.",
            "multi_modal_context": [{"modality": "image", "column_name": "picture"}],
        },
    ]
    if fail_column:
        columns.append(
            {
                "name": "f",
                "column_type": "custom",
                "required_columns": ["n", "caption"],
                "generator_function": "tests.models.usage_functions:fail_on_row",
            }
        )
    return DatasetConfig.from_dict(
        {
            "providers": [
                {"name": "p", "provider_type": "simulated", "simulation": {"latency_ms": 0}}
            ],
            "models": [
                {"alias": "artist", "model": "img", "provider": "p", "generation_kind": "image"},
                {"alias": "eye", "model": "vision", "provider": "p"},
            ],
            "columns": columns,
            "run": {"buffer_size": 3, "max_concurrent_row_groups": 1},
        }
    )


def dataset_of(run: Path) -> pd.DataFrame:
    """The rows of a run folder's parts."""
    return pd.concat(pd.read_parquet(p) for p in sorted((run / "data").glob("*.parquet")))


def replaced_folder(artifacts: Path, name: str) -> Path:
    """The one folder `--overwrite` moved the old run `name` to."""
    (old,) = artifacts.glob(f"{name}.replaced-*")
    return old


def images_of(run: Path) -> list[Path]:
    """The image files of a run folder."""
    return [p for p in (run / "images").rglob("*") if p.is_file()]


def assert_images_match(run: Path, df: pd.DataFrame, style: str) -> None:
    """Every row's picture is a file of the run folder, generated from that row's prompt."""
    for path, n in zip(df["picture"], df["n"], strict=True):
        assert (run / path).read_bytes() == simulated_png(0, "img", f"{style} of owl number {n}")


async def test_resume_keeps_finished_images_and_overwrite_keeps_them_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    designer = Designer(tmp_path)
    fresh = (await designer.acreate(config(fail_column=True), 6, "fresh")).to_pandas()
    monkeypatch.setenv("ROWLOOM_TEST_FAIL_ROW", str(fresh["n"].iloc[4]))
    with pytest.raises(Exception, match="planned failure"):
        await designer.acreate(config(fail_column=True), 6, "run")
    monkeypatch.delenv("ROWLOOM_TEST_FAIL_ROW")
    run = tmp_path / "run"
    killed = run / "images" / "picture" / ".00000004.png.tmp-1-deadbeef"
    killed.write_bytes(b"half an image")  # a writer killed mid-file
    resumed = await designer.acreate(config(fail_column=True), 6, "run", resume=True)
    assert resumed.summary.resumed_row_groups == 1
    df = resumed.to_pandas()
    assert df["picture"].tolist() == fresh["picture"].tolist()
    assert_images_match(run, df, "A watercolour")
    assert not killed.exists()

    replaced = await designer.acreate(config("An oil painting"), 6, "run", overwrite=True)
    assert_images_match(run, replaced.to_pandas(), "An oil painting")
    old = replaced_folder(tmp_path, "run")
    assert_images_match(old, dataset_of(old), "A watercolour")  # the old run, whole, with images


class ElsewhereStorage(RunStorage):
    """A run folder whose own files live in a subfolder while the dataset's paths start at
    the run's root (what a Ray worker's attempt storage does)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root / "workers" / "w1")
        self.media_root = root


async def test_images_go_where_the_dataset_paths_point(tmp_path: Path) -> None:
    root = tmp_path / "run"
    builder = DatasetBuilder(config(), storage_factory=lambda _: ElsewhereStorage(root))
    outputs = await builder.build(3, run_dir=root / "workers" / "w1", name="w1")
    assert outputs.summary.rows_written == 3
    assert_images_match(root, dataset_of(root / "workers" / "w1"), "A watercolour")
    assert not (root / "workers" / "w1" / "images").exists()


async def test_a_dropped_rows_image_is_removed(tmp_path: Path) -> None:
    data = json.loads(config().to_json())
    data["columns"].insert(
        0,
        {
            "name": "sketch",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": ["https://example.com/owl.png", "not an image"]},
        },
    )
    data["columns"][-1]["multi_modal_context"].append({"column_name": "sketch"})
    result = await Designer(tmp_path).acreate(DatasetConfig.from_dict(data), 9, "run")
    df = result.to_pandas()
    assert 0 < len(df) < 9  # rows with "not an image" are dropped after their picture was made
    assert result.summary.dropped_rows == {"invalid_image": 9 - len(df)}
    files = sorted(p.relative_to(tmp_path / "run").as_posix() for p in images_of(tmp_path / "run"))
    assert files == sorted(df["picture"])


def test_only_the_stores_own_images_are_removed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    media = MediaStore(run)
    saved = media.save_image("picture", 3, simulated_png(0, "m", "x"))
    (tmp_path / "mine.png").write_bytes(b"user file")
    (run / "data").mkdir()
    (run / "data" / "part.png").write_bytes(b"not an image of the store")
    for value in (None, 7, "data:image/png;base64,AAAA", "../mine.png", str(tmp_path / "mine.png"),
                  "data/part.png", "images/../data/part.png"):  # fmt: skip
        media.remove(value)
    assert (tmp_path / "mine.png").exists() and (run / "data" / "part.png").exists()
    media.remove(saved)
    assert not (run / saved).exists()


@pytest.mark.parametrize("kept_by_processor", [False, True])
async def test_a_dropped_image_columns_files_go_unless_an_output_names_them(
    tmp_path: Path, kept_by_processor: bool
) -> None:
    """`drop: true` on an image column: later columns still see the pictures, but the run
    folder keeps no file the dataset does not point to (Data Designer keeps them because it
    saves dropped columns to dropped-columns parquet files; rowloom keeps no dropped column).
    A processor's output that names a picture keeps that file."""
    data = json.loads(config().to_json())
    data["columns"][1]["drop"] = True
    if kept_by_processor:
        data["processors"] = [
            {"processor_type": "schema_transform", "name": "pairs",
             "template": {"image": "{{ picture }}", "text": "{{ caption }}"}}
        ]  # fmt: skip
    result = await Designer(tmp_path).acreate(DatasetConfig.from_dict(data), 7, "run")
    df = result.to_pandas()
    assert len(df) == 7 and "picture" not in df.columns and df["caption"].notna().all()
    files = sorted(p.relative_to(tmp_path / "run").as_posix() for p in images_of(tmp_path / "run"))
    if kept_by_processor:
        pairs = pd.read_parquet(tmp_path / "run" / "processors" / "pairs")
        assert files == sorted(pairs["image"]) and len(files) == 7
    else:
        assert files == []
        assert not (tmp_path / "run" / "images" / "picture").exists()
