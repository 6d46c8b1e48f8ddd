"""Data Designer's column features natively: llm_code extraction, judge scores with any name
and int/str options, skip (when/value/propagate_skip), custom strategies and side effects."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from rowloom import DatasetConfig, Designer, custom_column_generator
from rowloom.config import ConfigValidationError
from rowloom.generators.base import CellContext
from rowloom.generators.code import LLMCodeGenerator, code_instruction, extract_code
from rowloom.generators.custom import CustomColumnError
from rowloom.generators.llm import normalize_judgement
from rowloom.models.clients.base import ChatResponse
from rowloom.models.facade import ModelFacade
from rowloom.models.resources import ModelResourceCatalog

SIM = {
    "providers": [
        {"name": "sim", "provider_type": "simulated", "simulation": {"latency_ms": 0, "seed": 3}}
    ],
    "models": [{"alias": "m", "model": "sim-model", "provider": "sim"}],
}


def config(*columns: Mapping[str, Any]) -> DatasetConfig:
    return DatasetConfig.from_dict({**SIM, "columns": list(columns)})


def preview(cfg: DatasetConfig, n: int, engine: str = "async", **run: Any) -> Any:
    rc = cfg.run_config.model_copy(update=run)
    result = Designer(engine=engine).preview(cfg.model_copy(update={"run": rc}), n)  # type: ignore[arg-type]
    assert result.summary.status == "complete", result.summary
    return result


# --- llm_code ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,lang,code",
    [
        ("Here:\n```python\nprint(1)\n```\nDone.", "python", "print(1)"),
        ("```py\nx = 1\n```", "python", "x = 1"),
        ("```\nSELECT 1\n```", "sql:postgres", "SELECT 1"),
        ("```sql\nSELECT 1\n```\nor\n```sql\nSELECT 2;\n```", "sql:sqlite", "SELECT 2;"),
        ("~~~bash\necho hi\n~~~", "bash", "echo hi"),
    ],
)
def test_code_is_the_last_fenced_block(text: str, lang: str, code: str) -> None:
    assert extract_code(text, lang) == (code, "")


@pytest.mark.parametrize(
    "text,problem", [("just words", "no code block"), ("```java\nint x;\n```", "tagged 'java'")]
)
def test_unusable_code_answers_name_the_problem(text: str, problem: str) -> None:
    code, why = extract_code(text, "python")
    assert code is None and problem in why


def test_code_instruction_names_language_and_dialect() -> None:
    assert code_instruction("python") == "Return only the code in one ```python block."
    assert code_instruction("sql:postgres").endswith("```sql block (dialect: sql:postgres).")


class Scripted:
    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.messages: list[list[Mapping[str, str]]] = []

    async def execute_chat(
        self, alias: str, messages: Sequence[Mapping[str, str]], **kwargs: Any
    ) -> ChatResponse:
        self.messages.append(list(messages))
        return ChatResponse(text=self.replies.pop(0))

    async def execute_embedding(self, alias: str, inputs: Sequence[str]) -> Any:
        raise AssertionError


async def test_llm_code_corrects_a_wrong_block_then_extracts() -> None:
    cfg = config(
        {"name": "t", "column_type": "expression", "expr": "sum"},
        {
            "name": "code",
            "column_type": "llm_code",
            "model_alias": "m",
            "prompt": "Write {{ t }}",
            "code_lang": "python",
        },
    )
    gen = LLMCodeGenerator(
        cfg.column_by_name["code"], ModelResourceCatalog(cfg.models, cfg.providers)
    )
    executor = Scripted(["no code here", "```python\ndef f():\n    return 1\n```"])
    ctx = CellContext(0, 0, 0, ModelFacade(executor, ["m"]))
    assert await gen.generate_cell({"t": "sum"}, ctx) == "def f():\n    return 1"
    first, second = executor.messages
    assert first[-1]["content"].endswith("Return only the code in one ```python block.")
    assert "no code block" in second[-1]["content"]


@pytest.mark.parametrize("bad", ["sql", "sql:oracle", "Python", ""])
def test_llm_code_rejects_unknown_languages(bad: str) -> None:
    with pytest.raises(ConfigValidationError) as info:
        config(
            {
                "name": "c",
                "column_type": "llm_code",
                "model_alias": "m",
                "prompt": "p",
                "code_lang": bad,
            }
        )
    assert info.value.issues[0].field == "code_lang"


# --- judge ------------------------------------------------------------------------------------


JUDGE = {
    "name": "judged",
    "column_type": "llm_judge",
    "model_alias": "m",
    "prompt": "Judge {{ t }}",
    "scores": [
        {
            "name": "Overall Quality",
            "description": "how good",
            "options": {1: "bad", 2: "ok", 3: "great"},
        },
        {"name": "Tone", "description": "tone", "options": {"Formal": "f", "Casual": "c"}},
    ],
}


def test_judge_scores_take_any_name_and_int_or_str_options(tmp_path: Path) -> None:
    cfg = config({"name": "t", "column_type": "expression", "expr": "x{{ 1 }}"}, JUDGE)
    result = Designer(artifact_dir=tmp_path).create(cfg, 6, "j")
    frame = result.to_pandas()
    for value in frame["judged"]:
        assert set(value) == {"Overall Quality", "Tone"}
        assert value["Overall Quality"]["score"] in (1, 2, 3)
        assert value["Tone"]["score"] in ("Formal", "Casual")
        assert list(value["Tone"]) == ["reasoning", "score"]
    kind = pq.read_table(result.part_paths()[0]).schema.field("judged").type
    assert pa.types.is_struct(kind)
    assert kind.field("Overall Quality").type.field("score").type == pa.int64()


def test_judge_answers_are_normalised_onto_declared_options() -> None:
    cfg = config({"name": "t", "column_type": "expression", "expr": "x"}, JUDGE)
    normalize = normalize_judgement(cfg.column_by_name["judged"])
    out = normalize(
        {
            "Overall Quality": {"reasoning": "r", "score": "3"},
            "Tone": {"reasoning": "r", "score": "formal"},
        }
    )
    assert out["Overall Quality"]["score"] == 3 and out["Tone"]["score"] == "Formal"
    assert (
        normalize({"Overall Quality": {"reasoning": "r", "score": True}})["Overall Quality"][
            "score"
        ]
        is True
    )


@pytest.mark.parametrize(
    "scores",
    [
        [{"name": "", "description": "d", "options": {1: "a"}}],
        [{"name": "s", "description": "d", "options": {True: "a"}}],
        [{"name": "s", "description": "d", "options": {}}],
        [
            {"name": "s", "description": "d", "options": {1: "a"}},
            {"name": "s", "description": "e", "options": {1: "a"}},
        ],
    ],
)
def test_hostile_judge_scores_are_typed_errors(scores: list[Any]) -> None:
    with pytest.raises(ConfigValidationError):
        config({"name": "t", "column_type": "expression", "expr": "x"}, {**JUDGE, "scores": scores})


# --- skip ----------------------------------------------------------------------------------------

SKIP_COLUMNS = [
    {
        "name": "n",
        "column_type": "sampler",
        "sampler_type": "uniform",
        "params": {"low": 0, "high": 10, "integer": True},
    },
    {
        "name": "half",
        "column_type": "expression",
        "expr": "{{ n // 2 }}",
        "dtype": "int",
        "skip": {"when": "{{ n > 5 }}", "value": -1},
    },
    {
        "name": "down",
        "column_type": "expression",
        "expr": "{{ half + 100 }}",
        "dtype": "int",
        "skip_when": "{{ n == 0 }}",
    },
    {
        "name": "tolerant",
        "column_type": "expression",
        "expr": "{{ half }}",
        "propagate_skip": False,
    },
    {"name": "talk", "column_type": "llm_text", "model_alias": "m", "prompt": "About {{ down }}"},
]


@pytest.mark.parametrize("engine", ["async", "sequential"])
def test_skip_writes_the_value_and_propagates_to_dependants(engine: str) -> None:
    result = preview(config(*SKIP_COLUMNS), 40, engine, buffer_size=7)
    rows = [
        dict(zip(result.data, values, strict=True))
        for values in zip(*result.data.values(), strict=True)
    ]
    assert any(r["n"] > 5 for r in rows) and any(r["n"] <= 5 for r in rows)
    for r in rows:
        if r["n"] > 5:  # skipped: the value; dependants skipped unless they opt out
            assert r["half"] == -1 and r["down"] is None and r["talk"] is None
            assert r["tolerant"] == "-1"
        elif r["n"] == 0:
            assert r["half"] == 0 and r["down"] is None and r["talk"] is None
        else:
            assert r["half"] == r["n"] // 2 and r["down"] == r["half"] + 100
            assert isinstance(r["talk"], str) and r["talk"]


def test_skip_config_round_trips_and_the_shorthand_maps_to_it() -> None:
    cfg = config(*SKIP_COLUMNS)
    down = cfg.to_dict()["columns"][2]
    assert down["skip"] == {"when": "{{ n == 0 }}"} and "skip_when" not in down
    assert DatasetConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "column,field",
    [
        ({"skip": {"when": "n > 5"}}, "skip.when"),  # no delimiters: refers to no column
        ({"skip": {"when": "{{ ghost }}"}}, "skip.when"),
        ({"skip": {"when": "{{ half }}"}}, "skip.when"),  # itself
        ({"skip": {"when": "{{ n }}", "value": "x"}, "dtype": "int"}, None),  # value not an int
        ({"skip": {"when": "{{ n }}", "value": [1]}}, "skip.value"),
        ({"skip_when": "{{ n }}", "skip": {"when": "{{ n }}"}}, None),
    ],
)
def test_hostile_skip_configs_are_typed_errors(column: dict[str, Any], field: str | None) -> None:
    base = {"name": "half", "column_type": "expression", "expr": "{{ n }}", **column}
    with pytest.raises(ConfigValidationError) as info:
        config(SKIP_COLUMNS[0], base)
    if field is not None:
        assert any((i.field or "").startswith(field) for i in info.value.issues), info.value.issues


# --- custom ---------------------------------------------------------------------------------------


class Params(BaseModel):
    factor: int = 2


@custom_column_generator(required_columns=["n"], side_effect_columns=["n_label"])
def scaled(row: dict[str, Any], generator_params: Params) -> dict[str, Any]:
    row["scaled"] = row["n"] * generator_params.factor
    row["n_label"] = f"n={row['n']}"
    return row


def doubled_frame(df: pd.DataFrame, generator_params: dict[str, Any]) -> pd.DataFrame:
    df["doubled"] = df["n"] * generator_params["by"]
    return df


async def asks(row: dict[str, Any], models: Any) -> str:
    text, trace = await models["m"].agenerate(f"n is {row['n']}")
    assert trace[-1] == {"role": "assistant", "content": text}
    return str(await models.chat("m", "again")) and text


def test_custom_strategies_params_side_effects_and_models(tmp_path: Path) -> None:
    cfg = config(
        SKIP_COLUMNS[0],
        {
            "name": "scaled",
            "column_type": "custom",
            "generator_function": f"{__name__}:scaled",
            "generator_params": {"factor": 3},
        },
        {
            "name": "doubled",
            "column_type": "custom",
            "function": f"{__name__}:doubled_frame",
            "generation_strategy": "full_column",
            "required_columns": ["n"],
            "generator_params": {"by": 2},
        },
        {
            "name": "label_len",
            "column_type": "expression",
            "expr": "{{ n_label | length }}",
            "dtype": "int",
        },
        {
            "name": "asked",
            "column_type": "custom",
            "generator_function": f"{__name__}:asks",
            "required_columns": ["n"],
            "model_aliases": ["m"],
        },
    )
    assert cfg.output_columns() == ["n", "scaled", "n_label", "doubled", "label_len", "asked"]
    assert cfg.dependencies["label_len"] == ("scaled",)
    async_rows = preview(cfg, 12, buffer_size=5).data
    seq_rows = preview(cfg, 12, "sequential", buffer_size=5).data
    assert async_rows == seq_rows
    for i, n in enumerate(async_rows["n"]):
        assert async_rows["scaled"][i] == 3 * n and async_rows["doubled"][i] == 2 * n
        assert async_rows["n_label"][i] == f"n={n}"
        assert async_rows["label_len"][i] == len(f"n={n}")
        assert isinstance(async_rows["asked"][i], str)
    dumped = cfg.to_dict()["columns"]
    assert dumped[1]["generator_function"] == f"{__name__}:scaled"
    assert dumped[1]["side_effect_columns"] == ["n_label"]  # from the decorator
    assert DatasetConfig.from_dict(cfg.to_dict()).output_columns() == cfg.output_columns()


def missing_side_effect(row: dict[str, Any]) -> dict[str, Any]:
    return {"broken": 1}


def bad_params(row: dict[str, Any], generator_params: Params) -> int:
    return 1


def wrong_length(df: pd.DataFrame) -> list[int]:
    return [1]


def test_custom_contract_violations_stop_the_run_with_the_row() -> None:
    cfg = config(
        SKIP_COLUMNS[0],
        {
            "name": "broken",
            "column_type": "custom",
            "generator_function": f"{__name__}:missing_side_effect",
            "side_effect_columns": ["other"],
        },
    )
    with pytest.raises(CustomColumnError, match="lacks"):
        preview(cfg, 3)
    cfg = config(
        SKIP_COLUMNS[0],
        {
            "name": "w",
            "column_type": "custom",
            "generator_function": f"{__name__}:wrong_length",
            "generation_strategy": "full_column",
            "required_columns": ["n"],
        },
    )
    with pytest.raises(CustomColumnError, match="1 values for 4 rows"):
        preview(cfg, 4)


@pytest.mark.parametrize(
    "column,fragment",
    [
        (
            {"generator_function": "builtins:len", "generation_strategy": "diagonal"},
            "generation_strategy",
        ),
        (
            {"generator_function": f"{__name__}:scaled", "generation_strategy": "full_column"},
            "first parameter",
        ),
        ({"generator_function": f"{__name__}:doubled_frame"}, "first parameter"),
        ({"generator_function": "shutil:copy"}, "not one of"),
        (
            {"generator_function": f"{__name__}:scaled", "side_effect_columns": ["n"]},
            "already a column",
        ),
        (
            {"generator_function": f"{__name__}:scaled", "side_effect_columns": ["bad name"]},
            "valid other column",
        ),
        ({"generator_function": "no_such_module:f"}, "cannot import"),
        (
            {"generator_function": f"{__name__}:bad_params", "generator_params": {"factor": "x"}},
            "generator_params",
        ),
    ],
)
def test_hostile_custom_configs_are_typed_errors(column: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigValidationError) as info:
        cfg = config(SKIP_COLUMNS[0], {"name": "c", "column_type": "custom", **column})
        preview(cfg, 1)
    assert fragment in str(info.value)


# --- nested storage -------------------------------------------------------------------------------


def test_structured_values_are_nested_arrow_and_parts_unify(tmp_path: Path) -> None:
    from rowloom.builder.storage import decode_json_columns, encode_table, read_parts

    a = encode_table(["v"], {"v": [{"a": 1, "b": "x"}, None]})
    b = encode_table(["v"], {"v": [{"a": 2, "c": [1.5]}]})
    mixed = encode_table(["v"], {"v": [{"a": 1}, "text"]})
    assert pa.types.is_struct(a.schema.field("v").type)
    assert mixed.schema.field("v").type == pa.string()
    paths = []
    for i, t in enumerate((a, b)):
        paths.append(tmp_path / f"p{i}.parquet")
        pq.write_table(t, paths[-1])
    merged = read_parts(paths)
    assert merged.column("v").to_pylist() == [
        {"a": 1, "b": "x", "c": None},
        None,
        {"a": 2, "b": None, "c": [1.5]},
    ]
    pq.write_table(mixed, tmp_path / "p2.parquet")
    again = read_parts([*paths, tmp_path / "p2.parquet"])
    assert json.loads(again.schema.metadata[b"rowloom.json_columns"]) == ["v"]
    decoded = decode_json_columns(again)["v"]
    assert decoded[0] == {"a": 1, "b": "x"} and decoded[-1] == "text"
