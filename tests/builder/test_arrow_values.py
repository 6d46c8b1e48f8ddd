"""Declared output shapes become Arrow types only when every value fits them whole."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from rowloom.builder.arrow_values import arrow_type_for_shape, encode_column

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "lat": {"type": "number"}},
        },
        "ok": {"type": "boolean"},
    },
}
DECLARED = arrow_type_for_shape(PERSON)
GOOD = {"name": "a", "age": 3, "tags": ["x"], "address": {"city": "c", "lat": 1}, "ok": True}


@pytest.mark.parametrize(
    "values",
    [
        [GOOD, None, {"name": "b"}],  # missing fields and null rows are nulls
        [{**GOOD, "tags": []}, {**GOOD, "address": None, "tags": None}],
    ],
)
def test_values_within_the_shape_get_the_declared_type(values: list[Any]) -> None:
    array, is_json = encode_column(values, DECLARED)
    assert not is_json and array.type == DECLARED
    assert array.to_pylist()[0]["name"] == values[0]["name"]


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD, "extra": 1},  # an extra key would be dropped
        {**GOOD, "age": True},  # bool is not an integer
        {**GOOD, "age": 2.5},  # not integral
        {**GOOD, "age": 2**63},  # overflows int64
        {**GOOD, "tags": "x"},  # not a list
        {**GOOD, "tags": [1]},  # list item of another kind
        {**GOOD, "address": {"city": "c", "lat": "north"}},
        {**GOOD, "ok": 1},  # int is not a bool
        {1: "non-string key"},
        "not an object",
    ],
)
def test_a_value_outside_the_shape_is_kept_whole_by_falling_back(bad: Any) -> None:
    array, is_json = encode_column([GOOD, bad], DECLARED)
    assert array.type != DECLARED
    decoded = array.to_pylist()
    if is_json:
        import json

        decoded = [json.loads(v) for v in decoded]
        bad = json.loads(json.dumps(bad))
    assert decoded[1] == bad


def test_scalar_columns_check_their_kind() -> None:
    assert encode_column(["a", None, "b"], pa.string())[0].type == pa.string()
    assert encode_column([1, 2.0], pa.float64())[0].type == pa.float64()
    assert encode_column([1, True], pa.int64())[0].type != pa.int64()
