"""Event tables as numpy columns: kind masks, interned ids, decoded correlation fields.

Helpers for the vectorised view (`view_build`): one `StreamColumns` per stream, built from the
Arrow table of its events, and `last_source_before`, the one join the view needs (the last
event of one kind before each event of another, per key, optionally consumed by it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Interner:
    """Strings to dense codes shared across columns and streams (None and "" are -1)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def code_list(self, values: Sequence[Any]) -> IntArray:
        """One code per value, plus a trailing -1 (the slot nulls index into)."""
        codes = self.codes
        out = [codes.setdefault(v, len(codes)) if isinstance(v, str) and v else -1 for v in values]
        out.append(-1)
        return np.array(out, dtype=np.int64)

    @property
    def values(self) -> list[str]:
        return list(self.codes)


def column_codes(column: pa.ChunkedArray, interner: Interner | None = None) -> IntArray:
    """Codes of a string or dictionary column (null and "" are -1).

    Dictionary columns (small per-batch dictionaries) map through `interner`, so codes agree
    across batches; string columns are encoded by Arrow (codes index `string_codes`' values).
    """
    if not pa.types.is_dictionary(column.type):
        return string_codes(column)[0]
    interner = interner if interner is not None else Interner()
    parts = []
    for chunk in column.chunks:
        local = interner.code_list(chunk.dictionary.to_pylist())
        indices = chunk.indices.fill_null(len(local) - 1).to_numpy(zero_copy_only=False)
        parts.append(local[indices])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def string_codes(column: pa.ChunkedArray) -> tuple[IntArray, pa.Array]:
    """Codes of a string column and the values they index (null and "" are -1)."""
    if column.num_chunks == 0 or len(column) == 0:
        return np.zeros(len(column), dtype=np.int64), pa.array([], pa.string())
    encoded = pc.dictionary_encode(column)
    values = encoded.chunks[-1].dictionary
    codes = np.concatenate(
        [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in encoded.chunks]
    ).astype(np.int64)
    empty = pc.index(values, "").as_py()
    if empty >= 0:
        codes[codes == empty] = -1
    return codes, values


class StreamColumns:
    """One stream's events as numpy arrays, in stream order."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.n = table.num_rows
        kinds = Interner()
        self.kind = column_codes(table.column("event_kind"), kinds)
        self.kind_names = kinds.values
        self.kind_code = kinds.codes
        self.t = _floats(table.column("captured_at_monotonic"))
        seq = table.column("sequence")
        self.seq_ok = ~_nulls(seq)
        self.seq = _ints(seq)

    def is_(self, *kinds: str) -> BoolArray:
        """Rows whose kind is one of `kinds`."""
        codes = [self.kind_code[k] for k in kinds if k in self.kind_code]
        if not codes:
            return np.zeros(self.n, dtype=bool)
        mask: BoolArray = np.isin(self.kind, codes)
        return mask

    def codes(self, name: str, interner: Interner | None = None) -> IntArray:
        return column_codes(self.table.column(name), interner)

    def floats(self, name: str) -> FloatArray:
        return _floats(self.table.column(name))

    def take(self, name: str, rows: IntArray) -> pa.ChunkedArray:
        """The values of a column at `rows`."""
        return self.table.column(name).take(pa.array(rows, pa.int64()))

    def strings(self, name: str, rows: IntArray) -> list[Any]:
        """The values of a string column at `rows`, as Python values."""
        return self.take(name, rows).to_pylist()  # type: ignore[no-any-return]

    def json_at(self, name: str, rows: IntArray) -> list[Any]:
        """Decoded JSON text of a column at `rows` (None where null)."""
        return [orjson.loads(x) if x else None for x in self.strings(name, rows)]


def _floats(column: pa.ChunkedArray) -> FloatArray:
    return column.to_numpy().astype(np.float64, copy=False)  # type: ignore[no-any-return]


def _ints(column: pa.ChunkedArray) -> IntArray:
    filled = pc.fill_null(column, 0) if column.null_count else column
    return filled.to_numpy().astype(np.int64, copy=False)  # type: ignore[no-any-return]


def _nulls(column: pa.ChunkedArray) -> BoolArray:
    if column.null_count == 0:
        return np.zeros(len(column), dtype=bool)
    return pc.is_null(column).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def nullable_ints(column: pa.ChunkedArray) -> tuple[IntArray, BoolArray]:
    """Values (null as 0) and a presence mask."""
    return _ints(column), ~_nulls(column)


def last_source_before(
    key: IntArray, is_source: BoolArray, is_sink: BoolArray, *, consume: bool
) -> tuple[IntArray, BoolArray]:
    """For each sink row, the row of the last source with the same key before it (-1: none).

    With `consume`, a sink takes its source away: a later sink only sees sources after the
    previous sink of its key (a dict entry set by sources and popped by sinks). Rows with key
    -1 are neither. Also returns, for each source row, whether it is the first source since
    the previous sink of its key (the entry was absent before it).
    """
    n = len(key)
    found = np.full(n, -1, dtype=np.int64)
    first = np.zeros(n, dtype=bool)
    rows = np.flatnonzero((is_source | is_sink) & (key >= 0))
    if len(rows) == 0:
        return found, first
    order = np.argsort(key[rows], kind="stable")
    pos = rows[order]
    k = key[pos]
    src = is_source[pos]
    snk = is_sink[pos]
    r = np.arange(len(pos))
    group_start = np.ones(len(pos), dtype=bool)
    group_start[1:] = k[1:] != k[:-1]
    boundary = np.maximum.accumulate(np.where(group_start, r, 0)) - 1
    if consume:
        prev_sink = np.maximum.accumulate(np.where(snk, r, -1))
        before = np.concatenate(([-1], prev_sink[:-1]))
        boundary = np.maximum(boundary, before)
    last_src = np.maximum.accumulate(np.where(src, r, -1))
    prev_src = np.concatenate(([-1], last_src[:-1]))
    hit = snk & (last_src > boundary)
    found[pos[hit]] = pos[last_src[hit]]
    first[pos[src & (prev_src <= boundary)]] = True
    return found, first


def last_by_key(keys: IntArray, size: int) -> IntArray:
    """For each key in `range(size)`, the position of its last occurrence in `keys` (-1)."""
    out = np.full(size, -1, dtype=np.int64)
    if len(keys):
        rev = keys[::-1]
        uniq, idx = np.unique(rev, return_index=True)
        keep = uniq >= 0
        out[uniq[keep]] = len(keys) - 1 - idx[keep]
    return out


def first_by_key(keys: IntArray, size: int) -> IntArray:
    """For each key in `range(size)`, the position of its first occurrence in `keys` (-1)."""
    out = np.full(size, -1, dtype=np.int64)
    if len(keys):
        uniq, idx = np.unique(keys, return_index=True)
        keep = uniq >= 0
        out[uniq[keep]] = idx[keep]
    return out


def sum_by_key(keys: IntArray, values: FloatArray, size: int) -> FloatArray:
    """Per-key sums (keys -1 ignored)."""
    keep = keys >= 0
    sums = np.bincount(keys[keep], weights=values[keep], minlength=size)[:size]
    return sums.astype(np.float64, copy=False)


def pick(values: FloatArray, positions: IntArray) -> FloatArray:
    """`values[positions]`, NaN where the position is -1."""
    out = np.full(len(positions), np.nan)
    ok = positions >= 0
    out[ok] = values[positions[ok]]
    return out
