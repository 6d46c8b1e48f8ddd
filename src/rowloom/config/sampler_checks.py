"""Static checks of sampler columns and constraints, run with the rest of config validation
(before any model call): every issue names the column (or constraint) and the field."""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from rowloom.config.columns import SamplerColumnConfig
from rowloom.config.constraints import (
    ColumnInequalityConstraint,
    ScalarInequalityConstraint,
)
from rowloom.config.errors import ConfigIssue
from rowloom.config.samplers import (
    DATETIME_SAMPLERS,
    NUMERIC_SAMPLERS,
    SAMPLER_PARAMS,
    BernoulliMixtureParams,
    BernoulliParams,
    BinomialParams,
    CategoryParams,
    DatetimeParams,
    PoissonParams,
    SamplerParams,
    ScipyParams,
    SubcategoryParams,
    TimeDeltaParams,
    UniformParams,
    did_you_mean,
)

_SAMPLE_DATE = dt.datetime(2012, 12, 21, 13, 45, 30)


_PARAM_COLUMN = {"subcategory": "category", "timedelta": "reference_column_name"}


def sampler_dependencies(col: SamplerColumnConfig) -> set[str]:
    """Columns a sampler reads through its params (conditions are templates, found apart)."""
    key = _PARAM_COLUMN.get(col.sampler_type)
    if key is None:
        return set()
    every = [col.params, *(col.conditional_params or {}).values()]
    return {p[key] for p in every if isinstance(p.get(key), str)}


def _params_issues(col: SamplerColumnConfig, loc: str) -> Iterator[ConfigIssue]:
    sources = [("params", col.params)]
    sources += [(f"conditional_params.{c}", p) for c, p in (col.conditional_params or {}).items()]
    for prefix, raw in sources:
        try:
            params = SAMPLER_PARAMS[col.sampler_type].model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                yield ConfigIssue(
                    "invalid_sampler_params", loc, prefix + (f".{where}" if where else ""), msg
                )
            continue
        if isinstance(params, ScipyParams | BernoulliMixtureParams):
            problem = scipy_problem(params.dist_name, params.dist_params)
            if problem is not None:
                code, field, message = problem
                yield ConfigIssue(code, loc, f"{prefix}.{field}", message)


def scipy_problem(name: str, params: Mapping[str, float]) -> tuple[str, str, str] | None:
    """(code, field, message) when `scipy.stats.<name>(**params)` cannot be sampled."""
    try:
        import numpy as np
        import scipy.stats as st
    except ImportError:
        return (
            "missing_dependency",
            "dist_name",
            "scipy samplers need scipy: pip install 'rowloom[scipy]'",
        )
    dist = getattr(st, name, None)
    if not isinstance(dist, st.rv_continuous | st.rv_discrete):
        known = [k for k, v in vars(st).items() if isinstance(v, st.rv_continuous | st.rv_discrete)]
        return (
            "unknown_distribution",
            "dist_name",
            f"{name!r} is not a scipy.stats distribution{did_you_mean(name, known)}",
        )
    shapes = [x.strip() for x in (dist.shapes or "").split(",") if x.strip()]
    allowed = [*shapes, "loc"] + ([] if isinstance(dist, st.rv_discrete) else ["scale"])
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        return (
            "invalid_sampler_params",
            "dist_params",
            f"{name!r} has no parameter {unknown[0]!r}{did_you_mean(unknown[0], allowed)}; "
            f"it takes {allowed}",
        )
    missing = [x for x in shapes if x not in params]
    if missing:
        return ("invalid_sampler_params", "dist_params", f"{name!r} needs {missing}")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            frozen = dist(**params)
            probe = np.asarray(frozen.ppf([0.1, 0.5, 0.9]), dtype=float)
    except (TypeError, ValueError) as exc:
        return ("invalid_sampler_params", "dist_params", f"not valid for {name!r}: {exc}")
    if not np.all(np.isfinite(probe)):
        return (
            "invalid_sampler_params",
            "dist_params",
            f"{dict(params)} are outside the domain of {name!r}",
        )
    return None


def sampler_column_issues(
    col: SamplerColumnConfig, loc: str, columns: Mapping[str, Any]
) -> Iterator[ConfigIssue]:
    """Every problem of one sampler column: params (and conditional params), parent and
    reference columns, `convert_to`."""
    issues = list(_params_issues(col, loc))
    yield from issues
    if any(i.code != "missing_dependency" for i in issues):
        return
    params = col.typed_params()
    all_params = [params, *col.typed_conditional_params().values()]
    for p in all_params:
        if isinstance(p, SubcategoryParams):
            yield from _subcategory_issues(p, loc, columns)
        if isinstance(p, TimeDeltaParams):
            yield from _reference_issues(p, loc, columns)
    yield from _convert_issues(col, all_params, loc)


def _subcategory_issues(
    params: SubcategoryParams, loc: str, columns: Mapping[str, Any]
) -> Iterator[ConfigIssue]:
    category = columns.get(params.category)
    if category is None:
        yield ConfigIssue(
            "unknown_reference",
            loc,
            "params.category",
            f"category column {params.category!r} does not exist"
            + did_you_mean(params.category, columns),
        )
    elif isinstance(category, SamplerColumnConfig) and category.sampler_type == "category":
        values = {str(v) for p in _all_params(category) for v in getattr(p, "values", [])}
        missing = sorted(values - set(params.values))
        if missing:
            yield ConfigIssue(
                "invalid_sampler_params",
                loc,
                "params.values",
                f"no subcategories for categories {missing}",
            )


def _all_params(col: SamplerColumnConfig) -> list[SamplerParams]:
    try:
        return [col.typed_params(), *col.typed_conditional_params().values()]
    except ValueError:
        return []


def _reference_issues(
    params: TimeDeltaParams, loc: str, columns: Mapping[str, Any]
) -> Iterator[ConfigIssue]:
    ref = columns.get(params.reference_column_name)
    field = "params.reference_column_name"
    if ref is None:
        yield ConfigIssue(
            "unknown_reference",
            loc,
            field,
            f"reference column {params.reference_column_name!r} does not exist"
            + did_you_mean(params.reference_column_name, columns),
        )
    elif isinstance(ref, SamplerColumnConfig) and ref.sampler_type not in DATETIME_SAMPLERS:
        yield ConfigIssue(
            "invalid_sampler_params",
            loc,
            field,
            f"reference column {ref.name!r} is a {ref.sampler_type} sampler, not a datetime",
        )
    elif isinstance(ref, SamplerColumnConfig):
        fmt = datetime_format(ref)
        if fmt is not None and not _round_trips(fmt):
            yield ConfigIssue(
                "invalid_sampler_params",
                loc,
                field,
                f"reference column {ref.name!r} is written as {fmt!r}, which cannot be read "
                "back as a datetime; give it a format with a full date",
            )


def datetime_format(col: SamplerColumnConfig) -> str | None:
    """The strftime format a datetime/timedelta sampler writes (None: ISO 8601)."""
    if col.convert_to is not None:
        return col.convert_to
    fmt = col.params.get("format")
    return fmt if isinstance(fmt, str) else None


def _round_trips(fmt: str) -> bool:
    try:
        return dt.datetime.strptime(_SAMPLE_DATE.strftime(fmt), fmt).date() == _SAMPLE_DATE.date()
    except ValueError:
        return False


def _convert_issues(
    col: SamplerColumnConfig, all_params: Sequence[SamplerParams], loc: str
) -> Iterator[ConfigIssue]:
    to = col.convert_to
    kind = col.sampler_type
    if kind in DATETIME_SAMPLERS:
        if to is not None:
            try:
                text = _SAMPLE_DATE.strftime(to)
            except ValueError as exc:
                text = ""
                yield ConfigIssue("invalid_convert_to", loc, "convert_to", f"{to!r}: {exc}")
            if text == to or "%" not in to:
                yield ConfigIssue(
                    "invalid_convert_to",
                    loc,
                    "convert_to",
                    f"{to!r} is not a strftime format (e.g. '%Y-%m-%d')",
                )
        fmts = {p.format for p in all_params if isinstance(p, DatetimeParams) and p.format}
        if to is not None and fmts - {to}:
            yield ConfigIssue(
                "invalid_convert_to",
                loc,
                "convert_to",
                f"convert_to {to!r} and params.format {sorted(fmts)} disagree; give one",
            )
        return
    if to is None:
        return
    if kind in ("uuid", "person", "person_from_faker"):
        if to != "str":
            yield ConfigIssue(
                "invalid_convert_to",
                loc,
                "convert_to",
                f"a {kind} sampler's values cannot be converted to {to!r}",
            )
        return
    if to not in ("int", "float", "str"):
        yield ConfigIssue(
            "invalid_convert_to",
            loc,
            "convert_to",
            f"{to!r}: numbers convert to 'int', 'float' or 'str'",
        )
    elif to != "str" and kind in ("category", "subcategory"):
        bad = [v for p in all_params for v in _choices(p) if not _is_number(v)]
        if bad:
            yield ConfigIssue(
                "invalid_convert_to",
                loc,
                "convert_to",
                f"values {bad[:5]} are not numbers; they cannot be converted to {to!r}",
            )


def _choices(params: SamplerParams) -> list[Any]:
    if isinstance(params, CategoryParams):
        return list(params.values)
    if isinstance(params, SubcategoryParams):
        return [v for opts in params.values.values() for v in opts]
    return []


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# --- constraints ------------------------------------------------------------------------------

Interval = tuple[float, float]


def _kind(col: SamplerColumnConfig) -> str | None:
    """'number', 'datetime' or None (not comparable)."""
    if col.sampler_type in DATETIME_SAMPLERS:
        return "datetime"
    if col.sampler_type in NUMERIC_SAMPLERS:
        return "number"
    if col.sampler_type in ("category", "subcategory"):
        params = _all_params(col)
        if params and all(_is_number(v) for p in params for v in _choices(p)):
            return "number"
    return None


def constraint_issues(
    constraints: Sequence[ScalarInequalityConstraint | ColumnInequalityConstraint],
    columns: Mapping[str, Any],
) -> Iterator[ConfigIssue]:
    """Every problem of the constraints: unknown or non-sampler columns, values that cannot
    be compared, and constraints no draw can meet."""
    bounds: dict[str, Interval] = {}
    for c in constraints:
        loc = f"constraints.{c.target_column}"
        target = columns.get(c.target_column)
        problem = _column_problem(c.target_column, target, columns)
        if problem:
            yield ConfigIssue("invalid_constraint", loc, "target_column", problem)
            continue
        assert isinstance(target, SamplerColumnConfig)
        kind = _kind(target)
        if isinstance(c, ScalarInequalityConstraint):
            if kind == "datetime":
                yield ConfigIssue(
                    "invalid_constraint",
                    loc,
                    "rhs",
                    "a datetime column is compared with another column (column_inequality), "
                    "not a number",
                )
                continue
            low, high = bounds.get(c.target_column) or support(target)
            low, high = _narrow(low, high, c.operator, c.rhs)
            bounds[c.target_column] = (low, high)
            if low > high:
                yield ConfigIssue(
                    "constraint_unsatisfiable",
                    loc,
                    "rhs",
                    f"no value of {c.target_column!r} can meet {c.describe()}"
                    + _range_text(target),
                )
            continue
        yield from _column_constraint_issues(c, target, kind, loc, columns)


def _column_problem(name: str, col: Any, columns: Mapping[str, Any]) -> str | None:
    if col is None:
        return f"column {name!r} does not exist{did_you_mean(name, columns)}"
    if not isinstance(col, SamplerColumnConfig):
        return f"column {name!r} is not a sampler column (constraints apply to samplers)"
    if _kind(col) is None:
        return (
            f"a {col.sampler_type} sampler's values cannot be compared; constraints apply "
            "to numeric, datetime and timedelta samplers"
        )
    return None


def _column_constraint_issues(
    c: ColumnInequalityConstraint,
    target: SamplerColumnConfig,
    kind: str | None,
    loc: str,
    columns: Mapping[str, Any],
) -> Iterator[ConfigIssue]:
    rhs = columns.get(c.rhs)
    problem = _column_problem(c.rhs, rhs, columns)
    if problem:
        yield ConfigIssue("invalid_constraint", loc, "rhs", problem)
        return
    assert isinstance(rhs, SamplerColumnConfig)
    if c.rhs == c.target_column:
        yield ConfigIssue(
            "invalid_constraint", loc, "rhs", "a column cannot be compared with itself"
        )
    elif _kind(rhs) != kind:
        yield ConfigIssue(
            "invalid_constraint",
            loc,
            "rhs",
            f"{c.target_column!r} holds {kind}s and {c.rhs!r} {_kind(rhs)}s; "
            "they cannot be compared",
        )
    else:
        (a1, b1), (a2, b2) = support(target), support(rhs)
        ok = {"lt": a1 < b2, "le": a1 <= b2, "gt": b1 > a2, "ge": b1 >= a2}[c.operator]
        if not ok:
            yield ConfigIssue(
                "constraint_unsatisfiable",
                loc,
                "rhs",
                f"no draws can meet {c.describe()}: {c.target_column!r} lies in "
                f"{_fmt((a1, b1))} and {c.rhs!r} in {_fmt((a2, b2))}",
            )


def _narrow(low: float, high: float, op: str, rhs: float) -> Interval:
    if op in ("lt", "le"):
        return low, min(high, rhs if op == "le" else math.nextafter(rhs, -math.inf))
    return max(low, rhs if op == "ge" else math.nextafter(rhs, math.inf)), high


def _fmt(bounds: Interval) -> str:
    return f"[{bounds[0]:g}, {bounds[1]:g}]"


def _range_text(col: SamplerColumnConfig) -> str:
    low, high = support(col)
    return f" (its values lie in {_fmt((low, high))})" if math.isfinite(low + high) else ""


def support(col: SamplerColumnConfig) -> Interval:
    """The smallest closed interval holding every value a numeric or datetime sampler can
    draw (datetimes as POSIX seconds); infinite where unbounded or unknown."""
    low, high = math.inf, -math.inf
    for p in _all_params(col):
        a, b = _params_support(p)
        low, high = min(low, a), max(high, b)
    if low > high:
        return -math.inf, math.inf
    if col.convert_to == "int":
        low, high = (
            float(round(low)) if math.isfinite(low) else low,
            (float(round(high)) if math.isfinite(high) else high),
        )
    return low, high


def _params_support(p: SamplerParams) -> Interval:
    inf = math.inf
    if isinstance(p, UniformParams):
        return (math.ceil(p.low), math.floor(p.high)) if p.integer else (p.low, p.high)
    if isinstance(p, BernoulliParams):
        return (0.0 if p.p < 1 else 1.0), (1.0 if p.p > 0 else 0.0)
    if isinstance(p, BinomialParams):
        return (0.0 if p.p < 1 else p.n), (float(p.n) if p.p > 0 else 0.0)
    if isinstance(p, PoissonParams):
        return 0.0, inf
    if isinstance(p, CategoryParams | SubcategoryParams):
        numbers = [float(v) for v in _choices(p)]
        return min(numbers), max(numbers)
    if isinstance(p, DatetimeParams):
        epoch = dt.datetime(1970, 1, 1)
        return (p.start - epoch).total_seconds(), (p.end - epoch).total_seconds()
    if isinstance(p, ScipyParams | BernoulliMixtureParams):
        low, high = _scipy_support(p.dist_name, p.dist_params)
        if isinstance(p, BernoulliMixtureParams):
            return (min(low, 0.0) if p.p > 0 else 0.0), (max(high, 0.0) if p.p > 0 else 0.0)
        return low, high
    return -inf, inf


def _scipy_support(name: str, params: Mapping[str, float]) -> Interval:
    try:
        import scipy.stats as st

        low, high = getattr(st, name)(**params).support()
        return float(low), float(high)
    except Exception:  # missing scipy or bad params are reported elsewhere
        return -math.inf, math.inf
