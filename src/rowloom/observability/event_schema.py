"""The Arrow form of one event stream: its schema, and buffered columns -> record batch.

Every field of the JSON line has a home (`observability.eventread` rebuilds the line exactly):

- `event_kind`, `sequence`, `captured_at_monotonic`, the four id fields of the stream and
  `reason`: one typed column each (kinds, keys and reasons dictionary-encoded);
- `captured_correlation`: a `RuntimeCorrelation` (or its JSON object) as seven typed columns
  `correlation_<field>` (`correlation_form` 1); any other mapping as JSON text in
  `correlation_json` (form 2; its task_execution_id, row_group and task_column are also put
  in the typed columns, for readers); no correlation is form 0 (`{}`);
- `snapshot`: a request pressure snapshot (a class with `snapshot_kind = "request_pressure"`)
  as typed columns `snapshot_<field>` (`snapshot_form` 1); anything else as JSON text in
  `snapshot_json` (form 2; its current_limit, static_cap, effective_max and
  blocked_until_monotonic also typed); none is form 0;
- `diagnostics`: JSON text (null = `{}`), plus `diagnostics_task_execution_id`, a
  `task_execution_id` handed apart by the emitter that belongs in the diagnostics (last key).

Values are JSON-normalised here, at conversion, not at emission.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any, Final

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from rowloom.observability.correlation import CorrelationJson, RuntimeCorrelation
from rowloom.observability.events import (
    REQUEST_EVENT_KINDS,
    SCHEDULER_EVENT_KINDS,
    key_str,
    to_json_value,
)

STREAMS: Final[tuple[str, str]] = ("scheduler", "requests")
ID_FIELDS: Final[dict[str, tuple[str, str, str, str]]] = {
    "scheduler": ("task_id", "task_execution_id", "task_lease_id", "scheduler_resource_key"),
    "requests": (
        "request_attempt_id",
        "request_lease_id",
        "request_resource_key",
        "request_group_key",
    ),
}
KEY_FIELDS: Final = frozenset(
    {"scheduler_resource_key", "request_resource_key", "request_group_key"}
)
FORMAT_VERSION: Final = "1"
KINDS: Final[dict[str, tuple[str, ...]]] = {
    "scheduler": SCHEDULER_EVENT_KINDS,
    "requests": REQUEST_EVENT_KINDS,
}

BUFFER_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    stream: (
        "event_kind",
        "captured_at_monotonic",
        "captured_correlation",
        *ID_FIELDS[stream],
        "reason",
        "snapshot",
        "diagnostics",
        *(("diagnostics_task_execution_id",) if stream == "requests" else ()),
    )
    for stream in STREAMS
}
"""What an emitter appends per event, one list each: the kind as its index in the stream's
kinds (`KINDS`) or as a string, no sequence (the row's position gives it), and the
diagnostics' task execution id on the request stream only."""

_DICT = pa.dictionary(pa.int32(), pa.string())
_STR = pa.string()
_INT = pa.int64()
_FLOAT = pa.float64()

CORRELATION_FIELDS: Final[tuple[tuple[str, pa.DataType], ...]] = (
    ("run_id", _DICT),
    ("row_group", _INT),
    ("task_column", _DICT),
    ("task_type", _DICT),
    ("scheduling_group_kind", _DICT),
    ("scheduling_group_identity_hash", _DICT),
    ("task_execution_id", _STR),
)
"""`RuntimeCorrelation.as_json()` fields, in its order."""

PRESSURE_FIELDS: Final[tuple[tuple[str, pa.DataType], ...]] = (
    ("resource", _DICT),
    ("limit_rule", _DICT),
    ("captured_at", _FLOAT),
    ("sequence", _INT),
    ("in_flight", _INT),
    ("current_limit", _INT),
    ("effective_max", _INT),
    ("static_cap", _INT),
    ("provider_model_in_flight", _INT),
    ("waiters", _INT),
    ("blocked_until_monotonic", _FLOAT),
    ("cooldown_until_monotonic", _FLOAT),
    ("paced_until_monotonic", _FLOAT),
    ("cooldown_remaining_seconds", _FLOAT),
    ("rate_limit_ceiling", _INT),
    ("consecutive_rate_limits", _INT),
    ("rate_limited_total", _INT),
    ("provider_failures_total", _INT),
    ("in_startup_ramp", pa.bool_()),
    ("last_outcome", _DICT),
    ("provider_in_flight", _INT),
    ("provider_limit", _INT),
)
"""A request pressure snapshot's `as_json()` fields, in its order (`resource` as its key)."""

SNAPSHOT_VIEW_FIELDS: Final[tuple[str, ...]] = (
    "current_limit",
    "static_cap",
    "effective_max",
    "blocked_until_monotonic",
)
"""Snapshot fields typed for every snapshot that has them (pressure or JSON)."""

_CORRELATION_ATTRS = attrgetter(*(name for name, _ in CORRELATION_FIELDS))
_PRESSURE_ATTRS = attrgetter(*(name for name, _ in PRESSURE_FIELDS))


def schema(stream: str) -> pa.Schema:
    """The Arrow schema of one stream's record batches."""
    fields = [
        pa.field("event_kind", _DICT, nullable=False),
        pa.field("sequence", _INT),
        pa.field("captured_at_monotonic", _FLOAT, nullable=False),
        pa.field("correlation_form", pa.int8(), nullable=False),
        *(pa.field(f"correlation_{name}", t) for name, t in CORRELATION_FIELDS),
        pa.field("correlation_json", _STR),
        *(pa.field(name, _DICT if name in KEY_FIELDS else _STR) for name in ID_FIELDS[stream]),
        pa.field("reason", _DICT),
        pa.field("snapshot_form", pa.int8(), nullable=False),
        *(pa.field(f"snapshot_{name}", t) for name, t in PRESSURE_FIELDS),
        pa.field("snapshot_json", _STR),
        pa.field("diagnostics", _STR),
        pa.field("diagnostics_task_execution_id", _STR),
    ]
    return pa.schema(fields, metadata={"rowloom.events": FORMAT_VERSION, "stream": stream})


_SCHEMAS: Final = {s: schema(s) for s in STREAMS}

# --- JSON ---------------------------------------------------------------------------------------

_OPTS: Final = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(value: Any) -> bytes:
    """`value` as compact JSON, exactly as `to_json_value(value)` would serialise."""
    try:
        return orjson.dumps(value, default=to_json_value, option=_OPTS)
    except TypeError:  # non-str keys, ints beyond 64 bits
        return json.dumps(to_json_value(value), separators=(",", ":"), allow_nan=False).encode()


# --- columns -> record batch --------------------------------------------------------------------
#
# Buffered values are converted per distinct object (by identity: a buffer holds every object
# it names, so no two of them share an id), then spread to the rows with one `take`: the
# Python work is per correlation, snapshot or diagnostics object, not per event.


def columns_to_batch(
    stream: str, columns: Sequence[Sequence[Any]], sequences: pa.Array | Sequence[int | None]
) -> pa.RecordBatch:
    """One record batch of buffered columns (`BUFFER_FIELDS` order) and their sequences."""
    sch = _SCHEMAS[stream]
    n = len(columns[0]) if columns else 0
    if n == 0:
        return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in sch], schema=sch)
    kinds, times, corrs, a, b, c, d, reasons, snaps, diags, *rest = columns
    arrays: list[pa.Array] = [
        _kinds(stream, kinds),
        sequences if isinstance(sequences, pa.Array) else pa.array(sequences, _INT),
        pa.array(times, _FLOAT),
        *_correlations(corrs),
    ]
    for name, col in zip(ID_FIELDS[stream], (a, b, c, d), strict=True):
        arrays.append(keys(col) if name in KEY_FIELDS else strings(col))
    arrays.append(keys(reasons))
    arrays += _snapshots(snaps)
    arrays.append(_diagnostics(diags))
    arrays.append(strings(rest[0]) if rest else pa.nulls(n, _STR))
    return pa.RecordBatch.from_arrays(arrays, schema=sch)


@functools.cache
def _kind_dictionary(stream: str) -> pa.Array:
    """`KINDS[stream]` as an Arrow array (built on first use: building an array at import would
    import pandas into the CLI's start-up)."""
    return pa.array(KINDS[stream], _STR)


def _kinds(stream: str, kinds: Sequence[Any]) -> pa.Array:
    """Kinds given as indices into `KINDS[stream]` (an emitter's) or as strings."""
    if type(kinds[0]) is int:
        indices = pa.array(kinds, pa.int32())
        return pa.DictionaryArray.from_arrays(indices, _kind_dictionary(stream))
    return pa.array(kinds, _STR).dictionary_encode()


def distinct(values: Sequence[Any]) -> tuple[list[Any], pa.Array]:
    """The distinct objects of `values` (by identity) and, per row, its object's index."""
    ids = np.fromiter(map(id, values), np.uint64, len(values))
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    return [values[i] for i in first.tolist()], pa.array(inverse.astype(np.int32, copy=False))


def strings(col: Sequence[Any]) -> pa.Array:
    """A string column of str/None values (other values as their key string)."""
    try:
        return pa.array(col, _STR)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return keys(col).cast(_STR)


def keys(col: Sequence[Any]) -> pa.Array:
    """Dictionary-encoded key strings of str/enum/key objects (converted once per object)."""
    try:
        return pa.array(col, _STR).dictionary_encode()
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    objects, rows = distinct(col)
    names: dict[str, int] = {}
    slots = [None if k is None else names.setdefault(str(key_str(k)), len(names)) for k in objects]
    indices = pa.array(slots, pa.int32()).take(rows)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(names), _STR))


def _dictionary(values: Sequence[Any]) -> pa.Array:
    """Strings dictionary-encoded with nulls as null indices (never a null dictionary value)."""
    return pa.array(values, _STR).dictionary_encode()


def _typed(values: Sequence[Any], t: pa.DataType) -> pa.Array:
    return _dictionary(values) if t == _DICT else pa.array(values, t)


def _correlations(corrs: Sequence[Any]) -> list[pa.Array]:
    """`correlation_form`, the seven typed fields and `correlation_json`."""
    objects, rows = distinct(corrs)
    runtime = [o.correlation if type(o) is CorrelationJson else o for o in objects]
    others = [i for i, o in enumerate(runtime) if type(o) is not RuntimeCorrelation]
    forms = [1] * len(objects)
    texts: list[bytes | None] = [None] * len(objects)
    for i in others:
        runtime[i] = _NO_CORRELATION
    columns = [list(map(get, runtime)) for get in _CORRELATION_GETTERS]
    for i in others:
        forms[i], texts[i], values = _correlation(objects[i])
        for column, value in zip(columns, values, strict=True):
            column[i] = value
    typed = [
        _typed(col, t).take(rows) for col, (_, t) in zip(columns, CORRELATION_FIELDS, strict=True)
    ]
    return [pa.array(forms, pa.int8()).take(rows), *typed, pa.array(texts, _STR).take(rows)]


_NO_FIELDS: Final = (None,) * len(CORRELATION_FIELDS)
_NO_CORRELATION: Final = RuntimeCorrelation(run_id="")  # a stand-in, its fields overwritten
_CORRELATION_GETTERS: Final = tuple(attrgetter(name) for name, _ in CORRELATION_FIELDS)


def _correlation(corr: Any) -> tuple[int, bytes | None, tuple[Any, ...]]:
    """(form, JSON text, typed fields) of one correlation."""
    cls = type(corr)
    if cls is RuntimeCorrelation:
        return 1, None, _CORRELATION_ATTRS(corr)
    if cls is CorrelationJson:
        return 1, None, _CORRELATION_ATTRS(corr.correlation)
    if isinstance(corr, RuntimeCorrelation):
        return 1, None, _CORRELATION_ATTRS(corr)
    if not corr:
        return 0, None, _NO_FIELDS
    values = dict(corr)
    fields = tuple(
        v if _fits(v, t) else None
        for v, (_, t) in zip(
            (values.get(name) for name, _ in CORRELATION_FIELDS), CORRELATION_FIELDS, strict=True
        )
    )
    return 2, dumps(values), fields


def _fits(value: Any, t: pa.DataType) -> bool:
    if t == _INT:
        return type(value) is int and -(2**63) <= value < 2**63
    return isinstance(value, str)


def _diagnostics(diags: Sequence[Any]) -> pa.Array:
    """Diagnostics as JSON text, null for none or empty."""
    if diags.count(None) == len(diags):
        return pa.nulls(len(diags), _STR)
    return pa.array([dumps(x) if x else None for x in diags], _STR)


def _snapshots(snaps: Sequence[Any]) -> list[pa.Array]:
    """`snapshot_form`, the typed pressure fields and `snapshot_json`."""
    n = len(snaps)
    if snaps.count(None) == n:
        nulls = [pa.nulls(n, t) for _, t in PRESSURE_FIELDS]
        return [pa.array(np.zeros(n, np.int8)), *nulls, pa.nulls(n, _STR)]
    objects, rows = distinct(snaps)
    u = len(objects)
    forms = [0 if snap is None else 2 for snap in objects]
    pressure = [i for i, snap in enumerate(objects) if forms[i] and _is_pressure(type(snap))]
    typed = _pressure_arrays([objects[i] for i in pressure]) if pressure else None
    if typed is None:
        pressure = []
    for i in pressure:
        forms[i] = 1
    texts: list[bytes | None] = [None] * u
    view: list[list[Any]] | None = None
    for i, snap in enumerate(objects):
        if forms[i] != 2:
            continue
        value = to_json_value(snap)
        texts[i] = dumps(value)
        if isinstance(value, dict):
            view = view or [[None] * u for _ in SNAPSHOT_VIEW_FIELDS]
            for column, name in zip(view, SNAPSHOT_VIEW_FIELDS, strict=True):
                v = value.get(name)
                if _fits(v, _INT) or (type(v) is float and name == "blocked_until_monotonic"):
                    column[i] = v
    if typed is not None:
        spread = pa.array(_positions(pressure, u), pa.int32())
        columns = [col.take(spread) for col in typed]
    else:
        columns = [pa.nulls(u, t) for _, t in PRESSURE_FIELDS]
    for column, name in zip(view or [], SNAPSHOT_VIEW_FIELDS[: len(view or [])], strict=True):
        j = _PRESSURE_INDEX[name]
        columns[j] = pc.coalesce(columns[j], pa.array(column, PRESSURE_FIELDS[j][1]))
    return [
        pa.array(forms, pa.int8()).take(rows),
        *(col.take(rows) for col in columns),
        pa.array(texts, _STR).take(rows),
    ]


_PRESSURE: Final = "request_pressure"


_PRESSURE_CLASSES: dict[type, bool] = {}


def _is_pressure(cls: type) -> bool:
    """Whether a snapshot class is a request pressure snapshot (asked of the class once: an
    instance's `__getattr__`, e.g. a pydantic model's, can be slow)."""
    known = _PRESSURE_CLASSES.get(cls)
    if known is None:
        known = _PRESSURE_CLASSES[cls] = getattr(cls, "snapshot_kind", None) == _PRESSURE
    return known


_PRESSURE_INDEX: Final = {name: j for j, (name, _) in enumerate(PRESSURE_FIELDS)}


def _positions(rows: Sequence[int], n: int) -> list[int | None]:
    out: list[int | None] = [None] * n
    for k, i in enumerate(rows):
        out[i] = k
    return out


def _pressure_arrays(snaps: Sequence[Any]) -> list[pa.Array] | None:
    """The typed fields of request pressure snapshots (None when a value does not fit)."""
    columns = [list(c) for c in zip(*map(_PRESSURE_ATTRS, snaps), strict=True)]
    try:
        resources = keys(columns[0])
        return [
            resources,
            *(_typed(col, t) for col, (_, t) in zip(columns[1:], PRESSURE_FIELDS[1:], strict=True)),
        ]
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return None


def empty_batch(stream: str) -> pa.RecordBatch:
    """A record batch with no events."""
    return columns_to_batch(stream, [], [])


def as_mapping(value: Any) -> Mapping[str, Any]:
    """An event object's JSON object (`as_json()`), or the mapping itself."""
    if isinstance(value, Mapping):
        return value
    result: Mapping[str, Any] = value.as_json()
    return result
