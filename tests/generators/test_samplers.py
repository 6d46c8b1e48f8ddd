"""Sampler generators: every type and param, distributions (fixed seeds, wide tolerances),
determinism across splits/buffer sizes/engines, conditional params, convert_to, constraints."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom import Designer
from rowloom.config import ConfigValidationError, DatasetConfig, RunConfig, SamplerColumnConfig
from rowloom.config.constraints import ColumnInequalityConstraint, ScalarInequalityConstraint
from rowloom.generators import BatchInput, build_generators
from rowloom.generators.base import RowFailure
from rowloom.generators.samplers import MAX_ATTEMPTS, SamplerGenerator
from rowloom.models.resources import ModelResourceCatalog

N = 20_000


def gen(kind: str, params: Mapping[str, Any], **extra: Any) -> SamplerGenerator:
    return SamplerGenerator(
        SamplerColumnConfig(name="s", sampler_type=kind, params=dict(params), **extra)  # type: ignore[arg-type]
    )


def batch(rows: Sequence[int], columns: Mapping[str, Sequence[Any]] | None = None) -> BatchInput:
    return BatchInput(seed=11, row_group=0, global_rows=list(rows), columns=dict(columns or {}))


def sample(kind: str, params: Mapping[str, Any], n: int = N, **extra: Any) -> list[Any]:
    return gen(kind, params, **extra).generate_batch(batch(range(n)))


def close(value: float, expected: float, sd: float, n: int = N) -> bool:
    """Within 5 standard errors (fixed seeds: a deterministic check, not a flaky one)."""
    return abs(value - expected) <= 5 * sd / math.sqrt(n)


SPLIT_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("category", {"values": ["a", 2, 3.5], "weights": [1, 2, 3]}, {}),
    ("uniform", {"low": -1, "high": 1, "decimal_places": 2}, {"convert_to": "str"}),
    ("gaussian", {"mean": 3, "stddev": 2}, {"convert_to": "int"}),
    ("bernoulli", {"p": 0.3}, {}),
    ("binomial", {"n": 12, "p": 0.25}, {}),
    ("poisson", {"mean": 7}, {}),
    ("scipy", {"dist_name": "gamma", "dist_params": {"a": 2}}, {}),
    ("scipy", {"dist_name": "zipf", "dist_params": {"a": 2.5}}, {}),  # no closed-form ppf
    ("bernoulli_mixture", {"p": 0.4, "dist_name": "expon", "dist_params": {"scale": 3}}, {}),
    ("uuid", {"prefix": "x-", "uppercase": True}, {}),
    ("uuid", {"short_form": True}, {}),
    ("datetime", {"start": "2020-01-01", "end": "2030-01-01", "unit": "M"}, {}),
    (
        "datetime",
        {"start": "2024-01-01", "end": "2024-01-02", "unit": "s"},
        {"convert_to": "%H:%M:%S"},
    ),
    ("person", {"locale": "en_US"}, {}),
    ("person_from_faker", {"locale": "ja_JP", "age_range": [10, 20]}, {}),
    (
        "uniform",
        {"low": 0, "high": 1},
        {"conditional_params": {"s2 == 'b'": {"low": 5, "high": 6}}},
    ),
]


@settings(max_examples=25, deadline=None)
@given(
    case=st.sampled_from(SPLIT_CASES),
    cuts=st.lists(st.integers(1, 2047), max_size=4, unique=True),
    start=st.integers(0, 5000),
)
def test_values_depend_only_on_the_global_row(
    case: tuple[str, dict[str, Any], dict[str, Any]], cuts: list[int], start: int
) -> None:
    kind, params, extra = case
    g = gen(kind, params, **extra)
    rows = list(range(start, start + 2048))
    upstream = {"s2": ["a", "b"] * 1024}
    whole = g.generate_batch(batch(rows, upstream))
    parts: list[Any] = []
    edges = [0, *sorted(cuts), len(rows)]
    for a, b in itertools.pairwise(edges):
        parts += g.generate_batch(batch(rows[a:b], {"s2": upstream["s2"][a:b]}))
    assert parts == whole
    assert len({str(v) for v in whole}) > 1


def test_categorical_and_discrete_distributions() -> None:
    counts = Counter(sample("category", {"values": ["a", "b", "c"], "weights": [1, 2, 7]}))
    for value, p in (("a", 0.1), ("b", 0.2), ("c", 0.7)):
        assert close(counts[value] / N, p, math.sqrt(p * (1 - p)))
    assert "z" not in sample("category", {"values": ["z", "y"], "weights": [0, 1]}, 500)
    bern = sample("bernoulli", {"p": 0.3})
    assert set(bern) == {0, 1} and close(statistics.fmean(bern), 0.3, math.sqrt(0.21))
    binom = sample("binomial", {"n": 20, "p": 0.3})
    assert min(binom) >= 0 and max(binom) <= 20
    assert close(statistics.fmean(binom), 6, math.sqrt(4.2))
    assert abs(statistics.pvariance(binom) - 4.2) < 0.3
    assert set(sample("binomial", {"n": 5, "p": 1.0}, 100)) == {5}
    assert set(sample("binomial", {"n": 0, "p": 0.5}, 100)) == {0}
    big = sample("binomial", {"n": 10**11, "p": 0.5}, 2000)  # normal approximation
    assert close(statistics.fmean(big), 5e10, math.sqrt(2.5e10), 2000)
    pois = sample("poisson", {"mean": 4.5})
    assert close(statistics.fmean(pois), 4.5, math.sqrt(4.5))
    assert abs(statistics.pvariance(pois) - 4.5) < 0.3
    huge = sample("poisson", {"mean": 1e9}, 2000)
    assert close(statistics.fmean(huge), 1e9, math.sqrt(1e9), 2000)


def test_continuous_distributions() -> None:
    uni = sample("uniform", {"low": 2, "high": 4, "decimal_places": 3})
    assert all(2 <= v <= 4 and round(v, 3) == v for v in uni)
    assert close(statistics.fmean(uni), 3, math.sqrt(1 / 3))
    ints = Counter(sample("uniform", {"low": 0.5, "high": 3.5, "integer": True}))
    assert set(ints) == {1, 2, 3}
    gauss = sample("gaussian", {"mean": -2, "stddev": 3})
    assert close(statistics.fmean(gauss), -2, 3)
    assert abs(statistics.stdev(gauss) - 3) < 0.1
    beta = sample(
        "scipy", {"dist_name": "beta", "dist_params": {"a": 2, "b": 5}, "decimal_places": 4}
    )
    assert all(0 < v < 1 for v in beta) and close(statistics.fmean(beta), 2 / 7, 0.16)
    zipf = sample("scipy", {"dist_name": "zipf", "dist_params": {"a": 3}})
    assert all(isinstance(v, int) and v >= 1 for v in zipf)
    assert abs(zipf.count(1) / N - 0.8319) < 0.02  # P(X=1) = 1/zeta(3)
    mix = sample(
        "bernoulli_mixture", {"p": 0.25, "dist_name": "uniform", "dist_params": {"loc": 10}}
    )
    assert close(sum(v == 0 for v in mix) / N, 0.75, math.sqrt(0.1875))
    assert all(v == 0 or 10 <= v <= 11 for v in mix)


def test_uuid_params() -> None:
    full = sample("uuid", {}, 2000)
    assert all(len(v) == 32 and v == v.lower() and v[12] == "4" for v in full)
    upper = sample("uuid", {"prefix": "ORD-", "uppercase": True}, 100)
    assert all(v.startswith("ORD-") and v[4:] == v[4:].upper() for v in upper)
    short = sample("uuid", {"short_form": True}, 200_000)
    assert {len(v) for v in short} == {8}
    assert len(set(short)) == len(short)  # unique across the dataset, not just likely so


def test_datetime_units_and_formats() -> None:
    for unit, check in {
        "Y": lambda d: (d.month, d.day, d.hour) == (1, 1, 0),
        "M": lambda d: (d.day, d.hour) == (1, 0),
        "D": lambda d: (d.hour, d.minute) == (0, 0),
        "h": lambda d: (d.minute, d.second) == (0, 0),
        "m": lambda d: d.second == 0,
        "s": lambda d: True,
    }.items():
        values = sample(
            "datetime", {"start": "2001-03-04 05:06:07", "end": "2011-01-01", "unit": unit}, 500
        )
        stamps = [dt.datetime.fromisoformat(v) for v in values]
        assert all(check(d) for d in stamps), unit
        assert all(dt.datetime(2001, 1, 1) <= d < dt.datetime(2011, 1, 1) for d in stamps)
        assert len(set(values)) > 5
    days = sample("datetime", {"start": "2024-01-01", "end": "2024-01-08"}, 5000)
    assert set(days) == {f"2024-01-0{d}T00:00:00" for d in range(1, 8)}  # end is exclusive
    fmt = sample(
        "datetime", {"start": "2024-01-01", "end": "2024-02-01"}, 10, convert_to="%d/%m/%Y"
    )
    assert all(len(v) == 10 and v.endswith("/01/2024") for v in fmt)
    legacy = sample(
        "datetime", {"start": "2024-01-01", "end": "2024-02-01", "format": "%Y%m%d"}, 10
    )
    assert all(v.startswith("202401") for v in legacy)


def test_timedelta_adds_to_its_reference_column() -> None:
    refs = ["2024-01-31T10:00:00", "2024-02-28T00:00:00", None, "2024-12-31T23:00:00"] * 250
    g = gen("timedelta", {"dt_min": 2, "dt_max": 5, "reference_column_name": "r", "unit": "h"})
    out = g.generate_batch(batch(range(1000), {"r": refs}))
    for ref, value in zip(refs, out, strict=True):
        if ref is None:
            assert value is None
            continue
        delta = dt.datetime.fromisoformat(value) - dt.datetime.fromisoformat(ref)
        assert dt.timedelta(hours=2) <= delta < dt.timedelta(hours=5)
    assert len(set(out)) > 4
    days = gen(
        "timedelta", {"dt_min": 0, "dt_max": 1, "reference_column_name": "r"}, convert_to="%Y-%m-%d"
    ).generate_batch(batch([0], {"r": ["2024-03-01 08:00"]}))
    assert days == ["2024-03-01"]
    objects = [dt.datetime(2024, 5, 6, 7), dt.date(2024, 5, 6)]  # e.g. a parquet timestamp column
    out = g.generate_batch(batch(range(2), {"r": objects}))
    assert [v[:10] for v in out] == ["2024-05-06", "2024-05-06"]


def test_convert_to() -> None:
    assert all(
        isinstance(v, int) and 1 <= v <= 5
        for v in sample("uniform", {"low": 1, "high": 5}, 500, convert_to="int")
    )
    floats = sample("binomial", {"n": 3, "p": 0.5}, 50, convert_to="float")
    assert all(isinstance(v, float) for v in floats)
    strs = sample("category", {"values": [1, 2]}, 50, convert_to="str")
    assert set(strs) == {"1", "2"}
    assert set(sample("category", {"values": ["1.4", "2.6"]}, 50, convert_to="int")) == {1, 3}
    assert set(sample("bernoulli", {"p": 0.5}, 50, convert_to="str")) == {"0", "1"}


def test_subcategory_follows_its_parent() -> None:
    g = gen("subcategory", {"category": "c", "values": {"fruit": ["apple", "pear"], "1": ["one"]}})
    out = g.generate_batch(batch(range(6), {"c": ["fruit", 1, None, "fruit", "1", "fruit"]}))
    assert out[1] == out[4] == "one" and out[2] is None
    assert {out[0], out[3], out[5]} <= {"apple", "pear"}


def test_conditional_params_pick_by_condition_last_match_wins() -> None:
    g = gen(
        "uniform",
        {"low": 0, "high": 1},
        conditional_params={
            "age > 20": {"low": 10, "high": 11},
            "age > 60": {"low": 20, "high": 21},
            "tier == 'gold'": {"low": 30, "high": 31},
        },
    )
    assert g.required_columns == ("age", "tier")
    ages = [10, 30, 70, 70] * 25
    tiers = ["x", "x", "x", "gold"] * 25
    out = g.generate_batch(batch(range(100), {"age": ages, "tier": tiers}))
    for age, tier, value in zip(ages, tiers, out, strict=True):
        expected = 30 if tier == "gold" else 20 if age > 60 else 10 if age > 20 else 0
        assert expected <= value < expected + 1
    broken = gen(
        "uniform", {"low": 0, "high": 1}, conditional_params={"age > 1": {"low": 2, "high": 3}}
    )
    failed = broken.generate_batch(batch(range(2), {"age": [5, "text"]}))
    assert 2 <= failed[0] < 3 and isinstance(failed[1], RowFailure)


def test_conditional_params_read_struct_fields() -> None:
    g = gen(
        "category", {"values": ["adult"]}, conditional_params={"p.age < 18": {"values": ["minor"]}}
    )
    out = g.generate_batch(batch(range(3), {"p": [{"age": 5}, {"age": 40}, {"age": 17}]}))
    assert out == ["minor", "adult", "minor"]


def constrained(constraints: list[Any], *columns: dict[str, Any]) -> dict[str, Any]:
    cols = columns or (
        {
            "name": "lo",
            "column_type": "sampler",
            "sampler_type": "uniform",
            "params": {"low": 0, "high": 8},
        },
        {
            "name": "hi",
            "column_type": "sampler",
            "sampler_type": "gaussian",
            "params": {"mean": 5, "stddev": 3},
        },
    )
    return {"columns": list(cols), "constraints": constraints, "seed": 4}


def test_constraints_hold_on_every_row_by_rejection() -> None:
    data = constrained(
        [
            {"target_column": "hi", "operator": "gt", "rhs": "lo"},
            {
                "target_column": "hi",
                "operator": "le",
                "rhs": 9.5,
                "constraint_type": "scalar_inequality",
            },
        ]
    )
    gens = build_generators(DatasetConfig.from_dict(data), ModelResourceCatalog([], []))
    lo = gens["lo"].generate_batch(batch(range(5000)))
    hi = gens["hi"].generate_batch(batch(range(5000), {"lo": lo}))
    assert all(h > low and h <= 9.5 for h, low in zip(hi, lo, strict=True))
    again = gens["hi"].generate_batch(batch(range(2500, 5000), {"lo": lo[2500:]}))
    assert again == hi[2500:]


def test_datetime_column_inequality() -> None:
    data = constrained(
        [{"target_column": "end", "operator": "gt", "rhs": "start"}],
        {
            "name": "start",
            "column_type": "sampler",
            "sampler_type": "datetime",
            "params": {"start": "2024-01-01", "end": "2024-03-01", "unit": "h"},
            "convert_to": "%m/%d/%Y %H:00",
        },
        {
            "name": "end",
            "column_type": "sampler",
            "sampler_type": "datetime",
            "params": {"start": "2024-02-01", "end": "2024-04-01", "unit": "h"},
        },
    )
    gens = build_generators(DatasetConfig.from_dict(data), ModelResourceCatalog([], []))
    start = gens["start"].generate_batch(batch(range(3000)))
    end = gens["end"].generate_batch(batch(range(3000), {"start": start}))
    for s, e in zip(start, end, strict=True):
        assert dt.datetime.fromisoformat(e) > dt.datetime.strptime(s, "%m/%d/%Y %H:00")


def test_improbable_constraints_fail_before_the_run_and_drop_rows_at_run_time() -> None:
    data = constrained(
        [
            {"target_column": "hi", "operator": "gt", "rhs": 25}
        ],  # 6.7 sigma: in support, ~never drawn
    )
    with pytest.raises(ConfigValidationError) as err:
        build_generators(DatasetConfig.from_dict(data), ModelResourceCatalog([], []))
    assert err.value.issues[0].code == "constraint_unsatisfiable"
    assert err.value.issues[0].location == "constraints.hi"
    g = SamplerGenerator(
        SamplerColumnConfig(name="hi", sampler_type="gaussian", params={}),
        [ScalarInequalityConstraint(target_column="hi", operator="gt", rhs=4.5)],
    )
    out = g.generate_batch(batch(range(40)))
    dropped = [v for v in out if isinstance(v, RowFailure)]
    assert dropped and all(v.reason == "constraint_unmet" for v in dropped)
    assert str(MAX_ATTEMPTS) in dropped[0].message
    assert all(v > 4.5 for v in out if not isinstance(v, RowFailure))


def test_missing_rhs_values_do_not_block_a_row() -> None:
    g = SamplerGenerator(
        SamplerColumnConfig(name="x", sampler_type="uniform", params={"low": 0, "high": 1}),
        [ColumnInequalityConstraint(target_column="x", operator="lt", rhs="y")],
    )
    out = g.generate_batch(batch(range(3), {"y": [None, 0.5, None]}))
    assert all(isinstance(v, float) for v in out) and out[1] < 0.5


def dataset(n: int) -> DatasetConfig:
    cols = [
        {
            "name": "tier",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": ["a", "b"]},
        },
        {
            "name": "when",
            "column_type": "sampler",
            "sampler_type": "datetime",
            "params": {"start": "2024-01-01", "end": "2025-01-01", "unit": "m"},
        },
        {
            "name": "later",
            "column_type": "sampler",
            "sampler_type": "timedelta",
            "params": {"dt_min": 1, "dt_max": 48, "reference_column_name": "when", "unit": "h"},
        },
        {
            "name": "price",
            "column_type": "sampler",
            "sampler_type": "uniform",
            "params": {"low": 1, "high": 50},
            "conditional_params": {"tier == 'b'": {"low": 50, "high": 99}},
            "convert_to": "int",
        },
        {
            "name": "cost",
            "column_type": "sampler",
            "sampler_type": "gaussian",
            "params": {"mean": 40, "stddev": 20, "decimal_places": 2},
        },
        {
            "name": "p",
            "column_type": "sampler",
            "sampler_type": "person",
            "params": {"locale": "en_US"},
        },
        {
            "name": "k",
            "column_type": "sampler",
            "sampler_type": "binomial",
            "params": {"n": 9, "p": 0.5},
        },
        {
            "name": "id",
            "column_type": "sampler",
            "sampler_type": "uuid",
            "params": {"short_form": True},
        },
        {
            "name": "line",
            "column_type": "expression",
            "expr": "{{ p.first_name }} in {{ p.state }}: {{ price }}",
        },
    ]
    constraints = [{"target_column": "cost", "operator": "lt", "rhs": "price"}]
    return DatasetConfig.from_dict(
        {
            "columns": cols,
            "constraints": constraints,
            "seed": 9,
            "run": RunConfig(buffer_size=n).model_dump(),
        }
    )


@pytest.mark.parametrize("engine,buffer_size", [("async", 7), ("async", 64), ("sequential", 13)])
def test_same_dataset_for_any_engine_and_buffer_size(engine: str, buffer_size: int) -> None:
    reference = Designer(engine="sequential").preview(dataset(100), 60)
    result = Designer(engine=engine).preview(dataset(buffer_size), 60)  # type: ignore[arg-type]
    assert result.summary.status == "complete" and len(result) == 60
    assert result.output_hash() == reference.output_hash()
    data = result.data
    assert all(c < p for c, p in zip(data["cost"], data["price"], strict=True))
