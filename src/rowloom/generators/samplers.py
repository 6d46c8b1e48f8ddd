"""Sampler columns: seeded, deterministic, vectorised over a row group.

Each value depends only on (seed, column name, global row index), through a counter-based
hash (splitmix64), so values do not change with `buffer_size`, row-group order or engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rowloom.config.columns import (
    BernoulliParams,
    CategoryParams,
    DatetimeParams,
    GaussianParams,
    PersonParams,
    PoissonParams,
    SamplerColumnConfig,
    SubcategoryParams,
    UniformParams,
    UUIDParams,
)
from rowloom.generators.base import BatchGenerator, BatchInput

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def stream_key(seed: int, *parts: str) -> int:
    """A 64-bit key for one (seed, name...) random stream."""
    digest = hashlib.blake2b("\x1f".join([str(seed), *parts]).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_bits(key: int, rows: Sequence[int], draws: int) -> npt.NDArray[np.uint64]:
    """`draws` independent 64-bit values per row, shape (len(rows), draws)."""
    r = np.asarray(rows, dtype=np.uint64).reshape(-1, 1)
    j = np.arange(draws, dtype=np.uint64).reshape(1, -1)
    with np.errstate(over="ignore"):
        x = (np.uint64(key) ^ (r * np.uint64(0xD1B54A32D192ED03))) + j * _GOLDEN
    return _splitmix64(_splitmix64(x))


def row_uniforms(key: int, rows: Sequence[int], draws: int) -> npt.NDArray[np.float64]:
    """Uniforms in [0, 1), shape (len(rows), draws), one stream per row."""
    bits = row_bits(key, rows, draws) >> np.uint64(11)
    return bits.astype(np.float64) * (1.0 / (1 << 53))


class SamplerGenerator(BatchGenerator):
    """All sampler types; the typed params are validated once at construction."""

    def __init__(self, config: SamplerColumnConfig) -> None:
        super().__init__(config)
        self.params = config.typed_params()
        self.sampler_type = config.sampler_type

    def generate_batch(self, batch: BatchInput) -> list[Any]:
        key = stream_key(batch.seed, "sampler", self.name)
        rows = batch.global_rows
        p = self.params
        values: list[Any]
        if isinstance(p, CategoryParams):
            values = _category(p.values, p.weights, row_uniforms(key, rows, 1)[:, 0])
        elif isinstance(p, SubcategoryParams):
            parents = batch.columns[p.category]
            u = row_uniforms(key, rows, 1)[:, 0]
            values = []
            for parent, ui in zip(parents, u, strict=True):
                options = p.values.get(str(parent))
                values.append(None if not options else options[int(ui * len(options))])
        elif isinstance(p, UniformParams):
            values = _uniform(p, row_uniforms(key, rows, 1)[:, 0])
        elif isinstance(p, GaussianParams):
            u = row_uniforms(key, rows, 2)
            z = np.sqrt(-2.0 * np.log1p(-u[:, 0])) * np.cos(2.0 * math.pi * u[:, 1])
            out = p.mean + p.stddev * z
            values = [_round(float(v), p.decimal_places) for v in out]
        elif isinstance(p, BernoulliParams):
            values = [int(v) for v in (row_uniforms(key, rows, 1)[:, 0] < p.p)]
        elif isinstance(p, PoissonParams):
            values = _poisson(p.mean, row_uniforms(key, rows, 1)[:, 0])
        elif isinstance(p, UUIDParams):
            bits = row_bits(key, rows, 2)
            values = [_uuid(int(a), int(b), p) for a, b in bits]
        elif isinstance(p, DatetimeParams):
            values = _datetimes(p, row_uniforms(key, rows, 1)[:, 0])
        elif isinstance(p, PersonParams):
            values = _people(p, row_bits(key, rows, 1)[:, 0])
        else:  # pragma: no cover - config validation makes this unreachable
            raise AssertionError(f"unhandled sampler {self.sampler_type}")
        return values


def _category(
    options: Sequence[Any], weights: Sequence[float] | None, u: npt.NDArray[np.float64]
) -> list[Any]:
    w = np.asarray(weights if weights is not None else [1.0] * len(options), dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(options) - 1)
    return [options[i] for i in idx]


def _round(value: float, places: int | None) -> float:
    return round(value, places) if places is not None else value


def _uniform(p: UniformParams, u: npt.NDArray[np.float64]) -> list[Any]:
    if p.integer:
        lo, hi = math.ceil(p.low), math.floor(p.high)
        return [int(v) for v in np.minimum(lo + np.floor(u * (hi - lo + 1)), hi)]
    out = p.low + u * (p.high - p.low)
    return [_round(float(v), p.decimal_places) for v in out]


def _poisson(mean: float, u: npt.NDArray[np.float64]) -> list[int]:
    k_max = int(mean + 12 * math.sqrt(mean) + 20)
    k = np.arange(k_max + 1)
    log_pmf = k * math.log(mean) - mean - np.array([math.lgamma(i + 1) for i in k])
    cdf = np.cumsum(np.exp(log_pmf))
    return [int(v) for v in np.minimum(np.searchsorted(cdf, u, side="right"), k_max)]


def _uuid(a: int, b: int, p: UUIDParams) -> str:
    value = uuid.UUID(int=(a << 64) | b, version=4)
    text = value.hex if p.short_form else str(value)
    return p.prefix + text


_UNIT_SECONDS = {"D": 86400, "h": 3600, "m": 60, "s": 1}


def _datetimes(p: DatetimeParams, u: npt.NDArray[np.float64]) -> list[str]:
    step = _UNIT_SECONDS[p.unit]
    span = int((p.end - p.start).total_seconds()) // step
    out = []
    for ui in u:
        when = p.start + dt.timedelta(seconds=int(ui * (span + 1)) * step)
        out.append(when.strftime(p.format) if p.format else when.isoformat())
    return out


_FAKERS: dict[str, Any] = {}


def _people(p: PersonParams, seeds: npt.NDArray[np.uint64]) -> list[dict[str, Any]]:
    from faker import Faker

    fake = _FAKERS.get(p.locale)
    if fake is None:
        fake = _FAKERS[p.locale] = Faker(p.locale)
    out = []
    for s in seeds:
        fake.seed_instance(int(s))
        sex = fake.random_element(("female", "male"))
        first = fake.first_name_female() if sex == "female" else fake.first_name_male()
        out.append(
            {
                "first_name": first,
                "last_name": fake.last_name(),
                "sex": sex,
                "age": fake.random_int(p.min_age, p.max_age),
                "city": fake.city(),
                "country": fake.current_country() if hasattr(fake, "current_country") else "",
                "occupation": fake.job(),
            }
        )
    return out
