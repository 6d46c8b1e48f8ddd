"""Simulated answers are valid for the column that asked: JSON for any schema (hypothesis),
code that parses in the requested language and dialect, answers varying per cell."""

from __future__ import annotations

import ast
import json
import random
from typing import Any

import jsonschema
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rowloom.simulation.code import code_language, simulated_code
from rowloom.simulation.responses import SimulatedResponses, generate_json

_names = st.text("abcdefghij_", min_size=1, max_size=8)


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    bounded = st.tuples(st.integers(-50, 50), st.integers(0, 100)).map(
        lambda t: {"type": "integer", "minimum": t[0], "maximum": t[0] + t[1]}
    )
    number = st.tuples(st.floats(-1e3, 1e3), st.floats(0.5, 1e3)).map(
        lambda t: {"type": "number", "minimum": t[0], "exclusiveMaximum": t[0] + t[1]}
    )
    text = st.tuples(st.integers(0, 10), st.integers(0, 30)).map(
        lambda t: {"type": "string", "minLength": t[0], "maxLength": t[0] + t[1]}
    )
    formatted = st.sampled_from(["date", "date-time", "email", "uuid", "uri"]).map(
        lambda f: {"type": "string", "format": f}
    )
    enum = st.lists(st.one_of(_names, st.integers()), min_size=1, max_size=4, unique=True).map(
        lambda v: {"enum": v}
    )
    return st.one_of(
        bounded,
        number,
        text,
        formatted,
        enum,
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.just({"type": ["string", "null"]}),
    )


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    obj = st.dictionaries(_names, children, min_size=1, max_size=4).flatmap(
        lambda props: st.lists(st.sampled_from(sorted(props)), unique=True).map(
            lambda required: {
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": False,
            }
        )
    )
    arr = st.tuples(children, st.integers(0, 3), st.integers(0, 3)).map(
        lambda t: {"type": "array", "items": t[0], "minItems": t[1], "maxItems": t[1] + t[2]}
    )
    any_of = st.lists(children, min_size=1, max_size=3).map(lambda opts: {"anyOf": opts})
    return st.one_of(obj, arr, any_of)


schemas = st.recursive(_leaf(), _extend, max_leaves=12)


@st.composite
def rooted(draw: st.DrawFn) -> dict[str, Any]:
    """An object schema whose properties may go through `$defs` and `$ref`."""
    defs = draw(st.dictionaries(_names, schemas, max_size=3))
    props = draw(st.dictionaries(_names, schemas, min_size=1, max_size=4))
    for name in list(props)[: len(defs)]:
        props[name] = {"$ref": f"#/$defs/{sorted(defs)[hash(name) % len(defs)]}"}
    return {
        "type": "object",
        "$defs": defs,
        "properties": props,
        "required": sorted(props),
        "additionalProperties": False,
    }


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=rooted(), seed=st.integers(0, 2**32))
def test_json_is_valid_for_any_schema(schema: dict[str, Any], seed: int) -> None:
    value = generate_json(schema, random.Random(seed))
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())


def test_structured_answers_parse_and_validate_through_response_format() -> None:
    schema = {
        "type": "object",
        "$defs": {"Message": {"type": "object", "properties": {
            "role": {"enum": ["user", "assistant"]}, "content": {"type": "string"}},
            "required": ["role", "content"]}},
        "properties": {"conversation": {"type": "array", "items": {"$ref": "#/$defs/Message"},
                                        "minItems": 2}},
        "required": ["conversation"],
    }  # fmt: skip
    fmt = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    for row in range(20):
        text = (
            SimulatedResponses()
            .chat(
                "m",
                [{"role": "user", "content": "talk"}],
                response_format=fmt,
                sample_key=f"c:{row}",
            )
            .text
        )
        jsonschema.validate(json.loads(text), schema)


def _fenced(text: str, tag: str) -> str:
    head, _, rest = text.partition(f"```{tag}\n")
    assert head == "" and rest.endswith("\n```"), text
    return rest[: -len("\n```")]


def _ask(prompt: str, key: str = "x:0", system: str | None = None) -> str:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return SimulatedResponses(seed=4).chat("m", messages, sample_key=key).text


@pytest.mark.parametrize("row", range(12))
def test_python_answers_parse(row: int) -> None:
    text = _ask("Write a function.\nReturn only the code in one ```python block.", f"c:{row}")
    ast.parse(_fenced(text, "python"))


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "tsql", "bigquery", "ansi"])
def test_sql_answers_parse_in_the_requested_dialect(dialect: str) -> None:
    read = {"ansi": None}.get(dialect, dialect)
    for row in range(8):
        prompt = f"Query it.\nReturn only the code in one ```sql block (dialect: sql:{dialect})."
        code = _fenced(_ask(prompt, f"q:{row}"), "sql")
        (statement,) = sqlglot.parse(code, read=read)
        assert statement is not None


def test_code_language_is_read_like_a_model_reads_it() -> None:
    assert code_language([{"role": "user", "content": "in one ```sql block (dialect: sql:tsql)"}])
    assert code_language([{"role": "user", "content": "plain text"}]) is None
    system = [
        {"role": "system", "content": "Answer in ```python"},
        {"role": "user", "content": "x"},
    ]
    assert code_language(system) == "python"
    assert code_language([{"role": "user", "content": "```sql"}]) == "sql:ansi"
    for lang in ("javascript", "go", "rust", "java", "bash"):
        assert simulated_code(lang, random.Random(0)).startswith(f"```{lang}\n")


def test_answers_vary_per_cell_and_repeat_per_cell() -> None:
    responses = SimulatedResponses(seed=1)
    msgs = [{"role": "user", "content": "Name a product."}]
    by_row = {responses.chat("m", msgs, sample_key=f"name:{i}").text for i in range(10)}
    assert len(by_row) >= 9
    again = responses.chat("m", msgs, sample_key="name:3").text
    assert again == SimulatedResponses(seed=1).chat("m", msgs, sample_key="name:3").text


def test_judge_answers_pick_a_listed_option() -> None:
    schema = {
        "type": "object",
        "properties": {
            "SQL Correctness": {
                "type": "object",
                "properties": {"score": {"enum": ["0", "1", "2"]}, "reasoning": {"type": "string"}},
                "required": ["score", "reasoning"],
            }
        },
        "required": ["SQL Correctness"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "j", "schema": schema}}
    for row in range(10):
        answer = json.loads(
            SimulatedResponses()
            .chat(
                "m",
                [{"role": "user", "content": "judge"}],
                response_format=fmt,
                sample_key=f"j:{row}",
            )
            .text
        )
        assert answer["SQL Correctness"]["score"] in {"0", "1", "2"}
