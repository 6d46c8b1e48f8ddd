"""Summaries of numbers and values: quantiles, histograms, value counts.

Everything here takes numpy or pyarrow arrays and returns plain JSON-ready dicts, so the
profilers above it stay declarative and `profile.json` needs no custom encoder.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TOP_VALUES = 20
HISTOGRAM_BINS = 20


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    f = float(value)
    if math.isnan(f) or math.isinf(f):
        return None
    return int(f) if f.is_integer() and abs(f) < 2**53 else round(f, 6)


def summary(values: np.ndarray) -> dict[str, Any]:
    """min / median / p95 / max / mean / std of finite values (empty: counts only)."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return {"count": 0}
    q = np.quantile(finite, [0.5, 0.95])
    return {
        "count": int(finite.size),
        "min": _num(finite.min()),
        "median": _num(q[0]),
        "p95": _num(q[1]),
        "max": _num(finite.max()),
        "mean": _num(finite.mean()),
        "std": _num(finite.std()),
    }


def histogram(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Equal-width bins over the finite values' range (integers get integer-aligned bins)."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return {"edges": [], "counts": []}
    lo, hi = float(finite.min()), float(finite.max())
    if values.dtype.kind in "iu" and hi - lo + 1 <= bins:
        edges = np.arange(lo, hi + 2) - 0.5
    elif hi == lo:
        edges = np.array([lo - 0.5, hi + 0.5])
    else:
        edges = np.linspace(lo, hi, bins + 1)
    counts, edges = np.histogram(finite, bins=edges)
    return {"edges": [_num(e) for e in edges], "counts": [int(c) for c in counts]}


class ValueCounter:
    """Value counts accumulated over record batches (exact; keys kept as JSON scalars)."""

    def __init__(self) -> None:
        self.counts: Counter[Any] = Counter()

    def add(self, array: pa.Array) -> None:
        """Count the non-null values of one batch."""
        valid = pc.drop_null(array)
        if len(valid) == 0:
            return
        vc = pc.value_counts(valid)
        for value, count in zip(
            vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True
        ):
            self.counts[_scalar(value)] += count

    @property
    def total(self) -> int:
        """How many non-null values were counted."""
        return sum(self.counts.values())

    def as_json(
        self, expected: Sequence[tuple[Any, float]] | None = None, top: int = TOP_VALUES
    ) -> dict[str, Any]:
        """Distinct count and the top values with their shares; with `expected`
        (value -> configured share), every configured value with observed vs expected share."""
        total = self.total
        out: dict[str, Any] = {"distinct": len(self.counts)}
        if expected is not None:
            rows = []
            for value, share in expected:
                count = self.counts.get(_scalar(value), 0)
                rows.append(_share_row(value, count, total, share))
            out["values"] = rows
            deviations = [abs(r["share"] - r["expected_share"]) for r in rows]
            out["max_share_deviation"] = _num(max(deviations)) if deviations else 0
            unexpected = total - sum(r["count"] for r in rows)
            if unexpected:
                out["unexpected_values"] = unexpected
            return out
        out["top_values"] = [
            _share_row(value, count, total, None) for value, count in _most_common(self.counts, top)
        ]
        return out


def _most_common(counts: Counter[Any], top: int) -> list[tuple[Any, int]]:
    # ties broken by the value's text, so the profile is deterministic
    return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top]


def _share_row(value: Any, count: int, total: int, expected: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {"value": value, "count": count, "share": _share(count, total)}
    if expected is not None:
        row["expected_share"] = _num(expected)
    return row


def _share(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return _num(value)
    return str(value)


def concat_numeric(chunks: Iterable[np.ndarray]) -> np.ndarray:
    """One float array from per-batch arrays (an empty float array when there are none)."""
    parts = [c for c in chunks if c.size]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)


def to_numpy(array: pa.Array) -> np.ndarray:
    """Non-null values of a numeric/boolean arrow array as a numpy array."""
    valid = pc.drop_null(array)
    if pa.types.is_boolean(valid.type):
        return np.asarray(valid.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_temporal(valid.type):
        return np.asarray(pc.cast(valid, pa.int64()).to_numpy(), dtype=np.float64)
    return np.asarray(valid.to_numpy(zero_copy_only=False), dtype=np.float64)
