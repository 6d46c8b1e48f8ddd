"""Sampler params, conditional params, convert_to and constraints as configs: Data Designer's
shapes load, hostile values are typed issues naming the column and field, shapes are declared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rowloom.config import (
    ColumnInequalityConstraint,
    ConfigValidationError,
    DatasetConfig,
    PersonParams,
    SamplerColumnConfig,
    ScalarInequalityConstraint,
    UniformParams,
)
from rowloom.config.samplers import PERSON_FIELD_NAMES, person_shape

ROWLOOM = Path(sys.executable).parent / "rowloom"


def sampler(name: str, kind: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "column_type": "sampler", "sampler_type": kind, "params": params, **extra}


def config(*columns: dict[str, Any], constraints: list[Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"columns": list(columns)}
    if constraints is not None:
        data["constraints"] = constraints
    return data


def issues(data: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    with pytest.raises(ConfigValidationError) as err:
        DatasetConfig.from_dict(data)
    return [(i.code, i.location, i.field) for i in err.value.issues]


def test_data_designer_column_shape_loads_and_keeps_fingerprints() -> None:
    dd = {
        "name": "n",
        "column_type": "sampler",
        "sampler_type": "uniform",
        "params": {"sampler_type": "uniform", "low": 1.0, "high": 5.0, "decimal_places": None},
        "conditional_params": {},
        "convert_to": "int",
    }
    col = DatasetConfig.from_dict(config(dd)).columns[0]
    assert isinstance(col, SamplerColumnConfig)
    assert col.conditional_params is None and "sampler_type" not in col.params
    # configs without the new fields dump (and fingerprint) exactly as before
    plain = DatasetConfig.from_dict(config(sampler("u", "uuid", {})))
    assert plain.to_dict()["columns"][0] == {
        "name": "u",
        "drop": False,
        "column_type": "sampler",
        "sampler_type": "uuid",
        "params": {},
    }
    assert "constraints" not in plain.to_dict()
    mismatch = dict(dd, params={"sampler_type": "gaussian"})
    assert issues(config(mismatch))[0][1] == "columns.n"


def test_params_models_are_accepted_from_python() -> None:
    col = SamplerColumnConfig(name="x", sampler_type="uniform", params=UniformParams(low=0, high=2))
    assert col.params == {"low": 0.0, "high": 2.0}
    person = SamplerColumnConfig(
        name="p", sampler_type="person", params=PersonParams(locale="fr_FR", sex="Female")
    )
    assert person.typed_params().sex == "Female"


def test_dd_defaults_and_legacy_names() -> None:
    assert PersonParams().age_range == [18, 114]
    assert PersonParams.model_validate({"min_age": 30, "max_age": 40}).age_range == [30, 40]
    assert PersonParams.model_validate({"sex": "male"}).sex == "Male"
    dt = SamplerColumnConfig(
        name="d", sampler_type="datetime", params={"start": "Jan 5 2024", "end": "2024-02-01"}
    ).typed_params()
    assert dt.unit == "D" and dt.start.day == 5


HOSTILE = [
    (sampler("x", "binomial", {"n": -3, "p": 0.5}), "invalid_sampler_params", "params.n"),
    (sampler("x", "binomial", {"n": 3, "p": 1.5}), "invalid_sampler_params", "params.p"),
    (sampler("x", "uniform", {"low": 5, "high": 5}), "invalid_sampler_params", "params"),
    (sampler("x", "uniform", {"low": 0, "high": "inf"}), "invalid_sampler_params", "params"),
    (sampler("x", "poisson", {"mean": -1}), "invalid_sampler_params", "params.mean"),
    (
        sampler("x", "category", {"values": [1, 2], "weights": [-1, 2]}),
        "invalid_sampler_params",
        "params",
    ),
    (sampler("x", "scipy", {"dist_name": "nrom"}), "unknown_distribution", "params.dist_name"),
    (
        sampler("x", "scipy", {"dist_name": "beta", "dist_params": {"a": -1, "b": 2}}),
        "invalid_sampler_params",
        "params.dist_params",
    ),
    (
        sampler("x", "scipy", {"dist_name": "beta", "dist_params": {"a": 1, "c": 2}}),
        "invalid_sampler_params",
        "params.dist_params",
    ),
    (
        sampler("x", "bernoulli_mixture", {"p": 0.5, "dist_name": "gama"}),
        "unknown_distribution",
        "params.dist_name",
    ),
    (
        sampler("x", "person_from_faker", {"locale": "en_XX"}),
        "invalid_sampler_params",
        "params.locale",
    ),
    (sampler("x", "person", {"age_range": [50, 20]}), "invalid_sampler_params", "params.age_range"),
    (
        sampler("x", "person", {"age_range": [10, 200]}),
        "invalid_sampler_params",
        "params.age_range",
    ),
    (
        sampler("x", "person", {"with_synthetic_personas": True}),
        "invalid_sampler_params",
        "params.with_synthetic_personas",
    ),
    (
        sampler("x", "person", {"select_field_values": {"stat": ["NY"]}}),
        "invalid_sampler_params",
        "params.select_field_values",
    ),
    (
        sampler("x", "timedelta", {"dt_min": 5, "dt_max": 2, "reference_column_name": "x"}),
        "invalid_sampler_params",
        "params",
    ),
    (
        sampler("x", "timedelta", {"dt_min": 0, "dt_max": 2, "reference_column_name": "nope"}),
        "unknown_reference",
        "params.reference_column_name",
    ),
    (
        sampler("x", "datetime", {"start": "2024-13-45", "end": "2025-01-01"}),
        "invalid_sampler_params",
        "params.start",
    ),
    (
        sampler("x", "datetime", {"start": "2024-01-01", "end": "2025-01-01", "unit": "W"}),
        "invalid_sampler_params",
        "params.unit",
    ),
    (
        sampler("x", "datetime", {"start": "2024-01-01", "end": "2025-01-01"}, convert_to="int"),
        "invalid_convert_to",
        "convert_to",
    ),
    (
        sampler("x", "category", {"values": ["a", "b"]}, convert_to="int"),
        "invalid_convert_to",
        "convert_to",
    ),
    (
        sampler("x", "uniform", {"low": 0, "high": 1}, convert_to="bool"),
        "invalid_convert_to",
        "convert_to",
    ),
    (sampler("x", "uuid", {}, convert_to="int"), "invalid_convert_to", "convert_to"),
    (
        sampler(
            "x",
            "uniform",
            {"low": 0, "high": 1},
            conditional_params={"zz > 1": {"low": 1, "high": 2}},
        ),
        "unknown_reference",
        "conditional_params.zz > 1",
    ),
    (
        sampler(
            "x", "uniform", {"low": 0, "high": 1}, conditional_params={"x >": {"low": 1, "high": 2}}
        ),
        "template_syntax",
        "conditional_params.x >",
    ),
    (
        sampler(
            "x",
            "uniform",
            {"low": 0, "high": 1},
            conditional_params={"1 > 0": {"low": 3, "high": 2}},
        ),
        "invalid_sampler_params",
        "conditional_params.1 > 0",
    ),
]


@pytest.mark.parametrize(("column", "code", "field"), HOSTILE)
def test_hostile_sampler_params_are_typed_issues(
    column: dict[str, Any], code: str, field: str
) -> None:
    found = issues(config(column))
    assert (code, "columns.x", field) in found, found


def test_did_you_mean_in_messages() -> None:
    with pytest.raises(ConfigValidationError) as err:
        DatasetConfig.from_dict(
            config(
                sampler("x", "scipy", {"dist_name": "nrom"}),
                sampler("p", "person_from_faker", {"locale": "en_UZ"}),
            )
        )
    text = str(err.value)
    assert "did you mean 'norm'" in text and "did you mean 'en_US'" in text


CONSTRAINTS = [
    ({"target_column": "u", "operator": "gt", "rhs": 5}, "constraint_unsatisfiable", "rhs"),
    ({"target_column": "u", "operator": "lt", "rhs": "v"}, "constraint_unsatisfiable", "rhs"),
    ({"target_column": "u", "operator": "lt", "rhs": "nope"}, "invalid_constraint", "rhs"),
    ({"target_column": "u", "operator": "lt", "rhs": "u"}, "invalid_constraint", "rhs"),
    ({"target_column": "u", "operator": "lt", "rhs": "d"}, "invalid_constraint", "rhs"),
    ({"target_column": "id", "operator": "lt", "rhs": 3}, "invalid_constraint", "target_column"),
    ({"target_column": "e", "operator": "lt", "rhs": 3}, "invalid_constraint", "target_column"),
    ({"target_column": "d", "operator": "lt", "rhs": 3}, "invalid_constraint", "rhs"),
    ({"target_column": "b", "operator": "gt", "rhs": 1}, "constraint_unsatisfiable", "rhs"),
]
BASE = [
    sampler("u", "uniform", {"low": 0, "high": 1}),
    sampler("v", "uniform", {"low": -5, "high": -1}),
    sampler("d", "datetime", {"start": "2024-01-01", "end": "2025-01-01"}),
    sampler("id", "uuid", {}),
    sampler("b", "bernoulli", {"p": 0.3}),
    {"name": "e", "column_type": "expression", "expr": "{{ u }}"},
]


@pytest.mark.parametrize(("constraint", "code", "field"), CONSTRAINTS)
def test_bad_constraints_are_typed_issues(
    constraint: dict[str, Any], code: str, field: str
) -> None:
    found = issues(config(*BASE, constraints=[constraint]))
    assert (code, f"constraints.{constraint['target_column']}", field) in found, found


def test_constraints_combine_and_cycles_are_refused() -> None:
    both = [
        {"target_column": "u", "operator": "gt", "rhs": 0.8},
        {"target_column": "u", "operator": "lt", "rhs": 0.2},
    ]
    assert ("constraint_unsatisfiable", "constraints.u", "rhs") in issues(
        config(*BASE, constraints=both)
    )
    cycle = [
        {"target_column": "u", "operator": "gt", "rhs": "v"},
        {"target_column": "v", "operator": "lt", "rhs": "u"},
    ]
    assert ("dependency_cycle", "columns.u", None) in issues(config(*BASE, constraints=cycle))


def test_constraint_types_follow_rhs_when_untagged() -> None:
    cfg = DatasetConfig.from_dict(
        config(
            *BASE,
            constraints=[
                {"target_column": "u", "operator": "gt", "rhs": "v"},
                {"target_column": "u", "operator": "lt", "rhs": "0.9"},
                {
                    "target_column": "u",
                    "operator": "ge",
                    "rhs": 0.1,
                    "constraint_type": "scalar_inequality",
                },
            ],
        )
    )
    kinds = [type(c) for c in cfg.constraints or []]
    assert kinds == [
        ColumnInequalityConstraint,
        ScalarInequalityConstraint,
        ScalarInequalityConstraint,
    ]
    assert cfg.dependencies["u"] == ("v",)
    assert DatasetConfig.from_dict(cfg.to_dict()) == cfg


def test_output_shapes() -> None:
    cfg = DatasetConfig.from_dict(
        config(
            sampler("p", "person", {}),
            sampler("n", "gaussian", {}, convert_to="int"),
            sampler(
                "c",
                "category",
                {"values": ["a", "b"]},
                conditional_params={"n > 0": {"values": ["z"]}},
            ),
            sampler("s", "uniform", {"low": 0, "high": 1}, convert_to="str"),
        )
    )
    shapes = {c.name: c.output_shape() for c in cfg.columns}
    assert shapes["p"] == person_shape()
    assert set(shapes["p"]["properties"]) == set(PERSON_FIELD_NAMES)
    assert {"state", "zipcode", "email_address", "birth_date", "ssn"} <= set(PERSON_FIELD_NAMES)
    assert shapes["n"] == {"type": "integer"}
    assert shapes["c"] == {"type": "string", "enum": ["a", "b", "z"]}
    assert shapes["s"] == {"type": "string"}
    jsonschema.Draft202012Validator.check_schema(shapes["p"])


def test_missing_scipy_is_a_typed_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    found = issues(config(sampler("x", "scipy", {"dist_name": "norm"})))
    assert found == [("missing_dependency", "columns.x", "params.dist_name")]


def test_cli_reports_hostile_params_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            config(
                sampler("n", "binomial", {"n": -1, "p": 0.5}),
                sampler("s", "uniform", {"low": 3, "high": 1}),
                constraints=[{"target_column": "n", "operator": "gt", "rhs": 99}],
            )
        )
    )
    done = subprocess.run(
        [str(ROWLOOM), "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert "columns.n.params.n" in done.stderr and "columns.s.params:" in done.stderr


def test_templates_and_conditions_read_only_person_fields() -> None:
    person = sampler("customer", "person", {})
    ok = {
        "name": "line",
        "column_type": "expression",
        "expr": "{{ customer.state }} {{ customer.zipcode }}",
    }
    DatasetConfig.from_dict(config(person, ok))
    typo = {"name": "line", "column_type": "expression", "expr": "{{ customer.stat }}"}
    with pytest.raises(ConfigValidationError) as err:
        DatasetConfig.from_dict(config(person, typo))
    assert err.value.codes == ("unknown_field",)
    assert "did you mean 'state'" in str(err.value)
    conditional = sampler(
        "tier",
        "category",
        {"values": ["a"]},
        conditional_params={"customer.agee > 60": {"values": ["b"]}},
    )
    found = issues(config(person, conditional))
    assert found == [("unknown_field", "columns.tier", "conditional_params.customer.agee > 60")]
