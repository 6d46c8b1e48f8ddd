"""One profiler per column family: samplers, text, code, structured, judge, validation,
embedding; anything else is profiled by its arrow type (`ValueProfiler`).

Each profiler takes the column's record batches one at a time (`add`) and returns a
JSON-ready dict (`as_json`). Checks that need Python per value (schema validation, code
parsing, the embedding projection) run on a deterministic stride sample of at most
`CHECK_SAMPLE` rows and say how many they checked.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rowloom.generators.code_checks import syntax_error
from rowloom.profile.stats import ValueCounter, summary
from rowloom.profile.text import TextProfiler
from rowloom.profile.values import ValueProfiler, as_struct

CHECK_SAMPLE = 2000
PROJECTION_POINTS = 300
TOP_MESSAGES = 5


class ColumnProfiler(Protocol):
    """Accumulates one column over record batches."""

    def add(self, array: pa.Array) -> None: ...

    def as_json(self) -> dict[str, Any]: ...


class StrideSample:
    """Picks every k-th row of a stream of batches (k from the expected row count)."""

    def __init__(self, expected_rows: int, size: int = CHECK_SAMPLE) -> None:
        self._stride = max(1, -(-expected_rows // size))
        self._seen = 0

    def take(self, array: pa.Array) -> list[Any]:
        """The sampled values of this batch, as Python objects (nulls skipped)."""
        first = (-self._seen) % self._stride
        self._seen += len(array)
        idx = pa.array(range(first, len(array), self._stride), type=pa.int64())
        return [v for v in array.take(idx).to_pylist() if v is not None]


class SamplerProfiler:
    """A sampled column: its distribution, and for categories the configured shares."""

    def __init__(self, expected: list[tuple[Any, float]] | None) -> None:
        self._expected = expected
        self._values = ValueProfiler()
        self._counter = ValueCounter()

    def add(self, array: pa.Array) -> None:
        self._values.add(array)
        if self._expected is not None:
            self._counter.add(array)

    def as_json(self) -> dict[str, Any]:
        out = self._values.as_json()
        if self._expected is not None:
            out.pop("top_values", None)
            out["configured"] = self._counter.as_json(expected=self._expected)
        return out


class CodeProfiler:
    """Generated code: text statistics plus whether a sample parses in its language."""

    def __init__(self, code_lang: str, expected_rows: int) -> None:
        self._lang = code_lang
        self._text = TextProfiler(expected_rows)
        self._sample = StrideSample(expected_rows)
        self._checked = 0
        self._ok = 0
        self._errors: Counter[str] = Counter()

    def add(self, array: pa.Array) -> None:
        self._text.add(array)
        for code in self._sample.take(array):
            try:
                error = syntax_error(str(code), self._lang)
            except LookupError:  # no parser for this language here
                return
            self._checked += 1
            if error is None:
                self._ok += 1
            else:
                self._errors[error.splitlines()[0][:120]] += 1

    def as_json(self) -> dict[str, Any]:
        parses: dict[str, Any] = {"checked": self._checked, "ok": self._ok}
        parses["rate"] = round(self._ok / self._checked, 6) if self._checked else None
        parses["top_errors"] = _top(self._errors)
        return {"language": self._lang, **self._text.as_json(), "parses": parses}


class StructuredProfiler:
    """A structured column: field coverage and distributions, and schema violations."""

    def __init__(self, schema: dict[str, Any] | None, expected_rows: int) -> None:
        self._schema = schema
        self._values = ValueProfiler()
        self._sample = StrideSample(expected_rows)
        self._checked = 0
        self._invalid = 0
        self._messages: Counter[str] = Counter()

    def add(self, array: pa.Array) -> None:
        struct = as_struct(array)
        self._values.add(struct)
        if self._schema is not None:
            self._validate(self._sample.take(struct))

    def _validate(self, values: list[Any]) -> None:
        import jsonschema

        validator = jsonschema.Draft202012Validator(self._schema or {})
        for value in values:
            self._checked += 1
            errors = list(validator.iter_errors(_without_nulls(value)))
            if errors:
                self._invalid += 1
                self._messages[errors[0].message[:160]] += 1

    def as_json(self) -> dict[str, Any]:
        out = self._values.as_json()
        if self._schema is not None:
            out["schema_violations"] = {
                "checked": self._checked,
                "invalid": self._invalid,
                "top_messages": _top(self._messages),
            }
        return out


def _without_nulls(value: Any) -> Any:
    # arrow structs fill absent optional fields with null; the schema saw them absent
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


class JudgeProfiler:
    """Judge scores: per score the distribution of options, the mean, reasoning present."""

    def __init__(self, score_names: list[str]) -> None:
        self._names = score_names
        self._scores: dict[str, ValueCounter] = {n: ValueCounter() for n in score_names}
        self._reasoned: Counter[str] = Counter()
        self._rows = 0

    def add(self, array: pa.Array) -> None:
        struct = as_struct(array)
        if not pa.types.is_struct(struct.type):
            return
        self._rows += len(struct) - struct.null_count
        for name in self._names:
            if struct.type.get_field_index(name) < 0:
                continue
            score = pc.struct_field(struct, [struct.type.get_field_index(name)])
            if not pa.types.is_struct(score.type):
                continue
            for field, target in (("score", self._scores[name]), ("reasoning", None)):
                idx = score.type.get_field_index(field)
                if idx < 0:
                    continue
                child = pc.struct_field(score, [idx])
                if target is not None:
                    target.add(child if pa.types.is_string(child.type) else child.cast(pa.string()))
                else:
                    present = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(child)), 0)
                    self._reasoned[name] += int(pc.sum(present).as_py() or 0)

    def as_json(self) -> dict[str, Any]:
        scores: dict[str, Any] = {}
        for name in self._names:
            counter = self._scores[name]
            numeric = _numeric_mean(counter)
            scores[name] = {
                **counter.as_json(top=50),
                "mean": numeric,
                "reasoning_present": round(self._reasoned[name] / self._rows, 6)
                if self._rows
                else 0.0,
            }
        return {"kind": "judge", "rows": self._rows, "scores": scores}


def _numeric_mean(counter: ValueCounter) -> float | None:
    total = weighted = 0.0
    for value, count in counter.counts.items():
        try:
            weighted += float(value) * count
        except (TypeError, ValueError):
            return None
        total += count
    return round(weighted / total, 6) if total else None


class ValidationProfiler:
    """Validation results: pass rate and the most frequent messages."""

    def __init__(self) -> None:
        self._checked = 0
        self._valid = 0
        self._messages: Counter[str] = Counter()

    def add(self, array: pa.Array) -> None:
        for value in as_struct(array).to_pylist():
            if not isinstance(value, dict) or value.get("is_valid") is None:
                continue
            self._checked += 1
            if value["is_valid"]:
                self._valid += 1
                continue
            for message in _messages(value):
                self._messages[message[:160]] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "validation",
            "checked": self._checked,
            "valid": self._valid,
            "pass_rate": round(self._valid / self._checked, 6) if self._checked else None,
            "top_messages": _top(self._messages),
        }


def _messages(value: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("error_messages", "messages", "error_message", "message"):
        got = value.get(key)
        if isinstance(got, str) and got.strip():
            out.append(got.strip())
        elif isinstance(got, list):
            out.extend(str(m) for m in got if m)
    return out


class EmbeddingProfiler:
    """Embeddings: dimension, vector norms, and a 2-D PCA projection of a sample."""

    def __init__(self, expected_rows: int) -> None:
        self._dims: Counter[int] = Counter()
        self._norms: list[np.ndarray] = []
        self._sample = StrideSample(expected_rows, PROJECTION_POINTS)
        self._points: list[list[float]] = []

    def add(self, array: pa.Array) -> None:
        values = pc.drop_null(array)
        if len(values) == 0:
            return
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        self._dims.update(int(n) for n in np.unique(lengths))
        flat = np.asarray(pc.list_flatten(values).to_numpy(zero_copy_only=False), np.float64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        squares = np.add.reduceat(flat * flat, offsets[:-1]) if flat.size else np.zeros(0)
        squares[lengths == 0] = 0.0
        self._norms.append(np.sqrt(squares))
        self._points.extend(self._sample.take(values))

    def as_json(self) -> dict[str, Any]:
        norms = np.concatenate(self._norms) if self._norms else np.zeros(0)
        dims = sorted(self._dims)
        return {
            "kind": "embedding",
            "dimension": dims[0] if len(dims) == 1 else dims,
            "norm": summary(norms),
            "projection": pca_projection(self._points),
        }


def pca_projection(vectors: list[list[float]]) -> dict[str, Any]:
    """The vectors projected on their first two principal components."""
    usable = [v for v in vectors if v and len(v) == len(vectors[0])]
    if len(usable) < 3:
        return {"method": "pca", "sample": len(usable), "points": []}
    matrix = np.asarray(usable, dtype=np.float64)
    centred = matrix - matrix.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    variance = singular**2
    explained = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return {
        "method": "pca",
        "sample": len(usable),
        "explained_variance": [round(float(x), 4) for x in explained],
        "points": [[round(float(x), 4), round(float(y), 4)] for x, y in points],
    }


def _top(counter: Counter[str]) -> list[dict[str, Any]]:
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_MESSAGES]
    return [{"message": m, "count": c} for m, c in ranked]
