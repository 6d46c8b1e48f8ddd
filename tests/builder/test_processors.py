"""Processors: `drop_columns` removes columns from the dataset; `schema_transform` writes an
extra table (here: chat/SFT format) beside it, per row group, resumable, readable from results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rowloom import DatasetConfig, Designer
from rowloom.config import ConfigValidationError

CHAT = {
    "messages": [
        {"role": "user", "content": "Tell me about {{ topic }}"},
        {"role": "assistant", "content": "{{ answer }}"},
    ],
    "meta": {"topic": "{{ topic }}", "n": "{{ n }}"},
}


def config(**extra: Any) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [
                {"name": "sim", "provider_type": "simulated", "simulation": {"latency_ms": 0}}
            ],
            "models": [{"alias": "m", "model": "sim-model", "provider": "sim"}],
            "columns": [
                {
                    "name": "n",
                    "column_type": "sampler",
                    "sampler_type": "uniform",
                    "params": {"low": 0, "high": 100, "integer": True},
                },
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ['quotes "and" \\ slashes', "rivers", "émigrés\nnewline"]},
                },
                {
                    "name": "answer",
                    "column_type": "llm_text",
                    "model_alias": "m",
                    "prompt": "About {{ topic }}",
                },
                {"name": "tmp_a", "column_type": "expression", "expr": "{{ n }}"},
                {"name": "tmp_b", "column_type": "expression", "expr": "{{ n + 1 }}"},
            ],
            "processors": [
                {"name": "drop_tmp", "processor_type": "drop_columns", "column_names": ["tmp_*"]},
                {"name": "chat", "processor_type": "schema_transform", "template": CHAT},
            ],
            **extra,
        }
    )


def test_schema_transform_and_drop_columns(tmp_path: Path) -> None:
    cfg = config()
    assert cfg.output_columns() == ["n", "topic", "answer"]
    result = Designer(artifact_dir=tmp_path).create(
        cfg, 12, "p", run_config=cfg.run_config.model_copy(update={"buffer_size": 5})
    )
    data = result.to_pandas()
    assert list(data.columns) == ["n", "topic", "answer"]
    chat = result.processor_output("chat")
    assert len(chat) == 12 and list(chat.columns) == ["messages", "meta"]
    for (_, row), (_, out) in zip(data.iterrows(), chat.iterrows(), strict=True):
        assert out["messages"] == [
            {"role": "user", "content": f"Tell me about {row['topic']}"},
            {"role": "assistant", "content": row["answer"]},
        ]
        assert out["meta"] == {"topic": row["topic"], "n": str(row["n"])}
    parts = sorted(p.name for p in (result.run_dir / "processors" / "chat").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    preview = Designer().preview(cfg, 4)
    assert [m["messages"][0]["content"] for m in preview.processor_outputs["chat"]] == [
        f"Tell me about {t}" for t in preview.data["topic"]
    ]


def test_a_resumed_run_has_the_same_processor_outputs(tmp_path: Path) -> None:
    cfg = config()
    rc = cfg.run_config.model_copy(update={"buffer_size": 4})
    whole = Designer(artifact_dir=tmp_path).create(cfg, 10, "a", run_config=rc)
    expected = whole.processor_output("chat").to_dict("records")
    # an interrupted run: row group 1 never finished
    run = Designer(artifact_dir=tmp_path).create(cfg, 10, "b", run_config=rc).run_dir
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["row_groups"]["1"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "data" / "part-00001.parquet").unlink()
    (run / "processors" / "chat" / "part-00001.parquet").unlink()
    resumed = Designer(artifact_dir=tmp_path).create(cfg, 10, "b", run_config=rc, resume=True)
    assert resumed.summary.resumed_row_groups == 2
    assert resumed.processor_output("chat").to_dict("records") == expected


@pytest.mark.parametrize(
    "processors,fragment",
    [
        ([{"name": "x", "processor_type": "drop_columns", "column_names": ["ghost"]}], "ghost"),
        ([{"name": "x", "processor_type": "drop_columns", "column_names": []}], "column_names"),
        (
            [{"name": "x", "processor_type": "schema_transform", "template": {"a": "{{ ghost }}"}}],
            "ghost",
        ),
        (
            [{"name": "x", "processor_type": "schema_transform", "template": {"a": "{{ n "}}],
            "parse",
        ),
        ([{"name": "x", "processor_type": "schema_transform", "template": {}}], "template"),
        ([{"name": "../up", "processor_type": "drop_columns", "column_names": ["n"]}], "name"),
        ([{"name": "x", "processor_type": "teleport"}], "processor_type"),
        (
            [{"name": "x", "processor_type": "drop_columns", "column_names": ["n"]}] * 2,
            "declared twice",
        ),
    ],
)
def test_hostile_processors_are_typed_errors(processors: list[Any], fragment: str) -> None:
    with pytest.raises(ConfigValidationError) as info:
        config(processors=processors)
    assert fragment in str(info.value)
