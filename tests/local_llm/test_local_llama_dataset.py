"""A small dataset generated end to end from a real model (llama.cpp server, SmolLM2-135M)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from llama_server import LlamaServerHandle

from rowloom import DatasetConfig, Designer

EXAMPLE = Path(__file__).parents[2] / "examples" / "local_llama.yaml"

pytestmark = pytest.mark.llm


def test_example_config_generates_text_json_and_embeddings(
    llama_server: LlamaServerHandle, tmp_path: Path
) -> None:
    data = DatasetConfig.from_yaml(EXAMPLE).to_dict()
    data["providers"][0]["endpoint"] = llama_server.url
    config = DatasetConfig.from_dict(data)
    result = Designer(tmp_path).create(config, 6, "llama")
    assert result.summary.status == "complete", result.summary
    df = result.to_pandas()
    assert list(df.columns) == ["animal", "fact", "card", "fact_embedding"]
    assert len(df) + sum(result.summary.dropped_rows.values()) == 6
    assert len(df) >= 4, result.summary.dropped_rows  # a tiny model may fail a structured row
    schema = config.column_by_name["card"].output_format
    for fact, card, vector in zip(df["fact"], df["card"], df["fact_embedding"], strict=True):
        assert isinstance(fact, str) and fact.strip()
        jsonschema.validate(card, schema)
        assert len(vector) == len(df["fact_embedding"][0]) > 8
