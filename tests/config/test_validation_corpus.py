"""A corpus of malformed configs, each with the typed error it must produce (code and place)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rowloom.config import ConfigFileError, ConfigValidationError, DatasetConfig

BASE: dict[str, Any] = {
    "providers": [
        {"name": "sim", "provider_type": "simulated"},
        {
            "name": "remote",
            "provider_type": "openai",
            "endpoint": "http://127.0.0.1:9/v1",
            "api_key_env": "ROWLOOM_TEST_KEY_UNSET",
        },
    ],
    "models": [
        {"alias": "writer", "model": "m-writer", "provider": "sim"},
        {
            "alias": "embedder",
            "model": "m-embed",
            "provider": "sim",
            "generation_kind": "embedding",
        },
    ],
    "columns": [
        {
            "name": "topic",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": ["a", "b"]},
        },
        {
            "name": "draft",
            "column_type": "llm_text",
            "model_alias": "writer",
            "prompt": "Write about {{ topic }}",
        },
    ],
}


def with_column(col: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["columns"].append(col)
    return data


def edit(fn: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    fn(data)
    return data


def sampler(name: str, sampler_type: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "column_type": "sampler", "sampler_type": sampler_type, "params": params}


# (id, config, expected code, expected location, expected field prefix)
CORPUS: list[tuple[str, dict[str, Any], str, str, str | None]] = [
    (
        "unknown template reference",
        with_column(
            {
                "name": "x",
                "column_type": "llm_text",
                "model_alias": "writer",
                "prompt": "{{ nope }}",
            }
        ),
        "unknown_reference",
        "columns.x",
        "prompt",
    ),
    (
        "unknown reference in system prompt",
        with_column(
            {
                "name": "x",
                "column_type": "llm_text",
                "model_alias": "writer",
                "prompt": "hi",
                "system_prompt": "{{ ghost }}",
            }
        ),
        "unknown_reference",
        "columns.x",
        "system_prompt",
    ),
    (
        "unknown reference in expression",
        with_column({"name": "x", "column_type": "expression", "expr": "{{ missing | upper }}"}),
        "unknown_reference",
        "columns.x",
        "expr",
    ),
    (
        "unknown reference in skip_when",
        with_column(
            {
                "name": "x",
                "column_type": "expression",
                "expr": "{{ topic }}",
                "skip_when": "{{ absent == 1 }}",
            }
        ),
        "unknown_reference",
        "columns.x",
        "skip.when",
    ),
    (
        "template syntax error",
        with_column({"name": "x", "column_type": "expression", "expr": "{{ topic "}),
        "template_syntax",
        "columns.x",
        "expr",
    ),
    (
        "self reference",
        with_column({"name": "x", "column_type": "expression", "expr": "{{ x }}"}),
        "self_reference",
        "columns.x",
        "expr",
    ),
    (
        "two-column cycle",
        edit(
            lambda d: d["columns"].extend(
                [
                    {"name": "p", "column_type": "expression", "expr": "{{ q }}"},
                    {"name": "q", "column_type": "expression", "expr": "{{ p }}"},
                ]
            )
        ),
        "dependency_cycle",
        "columns.p",
        None,
    ),
    (
        "three-column cycle through llm",
        edit(
            lambda d: d["columns"].extend(
                [
                    {"name": "p", "column_type": "expression", "expr": "{{ r }}"},
                    {
                        "name": "q",
                        "column_type": "llm_text",
                        "model_alias": "writer",
                        "prompt": "{{ p }}",
                    },
                    {"name": "r", "column_type": "expression", "expr": "{{ q }}"},
                ]
            )
        ),
        "dependency_cycle",
        "columns.p",
        None,
    ),
    (
        "duplicate column name",
        with_column({"name": "topic", "column_type": "expression", "expr": "x"}),
        "duplicate_column",
        "columns.topic",
        "name",
    ),
    (
        "duplicate model alias",
        edit(lambda d: d["models"].append({"alias": "writer", "model": "z", "provider": "sim"})),
        "duplicate_alias",
        "models.writer",
        "alias",
    ),
    (
        "duplicate provider",
        edit(lambda d: d["providers"].append({"name": "sim", "provider_type": "simulated"})),
        "duplicate_provider",
        "providers.sim",
        "name",
    ),
    (
        "unknown model alias",
        with_column(
            {"name": "x", "column_type": "llm_text", "model_alias": "ghost", "prompt": "hi"}
        ),
        "unknown_model_alias",
        "columns.x",
        "model_alias",
    ),
    (
        "unknown alias in custom column",
        with_column(
            {
                "name": "x",
                "column_type": "custom",
                "function": "builtins:len",
                "model_aliases": ["ghost"],
            }
        ),
        "unknown_model_alias",
        "columns.x",
        "model_aliases",
    ),
    (
        "embedding column on chat model",
        with_column(
            {
                "name": "x",
                "column_type": "embedding",
                "model_alias": "writer",
                "target_column": "draft",
            }
        ),
        "wrong_generation_kind",
        "columns.x",
        "model_alias",
    ),
    (
        "chat column on embedding model",
        with_column(
            {"name": "x", "column_type": "llm_text", "model_alias": "embedder", "prompt": "hi"}
        ),
        "wrong_generation_kind",
        "columns.x",
        "model_alias",
    ),
    (
        "embedding target missing",
        with_column(
            {
                "name": "x",
                "column_type": "embedding",
                "model_alias": "embedder",
                "target_column": "nothing",
            }
        ),
        "unknown_reference",
        "columns.x",
        "target_column",
    ),
    (
        "unknown provider in model",
        edit(lambda d: d["models"].append({"alias": "z", "model": "z", "provider": "nowhere"})),
        "unknown_provider",
        "models.z",
        "provider",
    ),
    (
        "category without values",
        with_column(sampler("x", "category", {"values": []})),
        "invalid_sampler_params",
        "columns.x",
        "params.values",
    ),
    (
        "category weights length",
        with_column(sampler("x", "category", {"values": ["a"], "weights": [1, 2]})),
        "invalid_sampler_params",
        "columns.x",
        "params",
    ),
    (
        "uniform high below low",
        with_column(sampler("x", "uniform", {"low": 5, "high": 1})),
        "invalid_sampler_params",
        "columns.x",
        "params",
    ),
    (
        "gaussian negative stddev",
        with_column(sampler("x", "gaussian", {"stddev": -1})),
        "invalid_sampler_params",
        "columns.x",
        "params.stddev",
    ),
    (
        "bernoulli p above 1",
        with_column(sampler("x", "bernoulli", {"p": 1.5})),
        "invalid_sampler_params",
        "columns.x",
        "params.p",
    ),
    (
        "poisson non-positive mean",
        with_column(sampler("x", "poisson", {"mean": 0})),
        "invalid_sampler_params",
        "columns.x",
        "params.mean",
    ),
    (
        "datetime end before start",
        with_column(sampler("x", "datetime", {"start": "2024-02-01", "end": "2024-01-01"})),
        "invalid_sampler_params",
        "columns.x",
        "params",
    ),
    (
        "unknown sampler param",
        with_column(sampler("x", "uuid", {"prefx": "a"})),
        "invalid_sampler_params",
        "columns.x",
        "params.prefx",
    ),
    (
        "subcategory unknown parent",
        with_column(sampler("x", "subcategory", {"category": "nope", "values": {"a": ["1"]}})),
        "unknown_reference",
        "columns.x",
        "params.category",
    ),
    (
        "subcategory missing a category",
        with_column(sampler("x", "subcategory", {"category": "topic", "values": {"a": ["1"]}})),
        "invalid_sampler_params",
        "columns.x",
        "params.values",
    ),
    (
        "person bad ages",
        with_column(sampler("x", "person", {"min_age": 50, "max_age": 20})),
        "invalid_sampler_params",
        "columns.x",
        "params",
    ),
    (
        "unknown sampler type",
        with_column(sampler("x", "zipf", {})),
        "literal_error",
        "columns.x",
        "sampler_type",
    ),
    (
        "unknown column type",
        with_column({"name": "x", "column_type": "magic"}),
        "union_tag_invalid",
        "columns.x",
        None,
    ),
    (
        "missing column type",
        with_column({"name": "x"}),
        "union_tag_not_found",
        "columns.x",
        "column_type",
    ),
    (
        "bad column name",
        with_column({"name": "1bad", "column_type": "expression", "expr": "x"}),
        "string_pattern_mismatch",
        "columns.1bad",
        "name",
    ),
    (
        "unknown field on column",
        with_column({"name": "x", "column_type": "expression", "expr": "x", "colour": "red"}),
        "extra_forbidden",
        "columns.x",
        "colour",
    ),
    (
        "llm_text without prompt",
        with_column({"name": "x", "column_type": "llm_text", "model_alias": "writer"}),
        "missing",
        "columns.x",
        "prompt",
    ),
    (
        "judge with no options",
        with_column(
            {
                "name": "x",
                "column_type": "llm_judge",
                "model_alias": "writer",
                "prompt": "p",
                "scores": [{"name": "s", "description": "d", "options": {}}],
            }
        ),
        "too_short",
        "columns.x",
        "scores",
    ),
    (
        "structured with non-object schema",
        with_column(
            {
                "name": "x",
                "column_type": "llm_structured",
                "model_alias": "writer",
                "prompt": "p",
                "output_format": {"type": "string"},
            }
        ),
        "value_error",
        "columns.x",
        "output_format",
    ),
    (
        "custom with unimportable function",
        with_column({"name": "x", "column_type": "custom", "function": "no.such.module:fn"}),
        "value_error",
        "columns.x",
        "generator_function",
    ),
    (
        "custom requiring unknown column",
        with_column(
            {
                "name": "x",
                "column_type": "custom",
                "function": "builtins:len",
                "required_columns": ["ghost"],
            }
        ),
        "unknown_reference",
        "columns.x",
        "required_columns",
    ),
    (
        "openai provider without endpoint",
        edit(lambda d: d["providers"].append({"name": "o", "provider_type": "openai"})),
        "value_error",
        "providers.o",
        None,
    ),
    (
        "negative max_parallel_requests",
        edit(lambda d: d["models"][0].update(max_parallel_requests=0)),
        "greater_than_equal",
        "models.writer",
        "max_parallel_requests",
    ),
    (
        "temperature out of range",
        edit(lambda d: d["models"][0].update(inference_parameters={"temperature": 5})),
        "less_than_equal",
        "models.writer",
        "inference_parameters.temperature",
    ),
    (
        "seed_dataset column without seed_config",
        with_column({"name": "x", "column_type": "seed_dataset"}),
        "missing_seed_config",
        "columns.x",
        "column_type",
    ),
    (
        "run buffer_size zero",
        edit(lambda d: d.update(run={"buffer_size": 0})),
        "greater_than_equal",
        "run",
        "buffer_size",
    ),
    (
        "run unknown knob",
        edit(lambda d: d.update(run={"turbo": True})),
        "extra_forbidden",
        "run",
        "turbo",
    ),
    (
        "bad decrease factor",
        edit(
            lambda d: d.update(run={"request_admission": {"multiplicative_decrease_factor": 1.5}})
        ),
        "less_than",
        "run",
        "request_admission.multiplicative_decrease_factor",
    ),
    ("no columns", edit(lambda d: d.update(columns=[])), "no_columns", "columns", None),
    (
        "simulation capacity zero",
        edit(lambda d: d["providers"][0].update(simulation={"capacity": 0})),
        "greater_than_equal",
        "providers.sim",
        "simulation.capacity",
    ),
]


@pytest.mark.parametrize(
    ("config", "code", "location", "field"),
    [pytest.param(c, code, loc, f, id=i) for i, c, code, loc, f in CORPUS],
)
def test_malformed_config_gives_typed_error(
    config: dict[str, Any], code: str, location: str, field: str | None
) -> None:
    with pytest.raises(ConfigValidationError) as info:
        DatasetConfig.from_dict(config)
    matching = [i for i in info.value.issues if i.code == code and i.location == location]
    assert matching, f"expected {code} at {location}, got {info.value.issues}"
    if field is not None:
        assert any((i.field or "").startswith(field) for i in matching), matching
    # the message names the place, so a user can find it
    assert location in str(info.value)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


def test_base_config_is_valid() -> None:
    DatasetConfig.from_dict(BASE)


def test_reports_every_issue_at_once() -> None:
    data = with_column(
        {"name": "x", "column_type": "llm_text", "model_alias": "ghost", "prompt": "{{ nope }}"}
    )
    with pytest.raises(ConfigValidationError) as info:
        DatasetConfig.from_dict(data)
    assert {"unknown_model_alias", "unknown_reference"} <= set(info.value.codes)


def test_missing_api_key_env_is_an_environment_error(monkeypatch: pytest.MonkeyPatch) -> None:
    data = edit(lambda d: d["models"].append({"alias": "r", "model": "m", "provider": "remote"}))
    unused = DatasetConfig.from_dict(data)  # static validation passes
    monkeypatch.delenv("ROWLOOM_TEST_KEY_UNSET", raising=False)
    unused.check_environment()  # no column uses the model: its provider's key is not needed
    data["columns"].append(
        {"name": "z", "column_type": "llm_text", "model_alias": "r", "prompt": "hi"}
    )
    config = DatasetConfig.from_dict(data)
    with pytest.raises(ConfigValidationError) as info:
        config.check_environment()
    (issue,) = info.value.issues
    assert issue.code == "missing_api_key_env"
    assert issue.location == "providers.remote" and issue.field == "api_key_env"
    monkeypatch.setenv("ROWLOOM_TEST_KEY_UNSET", "sk-secret")
    config.check_environment()


def test_unreadable_files_are_file_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigFileError, match="cannot read"):
        DatasetConfig.from_yaml(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [unclosed\n")
    with pytest.raises(ConfigFileError, match="not valid YAML"):
        DatasetConfig.from_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigFileError, match="mapping"):
        DatasetConfig.from_yaml(lst)
