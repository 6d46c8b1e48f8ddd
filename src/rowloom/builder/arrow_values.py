"""Cell values as Arrow arrays: nested values become structs and lists, not JSON text.

A column whose output shape is declared (a JSON-schema subset: objects with properties, arrays
with items, scalars, nullable unions) gets the Arrow type of that shape, so every part of a run
has the same schema. A value outside the shape (an extra field, another type) falls back to the
type Arrow infers from the values, and values Arrow cannot hold in one type (mixed kinds,
non-string keys, empty objects) to JSON text, listed in the schema metadata for decoding.
Nothing is dropped: a value is written whole or the column falls back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import methodcaller
from typing import Any

import pyarrow as pa

_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}
_MAX_DEPTH = 12
_NONE = type(None)


def arrow_type_for_shape(shape: Mapping[str, Any] | None) -> pa.DataType | None:
    """The Arrow type of values of a JSON-schema shape; None when it has no fixed type."""
    if not shape:
        return None
    return _shape_type(shape, shape, 0)


def _shape_type(shape: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    if depth > _MAX_DEPTH or not isinstance(shape, Mapping):
        return None
    ref = shape.get("$ref")
    if isinstance(ref, str):
        target = _resolve_ref(ref, root)
        return None if target is None else _shape_type(target, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        options = shape.get(key)
        if isinstance(options, list):
            kept = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return _shape_type(kept[0], root, depth + 1) if len(kept) == 1 else None
    kind = shape.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind is None and "enum" in shape:
        enum_kinds = frozenset(type(v) for v in shape["enum"] if v is not None)
        kind = {frozenset({str}): "string", frozenset({int}): "integer"}.get(enum_kinds)
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        items = shape.get("items")
        item = _shape_type(items, root, depth + 1) if isinstance(items, Mapping) else None
        return pa.list_(item) if item is not None else None
    if kind == "object":
        props = shape.get("properties")
        if not isinstance(props, Mapping) or not props:
            return None
        fields = []
        for name, sub in props.items():
            sub_type = _shape_type(sub, root, depth + 1)
            if sub_type is None:
                return None
            fields.append(pa.field(str(name), sub_type))
        return pa.struct(fields)
    return None


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def encode_column(values: Sequence[Any], declared: pa.DataType | None) -> tuple[pa.Array, bool]:
    """An Arrow array holding `values` whole, and whether it is JSON text."""
    col = list(values)
    present = [v for v in col if v is not None]
    if declared is not None and _all_fit(present, declared):
        try:
            return pa.array(col, type=declared), False
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    if present and all(_is_vector(v) for v in present):
        return pa.array(col, type=pa.list_(pa.float64())), False
    try:
        array = pa.array(col)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError):
        return json_array(col), True
    if _has_empty_struct(array.type) or _lossy(present, array.type):
        return json_array(col), True
    return array, False


def _is_vector(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in v
    )


def _all_fit(values: Sequence[Any], kind: pa.DataType) -> bool:
    """True when every value converts to `kind` without losing anything (no extra keys, no
    bool-as-int, integral numbers only for integers). Checked column by column (a struct's
    fields and a list's items each as one column) and by the set of value types, not value by
    value."""
    types = set(map(type, values))
    types.discard(_NONE)
    if not types:
        return True
    if pa.types.is_struct(kind):
        if not all(issubclass(t, Mapping) for t in types):
            return False
        present = [v for v in values if v is not None]
        fields = [kind.field(i) for i in range(kind.num_fields)]
        names = frozenset(f.name for f in fields)
        if not all(map(names.issuperset, present)):  # an extra (or non-string) key
            return False
        return all(
            _all_fit(list(map(methodcaller("get", f.name), present)), f.type) for f in fields
        )
    if pa.types.is_list(kind):
        if not all(issubclass(t, list) for t in types):
            return False
        items = list(chain.from_iterable(v for v in values if v is not None))
        return _all_fit(items, kind.value_type)
    if pa.types.is_boolean(kind):
        return all(issubclass(t, bool) for t in types)
    if pa.types.is_integer(kind):
        if not all(issubclass(t, int) and not issubclass(t, bool) for t in types):
            return False
        ints: list[int] = [v for v in values if v is not None]
        return min(ints) > -(2**63) and max(ints) < 2**63
    if pa.types.is_floating(kind):
        return all(issubclass(t, int | float) and not issubclass(t, bool) for t in types)
    if pa.types.is_string(kind):
        return all(issubclass(t, str) for t in types)
    return False


def _has_empty_struct(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return kind.num_fields == 0 or any(
            _has_empty_struct(kind.field(i).type) for i in range(kind.num_fields)
        )
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_empty_struct(kind.value_type)
    return False


def _lossy(present: Sequence[Any], kind: pa.DataType) -> bool:
    """Arrow's inference that would change values: tuples/sets, non-str keys, or a struct
    whose fields Arrow merged from dicts of different kinds of values."""
    if not pa.types.is_struct(kind) and not pa.types.is_list(kind):
        return False
    return not _all_fit(present, kind)


def json_array(col: Sequence[Any]) -> pa.Array:
    """Values as JSON text (None stays null)."""
    return pa.array(
        [None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True) for v in col],
        type=pa.string(),
    )
