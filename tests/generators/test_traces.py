"""`extract_reasoning_content` and `with_trace`: side-effect columns written beside the value,
over HTTP against the mock server, with tools, through resume, and usable downstream."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.simulation.server import MockProviderServer, MockServerOptions

DD_TUTORIAL = Path(__file__).parents[1] / "compat" / "configs" / "tutorial_1_the_basics.yaml"
TOOLS_SERVER = str(Path(__file__).parents[1] / "models" / "mcp_tools_server.py")


def config(endpoint: str, *, tools: bool = False, fail_column: bool = False) -> DatasetConfig:
    columns: list[dict[str, Any]] = [
        {
            "name": "n",
            "column_type": "sampler",
            "sampler_type": "uniform",
            "params": {"low": 0, "high": 1000, "integer": True},
        },
        {
            "name": "q",
            "column_type": "llm_text",
            "model_alias": "r",
            "prompt": "Think about {{ n }}.",
            "extract_reasoning_content": True,
            "with_trace": "all_messages",
        },
        {
            "name": "card",
            "column_type": "llm_structured",
            "model_alias": "r",
            "prompt": "Summarise: {{ q }}",
            "with_trace": "last_message",
            "output_format": {
                "type": "object",
                "properties": {"k": {"type": "integer"}},
                "required": ["k"],
            },
        },
        {
            "name": "why",
            "column_type": "expression",
            "expr": "{{ q__reasoning_content | length }}",
            "dtype": "int",
        },
    ]
    data: dict[str, Any] = {
        "providers": [{"name": "p", "endpoint": endpoint}],
        "models": [{"alias": "r", "model": "reasoner", "provider": "p"}],
        "columns": columns,
        "run": {"buffer_size": 4, "max_concurrent_row_groups": 1},
    }
    if tools:
        data["mcp_providers"] = [
            {
                "name": "t",
                "provider_type": "stdio",
                "command": sys.executable,
                "args": [TOOLS_SERVER],
            }
        ]
        data["tool_configs"] = [{"tool_alias": "math", "providers": ["t"], "allow_tools": ["add"]}]
        columns[1]["tool_alias"] = "math"
    if fail_column:
        columns.append(
            {
                "name": "f",
                "column_type": "custom",
                "required_columns": ["n", "card"],
                "function": "tests.models.usage_functions:fail_on_row",
            }
        )
    return DatasetConfig.from_dict(data)


async def test_reasoning_and_traces_are_columns_of_the_dataset(tmp_path: Path) -> None:
    options = MockServerOptions(latency_ms=0, reasoning="field")
    async with MockProviderServer(options) as server:
        result = await Designer(tmp_path).acreate(config(server.url, tools=True), 6, "run")
    df = result.to_pandas()
    assert list(df.columns) == [
        "n",
        "q",
        "q__reasoning_content",
        "q__trace",
        "card",
        "card__trace",
        "why",
    ]
    for row in df.to_dict("records"):
        assert row["q__reasoning_content"].startswith("Let me think:")
        assert row["why"] == len(row["q__reasoning_content"])  # usable downstream
        trace = row["q__trace"]
        assert [m["role"] for m in trace] == ["user", "assistant", "tool", "assistant"]
        call = trace[1]["tool_calls"][0]
        assert call["function"]["name"] == "add"
        assert trace[2]["tool_call_id"] == call["id"]
        assert trace[3]["content"] == row["q"]
        assert trace[3]["reasoning_content"] == row["q__reasoning_content"]
        last = row["card__trace"]
        assert len(last) == 1 and last[0]["role"] == "assistant"
        assert '"k"' in last[0]["content"]


async def test_inline_think_fills_the_reasoning_column() -> None:
    options = MockServerOptions(latency_ms=0, reasoning="inline")
    async with MockProviderServer(options) as server:
        result = await Designer().apreview(config(server.url), 3)
    for q, thoughts in zip(result.data["q"], result.data["q__reasoning_content"], strict=True):
        assert "<think>" not in q and thoughts.startswith("Let me think:")


async def test_side_effect_columns_survive_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = MockServerOptions(latency_ms=0, reasoning="field")
    async with MockProviderServer(options) as server:
        fresh = await Designer(tmp_path).acreate(config(server.url, fail_column=True), 8, "fresh")
        expected = fresh.to_pandas()
        monkeypatch.setenv("ROWLOOM_TEST_FAIL_ROW", str(expected["n"].iloc[4]))
        with pytest.raises(Exception, match="planned failure"):
            await Designer(tmp_path).acreate(config(server.url, fail_column=True), 8, "run")
        monkeypatch.delenv("ROWLOOM_TEST_FAIL_ROW")
        resumed = await Designer(tmp_path).acreate(
            config(server.url, fail_column=True), 8, "run", resume=True
        )
    assert resumed.summary.resumed_row_groups == 1
    got = resumed.to_pandas()
    assert got["q__reasoning_content"].tolist() == expected["q__reasoning_content"].tolist()
    assert got["q__trace"].tolist() == expected["q__trace"].tolist()


def test_simulate_gives_a_data_designer_config_its_reasoning(tmp_path: Path) -> None:
    """`--simulate` serves reasoning where a column keeps it, so the column gets values."""
    doc = yaml.safe_load(DD_TUTORIAL.read_text())
    for column in doc["data_designer"]["columns"]:
        if column["name"] == "product_name":
            column["extract_reasoning_content"] = True
    path = tmp_path / "dd.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = Designer(simulate=True).preview(path, 3)
    assert all(
        t.startswith("Let me think:") for t in result.data["product_name__reasoning_content"]
    )
    assert "customer_review__reasoning_content" not in result.data
    assert not any("<think>" in v for v in result.data["product_name"])
