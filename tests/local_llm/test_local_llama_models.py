"""`models check`, token usage, cost and sampled temperatures against a real model
(llama.cpp server, SmolLM2-135M)."""

from __future__ import annotations

import pytest
from llama_server import MODEL_ALIAS, LlamaServerHandle

from rowloom import DatasetConfig, Designer
from rowloom.models.check import check_models

pytestmark = pytest.mark.llm


def config(url: str) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [{"name": "llama", "endpoint": url}],
            "models": [
                {
                    "alias": "writer",
                    "model": MODEL_ALIAS,
                    "provider": "llama",
                    "max_parallel_requests": 2,
                    "price": {"prompt_per_million": 0.5, "completion_per_million": 1.5},
                    "inference_parameters": {
                        "max_tokens": 24,
                        "temperature": {
                            "distribution_type": "manual",
                            "params": {"values": [0.2, 0.8]},
                        },
                    },
                },
                {
                    "alias": "embedder",
                    "model": MODEL_ALIAS,
                    "provider": "llama",
                    "generation_kind": "embedding",
                },
            ],
            "columns": [
                {
                    "name": "animal",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["cat", "owl", "fox"]},
                },
                {
                    "name": "fact",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": "One short fact about the {{ animal }}.",
                },
            ],
        }
    )


async def test_models_check_against_the_real_model(llama_server: LlamaServerHandle) -> None:
    results = {r.alias: r for r in await check_models(config(llama_server.url))}
    writer = results["writer"]
    assert writer.verdict == "ok", writer.as_json()
    assert writer.schema_honoured is True  # llama.cpp enforces json_schema with a grammar
    assert all(p.latency_ms is not None and p.latency_ms > 0 for p in writer.probes)
    assert results["embedder"].verdict == "ok"
    assert results["embedder"].probes[0].detail == "576 dimensions"


async def test_token_usage_and_cost_from_the_real_model(llama_server: LlamaServerHandle) -> None:
    result = await Designer().apreview(config(llama_server.url), 4)
    assert result.summary.status == "complete"
    usage = result.summary.token_usage
    writer = usage["by_model"]["writer"]
    assert writer["requests"] == 4
    assert writer["prompt_tokens"] > 4 * 5 and 4 <= writer["completion_tokens"] <= 4 * 24
    expected = (writer["prompt_tokens"] * 0.5 + writer["completion_tokens"] * 1.5) / 1e6
    assert writer["estimated_cost"] == round(expected, 6)  # costs are kept to 6 decimals
    assert usage["by_column"]["fact"]["total_tokens"] == writer["total_tokens"]
