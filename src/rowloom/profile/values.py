"""Profilers for values whose type is only known from the data: numbers, booleans, short
strings, lists and structs (the fields of structured outputs, person samples, seed columns).

`ValueProfiler` picks its behaviour from the arrow type of the first non-empty batch and
accumulates every later batch the same way; a struct becomes one `ValueProfiler` per field.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rowloom.profile.stats import ValueCounter, concat_numeric, histogram, summary, to_numpy

MAX_DEPTH = 3
# string values longer than this on average are profiled as text (lengths), not counted
SHORT_STRING_CHARS = 40
MAX_DISTINCT_COUNTED = 10_000


class ValueProfiler:
    """One value (column or struct field) accumulated over batches."""

    def __init__(self, depth: int = 0) -> None:
        self._depth = depth
        self._kind: str | None = None
        self._rows = 0
        self._nulls = 0
        self._numbers: list[np.ndarray] = []
        self._counter = ValueCounter()
        self._lengths: list[np.ndarray] = []
        self._fields: dict[str, ValueProfiler] = {}
        self._is_int = True

    def add(self, array: pa.Array) -> None:
        """Accumulate one batch."""
        self._rows += len(array)
        self._nulls += array.null_count
        if self._kind is None and len(array) > array.null_count:
            self._kind = _kind_of(array)
        if self._kind == "number":
            values = to_numpy(array)
            self._is_int &= pa.types.is_integer(array.type) or pa.types.is_boolean(array.type)
            self._numbers.append(values)
        elif self._kind == "category":
            self._counter.add(_as_text(array))
            self._lengths.append(_lengths(array))  # kept in case it turns out to be text
            if len(self._counter.counts) > MAX_DISTINCT_COUNTED:
                self._kind = "text"
        elif self._kind == "text":
            self._lengths.append(_lengths(array))
        elif self._kind == "list":
            self._lengths.append(pc.list_value_length(pc.drop_null(array)).to_numpy())
        elif self._kind == "struct":
            self._add_struct(array)

    def _add_struct(self, array: pa.StructArray) -> None:
        for i in range(array.type.num_fields):
            name = array.type.field(i).name
            child = pc.struct_field(array, [i])
            self._fields.setdefault(name, ValueProfiler(self._depth + 1)).add(child)

    @property
    def nulls(self) -> int:
        """Null values seen (a struct field counts its parent's null rows too)."""
        return self._nulls

    @property
    def fields(self) -> dict[str, ValueProfiler]:
        """Per-field profilers of a struct value."""
        return self._fields

    def as_json(self) -> dict[str, Any]:
        """The value's profile: its kind and the statistics that fit it."""
        out: dict[str, Any] = {"kind": self._kind or "empty", "nulls": self._nulls}
        if self._kind == "number":
            values = concat_numeric(self._numbers)
            if self._is_int:
                values = values.astype(np.int64)
            out.update(summary(values), histogram=histogram(values))
        elif self._kind == "category":
            out.update(self._counter.as_json())
        elif self._kind == "text":
            out["length"] = summary(concat_numeric(self._lengths))
            out["distinct_at_least"] = len(self._counter.counts)
        elif self._kind == "list":
            out["length"] = summary(concat_numeric(self._lengths))
        elif self._kind == "struct" and self._depth < MAX_DEPTH:
            present = self._rows - self._nulls
            out["fields"] = {
                name: {"coverage": _ratio(present - p.nulls, self._rows), **p.as_json()}
                for name, p in self._fields.items()
            }
        return out


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _kind_of(array: pa.Array) -> str:
    t = array.type
    if pa.types.is_boolean(t):
        return "category"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t):
        return "number"
    if pa.types.is_struct(t):
        return "struct"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "list"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        mean = pc.mean(pc.utf8_length(pc.drop_null(array))).as_py() or 0
        return "category" if mean <= SHORT_STRING_CHARS else "text"
    return "text"


def _as_text(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type) or pa.types.is_boolean(array.type):
        return array
    return pc.cast(array, pa.string())


def _lengths(array: pa.Array) -> np.ndarray:
    values = pc.drop_null(array)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    return np.asarray(pc.utf8_length(values).to_numpy(zero_copy_only=False))


def as_struct(array: pa.Array) -> pa.Array:
    """A structured column's values as an arrow struct array.

    Runs written before nested storage keep dicts as JSON text; those are parsed and
    converted (arrow infers one struct type for the batch). Anything else is returned as is.
    """
    if pa.types.is_struct(array.type):
        return array
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return array
    decoded = [None if v is None else json.loads(v) for v in array.to_pylist()]
    try:
        return pa.array(decoded)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else json.dumps(v) for v in decoded], pa.string())
