"""Vectorised draws for every sampler type except `person` (see `generators.person` and
`generators.personas`).

`draw(params, key, rows, inputs)` returns one raw value per row as a numpy array: float64 or
int64 for numbers, datetime64[s] for datetimes, object for everything else. Each row's value
depends only on (key, global row): inverse-CDF sampling of counter-based uniforms, or, for
`scipy.stats` distributions without a closed-form inverse, `rvs` over fixed blocks of 1024
global rows seeded by (key, block).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from rowloom.config.samplers import (
    BernoulliMixtureParams,
    BernoulliParams,
    BinomialParams,
    CategoryParams,
    DatetimeParams,
    GaussianParams,
    PersonFromFakerParams,
    PersonParams,
    PoissonParams,
    SamplerParams,
    ScipyParams,
    SubcategoryParams,
    TimeDeltaParams,
    UniformParams,
    UUIDParams,
)
from rowloom.generators.person import draw_people
from rowloom.generators.personas import draw_personas
from rowloom.generators.rng import open_uniforms, row_bits, row_uniforms

Array = npt.NDArray[Any]
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
_BLOCK = 1024
_MAX_TABLE = 200_000


def draw(params: SamplerParams, key: int, rows: Ints, inputs: Mapping[str, Any]) -> Array:
    """One raw value per row (`inputs`: upstream columns aligned with `rows`)."""
    fn = _DRAWERS.get(type(params))
    if fn is None:
        if isinstance(params, PersonParams) and params.source == "nemotron_personas":
            return draw_personas(params, key, rows)
        if isinstance(params, PersonFromFakerParams):
            return draw_people(params, key, rows)
        raise AssertionError(f"no sampler for {type(params).__name__}")  # pragma: no cover
    return fn(params, key, rows, inputs)


def _category(p: Any, key: int, rows: Ints, _: Any) -> Array:
    w = np.asarray(p.weights if p.weights is not None else [1.0] * len(p.values), dtype=float)
    cdf = np.cumsum(w / w.sum())
    u = row_uniforms(key, rows, 1)[:, 0]
    idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(p.values) - 1)
    out: Array = _objects(p.values)[idx]
    return out


def _objects(values: Sequence[Any]) -> Array:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _subcategory(p: Any, key: int, rows: Ints, inputs: Mapping[str, Sequence[Any]]) -> Array:
    parents = inputs[p.category]
    u = row_uniforms(key, rows, 1)[:, 0]
    out = np.empty(len(rows), dtype=object)
    for i, (parent, ui) in enumerate(zip(parents, u, strict=True)):
        options = p.values.get(str(parent)) if parent is not None else None
        out[i] = options[int(ui * len(options))] if options else None
    return out


def _uniform(p: Any, key: int, rows: Ints, _: Any) -> Array:
    u = row_uniforms(key, rows, 1)[:, 0]
    if p.integer:
        lo, hi = math.ceil(p.low), math.floor(p.high)
        whole: Ints = np.minimum(lo + np.floor(u * (hi - lo + 1)), hi).astype(np.int64)
        return whole
    out: Floats = p.low + u * (p.high - p.low)
    return out


def _gaussian(p: Any, key: int, rows: Ints, _: Any) -> Array:
    u = row_uniforms(key, rows, 2)
    z = np.sqrt(-2.0 * np.log1p(-u[:, 0])) * np.cos(2.0 * math.pi * u[:, 1])
    out: Floats = p.mean + p.stddev * z
    return out


def _bernoulli(p: Any, key: int, rows: Ints, _: Any) -> Array:
    out: Ints = (row_uniforms(key, rows, 1)[:, 0] < p.p).astype(np.int64)
    return out


@lru_cache(maxsize=64)
def _discrete_cdf(kind: str, a: float, b: float) -> tuple[int, Floats] | None:
    """(first k, normalised CDF over a window holding all but ~1e-30 of the mass), or None
    when the window would exceed `_MAX_TABLE` entries (a normal approximation is then exact
    to far below sampling noise)."""
    if kind == "poisson":
        mean, sd, top = a, math.sqrt(a), math.inf
    else:
        mean, sd, top = a * b, math.sqrt(a * b * (1 - b)), a
    lo = max(0, math.floor(mean - 13 * sd - 10))
    hi = min(top, math.ceil(mean + 13 * sd + 25))
    if hi - lo > _MAX_TABLE:
        return None
    k = np.arange(lo, int(hi) + 1, dtype=np.float64)
    lg = np.vectorize(math.lgamma)
    if kind == "poisson":
        log_pmf = k * math.log(a) - a - lg(k + 1)
    elif b in (0.0, 1.0):
        log_pmf = np.where(k == (0 if b == 0 else a), 0.0, -np.inf)
    else:
        log_pmf = lg(a + 1) - lg(k + 1) - lg(a - k + 1) + k * math.log(b) + (a - k) * math.log1p(-b)
    cdf = np.cumsum(np.exp(log_pmf - log_pmf.max()))
    return lo, cdf / cdf[-1]


def _discrete(kind: str, a: float, b: float, u: Floats, top: float) -> Ints:
    """Inverse-CDF draws from `u` (shape (n, 2); the second column only feeds the normal
    approximation of very large means)."""
    table = _discrete_cdf(kind, a, b)
    if table is None:
        mean = a if kind == "poisson" else a * b
        sd = math.sqrt(a) if kind == "poisson" else math.sqrt(a * b * (1 - b))
        z = np.sqrt(-2.0 * np.log(u[:, 0])) * np.cos(2.0 * math.pi * u[:, 1])
        return np.clip(np.rint(mean + sd * z), 0, top).astype(np.int64)
    lo, cdf = table
    idx = np.searchsorted(cdf, u[:, 0], side="right")
    return lo + np.minimum(idx, len(cdf) - 1).astype(np.int64)


def _poisson(p: Any, key: int, rows: Ints, _: Any) -> Array:
    return _discrete("poisson", p.mean, 0.0, open_uniforms(key, rows, 2), math.inf)


def _binomial(p: Any, key: int, rows: Ints, _: Any) -> Array:
    return _discrete("binomial", float(p.n), p.p, open_uniforms(key, rows, 2), p.n)


@lru_cache(maxsize=64)
def _frozen(name: str, params: tuple[tuple[str, float], ...]) -> tuple[Any, bool, bool]:
    """(frozen distribution, has a closed-form inverse CDF, is discrete)."""
    import scipy.stats as st

    dist = getattr(st, name)
    base = st.rv_discrete if isinstance(dist, st.rv_discrete) else st.rv_continuous
    return dist(**dict(params)), type(dist)._ppf is not base._ppf, base is st.rv_discrete


def scipy_values(name: str, params: Mapping[str, float], key: int, rows: Ints) -> Floats:
    """Draws of `scipy.stats.<name>(**params)`, one per row (float64)."""
    frozen, has_ppf, _ = _frozen(name, tuple(sorted(params.items())))
    if has_ppf:
        return np.asarray(frozen.ppf(open_uniforms(key, rows, 1)[:, 0]), dtype=np.float64)
    out = np.empty(len(rows), dtype=np.float64)
    blocks = np.asarray(rows, dtype=np.int64) // _BLOCK
    for block in np.unique(blocks):
        where = blocks == block
        rng = np.random.default_rng([key, int(block)])
        values = np.asarray(frozen.rvs(size=_BLOCK, random_state=rng), dtype=np.float64)
        out[where] = values[np.asarray(rows)[where] % _BLOCK]
    return out


def _scipy(p: Any, key: int, rows: Ints, _: Any) -> Array:
    values = scipy_values(p.dist_name, p.dist_params, key, rows)
    if _frozen(p.dist_name, tuple(sorted(p.dist_params.items())))[2]:
        return np.rint(values).astype(np.int64)
    return values


def _bernoulli_mixture(p: Any, key: int, rows: Ints, _: Any) -> Array:
    on = row_uniforms(key ^ 0x5BD1E995, rows, 1)[:, 0] < p.p
    values = scipy_values(p.dist_name, p.dist_params, key, rows)
    out: Floats = np.where(on, values, 0.0)
    return out


def _bijection32(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    mask = np.uint64(0xFFFFFFFF)
    with np.errstate(over="ignore"):
        for mult in (0x7FEB352D, 0x846CA68B):
            x = (x ^ (x >> np.uint64(16))) & mask
            x = (x * np.uint64(mult)) & mask
        return (x ^ (x >> np.uint64(16))) & mask


def _uuid(p: Any, key: int, rows: Ints, _: Any) -> Array:
    n = len(rows)
    if p.short_form:
        r = np.asarray(rows, dtype=np.uint64)
        with np.errstate(over="ignore"):
            x = (r * np.uint64(0x9E3779B1) + np.uint64(key & 0xFFFFFFFF)) & np.uint64(0xFFFFFFFF)
        words = _bijection32(_bijection32(x) ^ np.uint64(key >> 32 & 0xFFFFFFFF))
        text, width = words.astype(">u4").tobytes().hex(), 8
    else:
        bits = row_bits(key, rows, 2)
        hi = (bits[:, 0] & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)
        lo = (bits[:, 1] & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)
        text, width = np.stack([hi, lo], axis=1).astype(">u8").tobytes().hex(), 32
    if p.uppercase:
        text = text.upper()
    prefix = p.prefix or ""
    return _objects([prefix + text[i * width : (i + 1) * width] for i in range(n)])


def _datetime(p: Any, key: int, rows: Ints, _: Any) -> Array:
    start = np.datetime64(p.start.replace(microsecond=0), "s")
    span = int((np.datetime64(p.end, "s") - start) // np.timedelta64(1, "s"))
    u = row_uniforms(key, rows, 1)[:, 0]
    seconds = start + np.floor(u * span).astype(np.int64).astype("timedelta64[s]")
    out: Array = seconds.astype(f"datetime64[{p.unit}]").astype("datetime64[s]")
    return out


def parse_datetimes(values: Sequence[Any], fmt: str | None) -> Array:
    """Datetime strings (ISO 8601, or `fmt`) and datetime/date objects (e.g. from a seed
    file's timestamp column) as datetime64[s]; NaT where missing or unreadable."""
    import pandas as pd

    kept = [v if isinstance(v, str | dt.date) else None for v in values]
    parsed = pd.to_datetime(pd.Series(kept, dtype=object), format=fmt or "ISO8601", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    out: Array = parsed.to_numpy(dtype="datetime64[s]")
    return out


def _timedelta(p: Any, key: int, rows: Ints, inputs: Mapping[str, Sequence[Any]]) -> Array:
    given = inputs[p.reference_column_name]
    base = given if isinstance(given, np.ndarray) and given.dtype.kind == "M" else None
    if base is None:
        base = parse_datetimes(given, None)
    u = row_uniforms(key, rows, 1)[:, 0]
    deltas = p.dt_min + np.floor(u * (p.dt_max - p.dt_min)).astype(np.int64)
    out: Array = base.astype("datetime64[s]") + deltas.astype(f"timedelta64[{p.unit}]")
    return out


_DRAWERS: dict[type[SamplerParams], Callable[[Any, int, Ints, Any], Array]] = {
    CategoryParams: _category,
    SubcategoryParams: _subcategory,
    UniformParams: _uniform,
    GaussianParams: _gaussian,
    BernoulliParams: _bernoulli,
    BinomialParams: _binomial,
    PoissonParams: _poisson,
    ScipyParams: _scipy,
    BernoulliMixtureParams: _bernoulli_mixture,
    UUIDParams: _uuid,
    DatetimeParams: _datetime,
    TimeDeltaParams: _timedelta,
}
