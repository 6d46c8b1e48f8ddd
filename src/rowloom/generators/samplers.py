"""Sampler columns: seeded, deterministic, vectorised over a row group.

Each value depends only on (seed, column name, global row index) through counter-based
draws (`generators.rng`), so values do not change with `buffer_size`, row-group order or
engine. On top of the raw draws (`generators.distributions`) this module applies, per row:
`conditional_params` (the last condition that holds picks the params), rounding and
`convert_to`, and inequality constraints by rejection sampling: a row that breaks a
constraint is drawn again from its own next stream, up to `MAX_ATTEMPTS` times; a row that
never meets it is dropped with reason `constraint_unmet`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rowloom.config.columns import SamplerColumnConfig
from rowloom.config.constraints import (
    ColumnInequalityConstraint,
    Constraint,
    ScalarInequalityConstraint,
    compare,
)
from rowloom.config.errors import ConfigIssue, ConfigValidationError
from rowloom.config.references import condition_template, template_references
from rowloom.config.sampler_checks import datetime_format
from rowloom.config.samplers import (
    DATETIME_SAMPLERS,
    PersonParams,
    SamplerParams,
    TimeDeltaParams,
)
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.base import (
    BatchGenerator,
    BatchInput,
    ColumnGenerator,
    RowFailure,
    compile_template,
    render,
)
from rowloom.generators.distributions import draw, parse_datetimes
from rowloom.generators.personas import PersonaDatasetError, PersonaSource, open_persona_source
from rowloom.generators.rng import stream_key

MAX_ATTEMPTS = 1000
"""Draws a row gets to meet its column's constraints."""
PROBE_ROWS = 256
"""Rows drawn before a run to check that constrained columns can be sampled."""
Array = npt.NDArray[Any]
_NO_BRANCH = -1


@dataclass(frozen=True, slots=True)
class _Plan:
    """One batch's draw inputs: seed, global rows, params index per row, upstream values."""

    seed: int
    rows: npt.NDArray[np.int64]
    branch: npt.NDArray[np.int64]
    inputs: Mapping[str, Array]


class SamplerGenerator(BatchGenerator):
    """Every sampler type; params are validated once, at construction."""

    def __init__(
        self,
        config: SamplerColumnConfig,
        constraints: Sequence[Constraint] = (),
        columns: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(config)
        self.sampler_type = config.sampler_type
        self.params = config.typed_params()
        self.branches: list[SamplerParams] = [self.params]
        self._conditions = []
        for condition, params in config.typed_conditional_params().items():
            self._conditions.append(compile_template(condition_template(condition)))
            self.branches.append(params)
        self._condition_columns = sorted(
            {
                r
                for c in config.conditional_params or {}
                for r in template_references(condition_template(c))
            }
        )
        self.constraints = [c for c in constraints if c.target_column == self.name]
        rhs = [c.rhs for c in self.constraints if isinstance(c, ColumnInequalityConstraint)]
        self.required_columns = tuple(sorted({*self.required_columns, *rhs}))
        self._columns = dict(columns or {})
        self._is_datetime = config.sampler_type in DATETIME_SAMPLERS
        self._format = datetime_format(config) if self._is_datetime else None
        self._convert = None if self._is_datetime else config.convert_to
        self._personas = [_persona_source(self.name, p) for p in self.branches if _is_dataset(p)]

    def output_shape(self) -> dict[str, Any] | None:
        """People from a Nemotron-Personas dataset have the dataset's field types."""
        if len(self._personas) == 1 and len(self.branches) == 1 and self._convert is None:
            assert isinstance(self.params, PersonParams)
            return self._personas[0].value_shape(self.params.with_synthetic_personas)
        return super().output_shape()

    def generate_batch(self, batch: BatchInput) -> list[Any]:
        branch, failures = self._branches(batch)
        plan = _Plan(
            batch.seed, np.asarray(batch.global_rows, dtype=np.int64), branch, self._inputs(batch)
        )
        live = np.flatnonzero(branch != _NO_BRANCH)
        raw = self._draw(plan, 0, live)
        if live.size != len(branch):  # rows whose condition failed hold filler
            raw = _scatter(raw, live, len(branch))
        unmet: Array = np.empty(0, dtype=np.int64)
        if self.constraints and live.size:
            unmet = self._reject(batch, plan, raw, live)
        values = self._finish(raw)
        for i, message in failures.items():
            values[i] = RowFailure("template_error", message)
        for i in unmet.tolist():
            values[i] = RowFailure(
                "constraint_unmet",
                f"{self.name}: {self.describe_constraints()} not met in {MAX_ATTEMPTS} draws",
            )
        return values

    # --- conditional params ---------------------------------------------------------------

    def _branches(self, batch: BatchInput) -> tuple[npt.NDArray[np.int64], dict[int, str]]:
        """The params index per row (0: `params`, i: the i-th condition's) and rows whose
        condition could not be evaluated."""
        n = len(batch.global_rows)
        out = np.zeros(n, dtype=np.int64)
        failures: dict[int, str] = {}
        if not self._conditions:
            return out, failures
        names = self._condition_columns
        seen: dict[tuple[Any, ...], int | str] = {}
        for i, combo in enumerate(zip(*(batch.columns[c] for c in names), strict=True)):
            try:
                result = seen.get(combo)
                if result is None:
                    result = seen[combo] = self._branch(dict(zip(names, combo, strict=True)))
            except TypeError:  # unhashable values (e.g. a person): evaluate this row alone
                result = self._branch(dict(zip(names, combo, strict=True)))
            if isinstance(result, str):
                out[i] = _NO_BRANCH
                failures[i] = result
            else:
                out[i] = result
        return out, failures

    def _branch(self, row: Mapping[str, Any]) -> int | str:
        chosen = 0
        for index, template in enumerate(self._conditions, start=1):
            try:
                if render(template, row).strip() == "True":
                    chosen = index
            except NonRetryableTaskError as exc:
                return f"{self.name}: condition {index} failed: {exc}"
        return chosen

    # --- drawing --------------------------------------------------------------------------

    def _inputs(self, batch: BatchInput) -> dict[str, Array]:
        out: dict[str, Array] = {}
        for name in self.required_columns:
            values = batch.columns[name]
            arr = np.empty(len(values), dtype=object)
            arr[:] = list(values)
            out[name] = arr
        for p in self.branches:
            if isinstance(p, TimeDeltaParams):
                ref = p.reference_column_name
                out[ref] = self._datetimes_of(ref, batch.columns[ref])
        return out

    def _datetimes_of(self, column: str, values: Sequence[Any]) -> Array:
        ref = self._columns.get(column)
        fmt = datetime_format(ref) if isinstance(ref, SamplerColumnConfig) else None
        parsed = parse_datetimes(values, fmt)
        if fmt is None:  # not ISO 8601 (e.g. a seed column): let pandas infer each value
            texts = list(values)
            retry = np.flatnonzero(np.isnat(parsed) & np.array([isinstance(v, str) for v in texts]))
            if retry.size:
                import pandas as pd

                again = pd.to_datetime([texts[i] for i in retry], format="mixed", errors="coerce")
                parsed[retry] = np.asarray(again, dtype="datetime64[s]")
        return parsed

    def _draw(self, plan: _Plan, attempt: int, where: npt.NDArray[np.int64]) -> Array:
        """Raw values (rounded, numbers converted) for the rows at positions `where`."""
        key = attempt_key(plan.seed, self.name, attempt)
        branch = plan.branch[where]
        indices = np.unique(branch).tolist()
        drawn: list[tuple[npt.NDArray[np.int64], Array]] = []
        for index in indices:
            sel = np.flatnonzero(branch == index) if len(indices) > 1 else np.arange(len(where))
            pos = where[sel]
            params = self.branches[index]
            sub = {k: v[pos] for k, v in plan.inputs.items()}
            drawn.append((sel, self._prepare(params, draw(params, key, plan.rows[pos], sub))))
        if len(drawn) == 1:
            return drawn[0][1]
        out = _filler(drawn, len(where))
        for sel, values in drawn:
            out[sel] = values
        return out

    def _prepare(self, params: SamplerParams, values: Array) -> Array:
        """Rounding (`decimal_places`) and numeric `convert_to`, applied before constraints."""
        places = getattr(params, "decimal_places", None)
        if places is not None and values.dtype.kind == "f":
            values = np.round(values, places)
        if self._convert == "int":
            values = np.rint(_as_float(values)).astype(np.int64)
        elif self._convert == "float":
            values = _as_float(values)
        return values

    # --- constraints ----------------------------------------------------------------------

    def _reject(
        self, batch: BatchInput, plan: _Plan, raw: Array, live: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Redraw rows that break a constraint; return the positions that never met it."""
        rhs = {
            c.rhs: self._comparable_column(c.rhs, batch.columns[c.rhs])
            for c in self.constraints
            if isinstance(c, ColumnInequalityConstraint)
        }
        need = live
        for attempt in range(1, MAX_ATTEMPTS + 1):
            need = need[~self._holds(raw[need], need, rhs)]
            if need.size == 0 or attempt == MAX_ATTEMPTS:
                break
            raw[need] = self._draw(plan, attempt, need)
        return need

    def _holds(
        self, values: Array, positions: npt.NDArray[np.int64], rhs: Mapping[str, Array]
    ) -> npt.NDArray[np.bool_]:
        target = _comparable(values)
        ok = np.isnan(target)  # a missing value has nothing to compare
        met = np.ones(len(values), dtype=bool)
        for c in self.constraints:
            if isinstance(c, ScalarInequalityConstraint):
                met &= compare(c.operator, target, c.rhs)
            else:
                other = rhs[c.rhs][positions]
                met &= compare(c.operator, target, other) | np.isnan(other)
        result: npt.NDArray[np.bool_] = ok | met
        return result

    def _comparable_column(self, column: str, values: Sequence[Any]) -> npt.NDArray[np.float64]:
        ref = self._columns.get(column)
        if isinstance(ref, SamplerColumnConfig) and ref.sampler_type in DATETIME_SAMPLERS:
            return _comparable(self._datetimes_of(column, values))
        return np.array([_to_float(v) for v in values], dtype=np.float64)

    def describe_constraints(self) -> str:
        """The column's constraints, for messages."""
        return " and ".join(c.describe() for c in self.constraints)

    # --- output ---------------------------------------------------------------------------

    def _finish(self, raw: Array) -> list[Any]:
        if raw.dtype.kind == "M":
            return format_datetimes(raw, self._format)
        if self._convert == "str":
            return [None if v is None else str(v) for v in raw.tolist()]
        return list(raw.tolist())


def _is_dataset(params: SamplerParams) -> bool:
    return isinstance(params, PersonParams) and params.source == "nemotron_personas"


def _persona_source(column: str, params: SamplerParams) -> PersonaSource:
    """The opened dataset of a `nemotron_personas` person; a missing file or no matching
    person is a `ConfigValidationError` before the run starts."""
    assert isinstance(params, PersonParams)
    try:
        return open_persona_source(params)
    except PersonaDatasetError as exc:
        raise ConfigValidationError(
            [ConfigIssue("person_dataset", f"columns.{column}", "params.locale", str(exc))]
        ) from None


def _filler(drawn: Sequence[tuple[Any, Array]], n: int) -> Array:
    """An empty array of `n` that holds every part's values (NaT/None where unset)."""
    dtype = np.result_type(*(v.dtype for _, v in drawn)) if drawn else np.dtype(object)
    if any(v.dtype.kind == "O" for _, v in drawn):
        dtype = np.dtype(object)
    out = np.empty(n, dtype=dtype)
    if dtype.kind == "M":
        out[:] = np.datetime64("NaT")
    elif dtype.kind == "O":
        out[:] = None
    return out


def _scatter(values: Array, where: npt.NDArray[np.int64], n: int) -> Array:
    out = _filler([(where, values)], n)
    out[where] = values
    return out


def attempt_key(seed: int, column: str, attempt: int) -> int:
    """The stream of a column's `attempt`-th draw (0: the first)."""
    if attempt == 0:
        return stream_key(seed, "sampler", column)
    return stream_key(seed, "sampler", column, f"attempt-{attempt}")


def format_datetimes(values: Array, fmt: str | None) -> list[Any]:
    """datetime64 values as ISO 8601 (`2024-01-15T09:30:00`) or `fmt` strings; NaT -> None."""
    missing = np.isnat(values)
    if fmt is None:
        text = np.datetime_as_string(values.astype("datetime64[s]"), unit="s").tolist()
    else:
        text = [
            None if m else v.strftime(fmt)
            for v, m in zip(values.astype(object), missing, strict=True)
        ]
    return [None if m else t for t, m in zip(text, missing.tolist(), strict=True)]


def _as_float(values: Array) -> npt.NDArray[np.float64]:
    if values.dtype.kind == "O":
        return np.array([_to_float(v) for v in values.tolist()], dtype=np.float64)
    out: npt.NDArray[np.float64] = values.astype(np.float64)
    return out


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _comparable(values: Array) -> npt.NDArray[np.float64]:
    """Numbers as float64; datetimes as POSIX seconds; NaN where missing."""
    if values.dtype.kind == "M":
        secs = values.astype("datetime64[s]")
        out = secs.astype(np.int64).astype(np.float64)
        out[np.isnat(secs)] = np.nan
        return out
    return _as_float(values)


# --- before a run -----------------------------------------------------------------------------


def probe_constraints(generators: Mapping[str, ColumnGenerator], seed: int) -> None:
    """Draw `PROBE_ROWS` rows of each constrained sampler (with its sampler inputs) and raise
    `ConfigValidationError` when some never meet the constraints: such a run would drop
    rows for that reason alone. Columns fed by non-samplers are left to the run."""
    issues = []
    for gen in generators.values():
        if not isinstance(gen, SamplerGenerator) or not gen.constraints:
            continue
        values = _probe(gen, generators, seed)
        if values is None:
            continue
        unmet = sum(isinstance(v, RowFailure) and v.reason == "constraint_unmet" for v in values)
        if unmet:
            issues.append(
                ConfigIssue(
                    "constraint_unsatisfiable",
                    f"constraints.{gen.name}",
                    "rhs",
                    f"{gen.describe_constraints()} is met too rarely: {unmet} of {PROBE_ROWS} "
                    f"sample rows found no draw meeting it in {MAX_ATTEMPTS} tries (for some "
                    "it may be impossible given the other columns); loosen the constraint or "
                    "the sampler's params",
                )
            )
    if issues:
        raise ConfigValidationError(issues)


def _probe(
    gen: SamplerGenerator, generators: Mapping[str, ColumnGenerator], seed: int
) -> list[Any] | None:
    rows = list(range(PROBE_ROWS))
    done: dict[str, list[Any]] = {}

    def values_of(name: str) -> list[Any] | None:
        if name in done:
            return done[name]
        g = generators.get(name)
        if not isinstance(g, SamplerGenerator):
            return None
        inputs = {}
        for dep in g.required_columns:
            dep_values = values_of(dep)
            if dep_values is None:
                return None
            inputs[dep] = [None if isinstance(v, RowFailure) else v for v in dep_values]
        done[name] = g.generate_batch(BatchInput(seed, 0, rows, inputs))
        return done[name]

    return values_of(gen.name)
