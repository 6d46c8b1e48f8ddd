"""Simulated response content: deterministic, schema-valid, bounded, unit-norm vectors."""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import uuid
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from rowloom.simulation.responses import SimulatedResponses, generate_json

MESSAGES = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Rivers?"})


def _json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}


# ------------------------------------------------------------------------- schema corpus


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str = Field(min_length=3, max_length=12)
    zip_code: Annotated[int, Field(ge=10_000, lt=99_999)]


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=1, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Person(BaseModel):
    name: str
    age: int = Field(gt=0, le=120)
    score: float = Field(ge=0, lt=1, multiple_of=0.05)
    color: Color
    home: Address
    previous: list[Address] = Field(min_length=1, max_length=3)
    nickname: str | None = None
    born: datetime.date
    seen_at: datetime.datetime
    id: uuid.UUID
    pet: Cat | Dog = Field(discriminator="kind")
    tags: set[str]
    pair: tuple[int, str]
    counts: dict[str, int]
    grade: Literal["A", "B", "C"]


class Tree(BaseModel):
    value: int
    children: list[Tree] = []


class Judgement(BaseModel):
    """A judge-style rubric answer, as an `llm_judge` column asks for."""

    helpfulness: Literal["1", "2", "3", "4", "5"]
    correctness: Literal["correct", "partially correct", "incorrect"]
    reasoning: str


HAND_WRITTEN: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    {
        "type": "object",
        "properties": {
            "label": {"enum": ["yes", "no", "maybe"]},
            "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        },
        "required": ["label", "confidence"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 2, "maxItems": 4},
    {"type": "array", "items": {"enum": [1, 2, 3]}, "uniqueItems": True, "minItems": 3},
    {"type": ["string", "null"], "minLength": 5, "maxLength": 5},
    {"type": "integer", "minimum": -7, "maximum": -3, "multipleOf": 2},
    {"type": "integer", "exclusiveMinimum": 2.5, "exclusiveMaximum": 4.5},
    {"type": "number", "minimum": 1.5, "maximum": 1.5},
    {"const": {"fixed": True}},
    {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
    {"oneOf": [{"type": "integer"}, {"type": "number", "multipleOf": 0.5}, {"type": "string"}]},
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"$ref": "#/definitions/B"},
        ],
        "definitions": {
            "B": {"type": "object", "properties": {"b": {"type": "boolean"}}, "required": ["b"]}
        },
    },
    {
        "type": "object",
        "additionalProperties": {"type": "string", "format": "date"},
        "minProperties": 2,
    },
    {"type": "object", "properties": {"s": {"type": "string", "format": "date-time"}}},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False},
    {"type": "string", "format": "uuid"},
    {},
]

PYDANTIC_MODELS: list[type[BaseModel]] = [Person, Tree, Judgement, Address]
SCHEMAS = HAND_WRITTEN + [m.model_json_schema() for m in PYDANTIC_MODELS]


def _validate(value: Any, schema: dict[str, Any]) -> None:
    cls = jsonschema.validators.validator_for(schema)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: str(s.get("title", s.get("type", "x"))))
@given(seed=st.integers(min_value=0, max_value=2**64))
@settings(max_examples=40, deadline=None)
def test_generated_json_is_valid_for_the_schema(schema: dict[str, Any], seed: int) -> None:
    _validate(generate_json(schema, random.Random(seed)), schema)


@pytest.mark.parametrize("model", PYDANTIC_MODELS, ids=lambda m: m.__name__)
@given(seed=st.integers(min_value=0, max_value=2**32))
@settings(max_examples=40, deadline=None)
def test_pydantic_models_accept_the_generated_json(model: type[BaseModel], seed: int) -> None:
    model.model_validate(generate_json(model.model_json_schema(), random.Random(seed)))


def test_judge_enum_answers_cover_the_options_over_many_prompts() -> None:
    responses = SimulatedResponses(seed=1)
    fmt = _json_schema_format(Judgement.model_json_schema())
    seen = set()
    for i in range(60):
        text = responses.chat(
            "judge", [{"role": "user", "content": f"row {i}"}], response_format=fmt
        ).text
        seen.add(Judgement.model_validate_json(text).correctness)
    assert seen == {"correct", "partially correct", "incorrect"}


def test_json_object_without_schema_is_a_json_object() -> None:
    text = SimulatedResponses().chat("m", MESSAGES, response_format={"type": "json_object"}).text
    assert isinstance(json.loads(text), dict)


def test_llama_cpp_style_json_object_with_schema_is_honoured() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_object", "schema": schema}
    _validate(
        json.loads(SimulatedResponses().chat("m", MESSAGES, response_format=fmt).text), schema
    )


# ------------------------------------------------------------------------- determinism


def test_same_inputs_give_same_outputs_and_inputs_matter() -> None:
    fmt = _json_schema_format(Person.model_json_schema())
    a, b = SimulatedResponses(seed=5), SimulatedResponses(seed=5)
    assert a.chat("m", MESSAGES).text == b.chat("m", MESSAGES).text
    assert a.chat("m", MESSAGES, response_format=fmt) == b.chat("m", MESSAGES, response_format=fmt)
    assert a.embed("e", ["x", "y"]) == b.embed("e", ["x", "y"])
    other_messages = (*MESSAGES[:-1], {"role": "user", "content": "Volcanoes?"})
    assert a.chat("m", MESSAGES).text != a.chat("m", other_messages).text
    assert a.chat("m", MESSAGES).text != a.chat("other-model", MESSAGES).text
    assert a.chat("m", MESSAGES).text != SimulatedResponses(seed=6).chat("m", MESSAGES).text


_FINGERPRINT_CODE = """
import hashlib, json
from rowloom.simulation.responses import SimulatedResponses
r = SimulatedResponses(seed=11, embedding_dimensions=8)
messages = [{"role": "user", "content": "Describe the Danube."}]
schema = {"type": "object", "properties": {"x": {"type": "number"}, "t": {"enum": ["a", "b"]}}}
fmt = {"type": "json_schema", "json_schema": {"schema": schema}}
parts = [r.chat("m", messages).text, r.chat("m", messages, response_format=fmt).text,
         json.dumps(r.embed("e", ["one", "two"]))]
print(hashlib.sha256("|".join(parts).encode()).hexdigest())
"""


def test_outputs_are_identical_across_processes() -> None:
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT_CODE],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )
        digests.add(result.stdout.strip())
    local: dict[str, Any] = {}
    exec_code = _FINGERPRINT_CODE.replace("print(", "out = (")
    exec(exec_code, local)
    digests.add(local["out"])
    assert len(digests) == 1


# ------------------------------------------------------------------------- chat text


@given(max_tokens=st.integers(min_value=1, max_value=80), content=st.text(max_size=200))
@settings(max_examples=60, deadline=None)
def test_chat_text_is_bounded_by_max_tokens(max_tokens: int, content: str) -> None:
    answer = SimulatedResponses().chat(
        "m", [{"role": "user", "content": content}], max_tokens=max_tokens
    )
    assert 1 <= answer.completion_tokens <= max_tokens
    assert len(answer.text.split()) == answer.completion_tokens
    assert answer.prompt_tokens >= 1


# ------------------------------------------------------------------------- invalid knob


def test_invalid_json_rate_makes_roughly_that_fraction_invalid() -> None:
    schema = Address.model_json_schema()
    fmt = _json_schema_format(schema)
    responses = SimulatedResponses(seed=2, invalid_json_rate=0.3)
    invalid = 0
    for i in range(400):
        text = responses.chat("m", [{"role": "user", "content": f"{i}"}], response_format=fmt).text
        try:
            _validate(json.loads(text), schema)
        except (ValueError, jsonschema.ValidationError):
            invalid += 1
    assert 0.2 <= invalid / 400 <= 0.4


def test_invalid_json_rate_zero_never_breaks_and_one_always_does() -> None:
    schema = Address.model_json_schema()
    fmt = _json_schema_format(schema)
    never, always = SimulatedResponses(), SimulatedResponses(invalid_json_rate=1.0)
    for i in range(50):
        messages = [{"role": "user", "content": f"{i}"}]
        _validate(json.loads(never.chat("m", messages, response_format=fmt).text), schema)
        bad = always.chat("m", messages, response_format=fmt).text
        with pytest.raises((ValueError, jsonschema.ValidationError)):
            _validate(json.loads(bad), schema)


# ------------------------------------------------------------------------- embeddings


@given(texts=st.lists(st.text(max_size=50), min_size=1, max_size=5))
@settings(max_examples=40, deadline=None)
def test_embeddings_have_the_configured_dimension_and_unit_norm(texts: list[str]) -> None:
    vectors = SimulatedResponses(embedding_dimensions=24).embed("e", texts)
    assert len(vectors) == len(texts)
    for vector in vectors:
        assert len(vector) == 24
        assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)


def test_requested_dimensions_override_the_default_and_texts_differ() -> None:
    responses = SimulatedResponses(embedding_dimensions=16)
    a, b = responses.embed("e", ["alpha", "beta"], dimensions=3)
    assert len(a) == len(b) == 3
    assert a != b
    assert responses.embed("e", ["alpha"])[0] != responses.embed("e2", ["alpha"])[0]


def test_bad_knobs_are_rejected() -> None:
    with pytest.raises(ValueError):
        SimulatedResponses(invalid_json_rate=1.5)
    with pytest.raises(ValueError):
        SimulatedResponses().embed("e", ["x"], dimensions=0)


def test_fingerprint_helper_is_stable() -> None:
    # Guards the digest scheme itself: a silent change would break cross-run reproducibility.
    from rowloom.simulation.responses import request_digest

    value = request_digest(0, "m", ["user", "hi"])
    expected = hashlib.blake2b(b"0\x00m\x00user\x00hi", digest_size=16).digest()
    assert value == int.from_bytes(expected, "big")
