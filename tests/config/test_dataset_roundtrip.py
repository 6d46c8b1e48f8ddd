"""YAML/JSON round trips, the product.md shape, fingerprints and derived views."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from rowloom.config import (
    DatasetConfig,
    LLMStructuredColumnConfig,
    ModelProvider,
    RunConfig,
)

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))

PRODUCT_YAML = """
providers:
  - name: local
    provider_type: openai
    endpoint: http://127.0.0.1:8000/v1
    api_key_env: LOCAL_API_KEY
  - name: sim
    provider_type: simulated
    simulation: {capacity: 32, latency_ms: 200, overload: reject, retry_after_s: 1, seed: 7}
models:
  - alias: writer
    model: some-model-id
    provider: local
    generation_kind: chat
    max_parallel_requests: 64
    inference_parameters: {temperature: 0.7, max_tokens: 64}
columns:
  - name: topic
    column_type: sampler
    sampler_type: category
    params: {values: [rivers, volcanoes]}
  - {name: draft, column_type: llm_text, model_alias: writer, prompt: "Write about {{ topic }}."}
  - {name: review, column_type: llm_text, model_alias: writer, prompt: "Improve: {{ draft }}"}
run:
  buffer_size: 100
"""


def test_product_yaml_shape_loads() -> None:
    config = DatasetConfig.from_yaml(PRODUCT_YAML)
    assert config.run_config.buffer_size == 100
    assert config.topological_order == ("topic", "draft", "review")
    assert config.dependencies["review"] == ("draft",)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip_yaml_and_json(path: Path, tmp_path: Path) -> None:
    config = DatasetConfig.from_yaml(path)
    again = DatasetConfig.from_yaml(config.to_yaml())
    assert again == config
    assert again.to_yaml() == config.to_yaml()
    json_path = tmp_path / "c.json"
    config.to_json(json_path)
    assert DatasetConfig.from_json(json_path) == config
    assert DatasetConfig.from_file(json_path).fingerprint() == config.fingerprint()


def test_fingerprint_ignores_run_section_but_not_columns() -> None:
    config = DatasetConfig.from_yaml(PRODUCT_YAML)
    faster = config.model_copy(update={"run": RunConfig(buffer_size=7)})
    assert faster.fingerprint() == config.fingerprint()
    data = config.to_dict()
    data["columns"][1]["prompt"] = "Write briefly about {{ topic }}."
    assert DatasetConfig.from_dict(data).fingerprint() != config.fingerprint()


def test_declaration_order_does_not_matter_for_dependencies() -> None:
    config = DatasetConfig.from_dict(
        {
            "providers": [{"name": "sim", "provider_type": "simulated"}],
            "models": [{"alias": "w", "model": "m", "provider": "sim"}],
            "columns": [
                {"name": "b", "column_type": "llm_text", "model_alias": "w", "prompt": "{{ a }}"},
                {"name": "a", "column_type": "sampler", "sampler_type": "uuid"},
            ],
        }
    )
    assert config.topological_order == ("a", "b")


def test_api_key_never_in_repr_or_dump() -> None:
    provider = ModelProvider(
        name="p", endpoint="http://127.0.0.1:1/v1", api_key="sk-planted-secret-123"
    )
    assert "sk-planted-secret-123" not in repr(provider)
    assert "sk-planted-secret-123" not in str(provider.model_dump())
    assert "sk-planted-secret-123" not in provider.model_dump_json()
    assert provider.resolve_api_key() == "sk-planted-secret-123"


class Answer(BaseModel):
    text: str
    confidence: float


def test_pydantic_model_becomes_schema() -> None:
    col = LLMStructuredColumnConfig(
        name="a",
        model_alias="w",
        prompt="p",
        output_format=Answer,  # type: ignore[arg-type]
    )
    assert col.output_format["properties"]["confidence"]["type"] == "number"


names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5),
    name=names,
    seed=st.none() | st.integers(0, 2**31),
    buffer=st.integers(1, 10_000),
)
def test_random_configs_round_trip(
    values: list[str], name: str, seed: int | None, buffer: int
) -> None:
    config = DatasetConfig.from_dict(
        {
            "columns": [
                {
                    "name": name,
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": values},
                },
                {"name": f"{name}_x", "column_type": "expression", "expr": f"{{{{ {name} }}}}!"},
            ],
            "seed": seed,
            "run": {"buffer_size": buffer},
        }
    )
    assert DatasetConfig.from_yaml(config.to_yaml()) == config
    assert DatasetConfig.from_json(config.to_json()) == config
