"""Data Designer configs -> rowloom DTOs: detection, field-by-field mapping, typed errors."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.compat.dd_shapes import chat_model, config, expression, llm, sampler

from rowloom.compat import (
    from_data_designer,
    is_data_designer_config,
    map_model_config,
    map_provider,
)
from rowloom.compat._fields import Issues
from rowloom.compat.columns import DD_COLUMN_FIELDS, native_column_classes
from rowloom.compat.samplers import dd_sampler_types, native_sampler_type
from rowloom.config import ConfigValidationError, DatasetConfig
from rowloom.config.errors import ConfigFileError
from rowloom.interface.loading import load_config, native_document

CONFIGS = Path(__file__).parent / "configs"


def shared(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    return data


def issues_of(data: Any) -> list[Any]:
    with pytest.raises(ConfigValidationError) as info:
        DatasetConfig.from_dict(data, adapt=native_document)
    return list(info.value.issues)


def test_shapes_are_recognised() -> None:
    assert is_data_designer_config(shared("product_info_qa"))
    assert is_data_designer_config(shared("product_info_qa")["data_designer"])  # bare
    bare = {
        "columns": [{"name": "a", "column_type": "llm-text", "prompt": "x", "model_alias": "m"}]
    }
    assert is_data_designer_config(bare)
    nested = {
        "columns": [
            {
                "name": "a",
                "column_type": "sampler",
                "sampler_type": "bernoulli",
                "params": {"p": 0.5, "sampler_type": "bernoulli"},
            }
        ]
    }
    assert is_data_designer_config(nested)
    native = {"models": [], "columns": [{"name": "a", "column_type": "llm_text"}]}
    assert not is_data_designer_config(native)
    assert not is_data_designer_config([1, 2])


def test_product_info_qa_maps_every_field() -> None:
    native = from_data_designer(shared("product_info_qa"))
    assert [c["column_type"] for c in native["columns"]][:6] == [
        "sampler",
        "sampler",
        "expression",
        "sampler",
        "sampler",
        "llm_structured",
    ]
    structured = native["columns"][5]
    assert structured["output_format"]["required"] == [
        "product_name",
        "key_features",
        "description",
        "price_usd",
    ]
    judge = native["columns"][8]
    assert [s["name"] for s in judge["scores"]] == ["Completeness", "Accuracy"]
    models = {m["alias"]: m for m in native["models"]}
    assert len(models) == 12
    assert models["openai-text"] == {
        "alias": "openai-text",
        "model": "gpt-4.1",
        "provider": "openai",
        "generation_kind": "chat",
        "max_parallel_requests": 4,
        "inference_parameters": {"temperature": 0.85, "top_p": 0.95},
    }
    embed = models["nvidia-embedding"]
    assert embed["generation_kind"] == "embedding"
    assert embed["inference_parameters"] == {"extra_body": {"input_type": "query"}}


def test_bare_and_enveloped_forms_give_the_same_config() -> None:
    data = shared("product_info_qa")
    assert from_data_designer(data) == from_data_designer(data["data_designer"])


def test_dd_default_providers_resolve_from_presets() -> None:
    cfg = DatasetConfig.from_dict(shared("product_info_qa"), adapt=native_document)
    providers = {p.name: p for p in cfg.providers}
    assert set(providers) == {"nvidia", "openai", "openrouter"}
    assert providers["openai"].endpoint == "https://api.openai.com/v1"
    assert providers["openai"].api_key_env == "OPENAI_API_KEY"
    assert providers["nvidia"].endpoint == "https://integrate.api.nvidia.com/v1"


def test_every_dd_column_type_is_mapped_or_named_as_not_supported() -> None:
    natives = native_column_classes()
    for dd_type in DD_COLUMN_FIELDS:
        column: dict[str, Any] = {"name": "c", "column_type": dd_type}
        issues = Issues()
        from rowloom.compat.columns import map_column

        mapped = map_column(column, 0, issues)
        native_type = dd_type.replace("-", "_")
        if native_type in natives:
            assert mapped is not None and mapped["column_type"] == native_type
        else:
            assert mapped is None
            assert [(i.code, i.field) for i in issues.found] == [
                ("dd_not_supported", "column_type")
            ]


def test_every_dd_sampler_type_is_mapped_or_named_as_not_supported() -> None:
    for sampler_type in dd_sampler_types():
        data = config([sampler("s", sampler_type)], model_configs=[])
        native = native_sampler_type(sampler_type)
        try:
            out = from_data_designer(data)
        except ConfigValidationError as exc:
            assert native is None or any(i.code == "dd_not_supported" for i in exc.issues), exc
            for issue in exc.issues:
                assert issue.location == "columns.s" and issue.field
            continue
        assert native is not None
        assert out["columns"][0]["sampler_type"] == native


def test_unknown_fields_are_named_never_dropped() -> None:
    data = shared("product_info_qa")
    data["data_designer"]["columns"][0]["colour"] = "blue"
    data["data_designer"]["columns"][5]["output_format_v2"] = {}
    data["data_designer"]["model_configs"][0]["inference_parameters"]["seed"] = 3
    data["data_designer"]["extra"] = 1
    data["surprise"] = True
    found = {(i.code, i.location, i.field) for i in issues_of(data)}
    assert found == {
        ("dd_unknown_field", "columns.category", "colour"),
        ("dd_unknown_field", "columns.product_info", "output_format_v2"),
        ("dd_unknown_field", "model_configs[0]", "inference_parameters.seed"),
        ("dd_unknown_field", "config", "extra"),
        ("dd_unknown_field", "config", "surprise"),
    }


def _with_column(column: dict[str, Any]) -> dict[str, Any]:
    return config([sampler("a", "category", values=["x", "y"]), column])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("with_trace", "all_messages"),
        ("extract_reasoning_content", True),
        ("multi_modal_context", [{"column_name": "a", "modality": "image"}]),
    ],
)
def test_dd_llm_fields_rowloom_has_natively_pass_through(field: str, value: Any) -> None:
    column = llm("text", "t", "{{ a }}", "openai-text", **{field: value})
    mapped = DatasetConfig.from_dict(_with_column(column), adapt=native_document)
    got = getattr(mapped.column_by_name["t"], field)
    if isinstance(value, list):
        got = [item.model_dump(exclude_none=True) for item in got]
    assert got == value


def test_a_dd_tool_alias_needs_its_tool_config() -> None:
    column = llm("text", "t", "{{ a }}", "openai-text", tool_alias="search")
    found = issues_of(_with_column(column))
    assert [(i.code, i.location, i.field) for i in found] == [
        ("unknown_tool_alias", "columns.t", "tool_alias")
    ]


def test_default_values_of_fields_rowloom_lacks_are_accepted() -> None:
    cfg = DatasetConfig.from_dict(
        _with_column(llm("text", "t", "{{ a }}", "openai-text")), adapt=native_document
    )
    assert cfg.column_by_name["t"].model_alias == "openai-text"


def test_skip_maps_onto_rowloom_skip() -> None:
    column = llm("text", "t", "x", "openai-text", skip={"when": "{{ a == 'x' }}", "value": None})
    cfg = DatasetConfig.from_dict(_with_column(column), adapt=native_document)
    mapped = cfg.column_by_name["t"]
    when = getattr(mapped, "skip", None)
    when = when.when if when is not None else mapped.skip_when
    assert when == "{{ a == 'x' }}"
    assert cfg.dependencies["t"] == ("a",)


def test_custom_columns_need_an_import_path() -> None:
    column = {
        "column_type": "custom",
        "drop": False,
        "generation_strategy": "cell_by_cell",
        "generator_function": "my_generator",
        "generator_params": None,
        "name": "c",
        "propagate_skip": True,
        "skip": None,
    }
    found = issues_of(_with_column(column))
    assert [(i.code, i.field) for i in found] == [("dd_invalid", "generator_function")]
    assert "'module:my_generator'" in found[0].message


@pytest.mark.parametrize(
    "hostile",
    [
        None,
        [],
        "columns",
        {"data_designer": "nope", "library_version": "0.9.7"},
        {"data_designer": {"columns": "x"}},
        {"data_designer": {"columns": [3, None, {"name": 5}]}},
        {"data_designer": {"columns": [{"name": "x", "column_type": "llm-quantum"}]}},
        {"data_designer": {"columns": [], "model_configs": [{"alias": "a"}]}},
        {"data_designer": {"columns": [], "model_configs": "all"}},
        {
            "data_designer": {
                "columns": [
                    {
                        "name": "s",
                        "column_type": "sampler",
                        "sampler_type": "uniform",
                        "params": [1, 2],
                    }
                ]
            }
        },
        {
            "data_designer": {
                "columns": [
                    {
                        "name": "s",
                        "column_type": "sampler",
                        "sampler_type": "category",
                        "params": {"values": ["a"]},
                        "conditional_params": {"x > 1": 7},
                    }
                ]
            }
        },
        {"data_designer": {"columns": [], "seed_config": {"source": {"seed_type": "hf"}}}},
        {"data_designer": {"columns": [], "seed_config": 5}},
        {"data_designer": {"columns": []}, "library_version": 9},
    ],
)
def test_hostile_inputs_give_typed_errors(hostile: Any) -> None:
    with pytest.raises((ConfigValidationError, ConfigFileError)) as info:
        DatasetConfig.from_dict(hostile, adapt=native_document)
    assert str(info.value)


def test_self_referencing_yaml_is_refused_before_mapping(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("data_designer: &a\n  columns: [*a]\nlibrary_version: 0.9.7\n")
    with pytest.raises(ConfigFileError, match="refers to itself"):
        load_config(bomb)


def test_model_configs_inference_parameters() -> None:
    issues = Issues()
    chat = chat_model("w", "m", "nvidia", temperature=0.5, max_tokens=100, timeout=30)
    assert map_model_config(chat, "m", issues) == {
        "alias": "w",
        "model": "m",
        "provider": "nvidia",
        "generation_kind": "chat",
        "max_parallel_requests": 4,
        "inference_parameters": {"temperature": 0.5, "max_tokens": 100, "timeout": 30},
    }
    inferred = {
        "alias": "e",
        "model": "m",
        "provider": "p",
        "inference_parameters": {"dimensions": 256, "max_parallel_requests": 9},
    }
    mapped = map_model_config(inferred, "e", issues)
    assert mapped is not None and mapped["generation_kind"] == "embedding"
    assert mapped["inference_parameters"] == {"dimensions": 256}
    assert mapped["max_parallel_requests"] == 9
    image = {
        "alias": "i",
        "model": "m",
        "provider": "p",
        "inference_parameters": {"generation_type": "image"},
    }
    assert map_model_config(image, "i", issues)["generation_kind"] == "image"  # type: ignore[index]
    assert issues.found == []


def test_distribution_valued_temperature_needs_native_support() -> None:
    issues = Issues()
    dist = {"distribution_type": "uniform", "params": {"low": 0.2, "high": 0.9}}
    mapped = map_model_config(chat_model("w", "m", "p", temperature=dist), "m", issues)
    from rowloom.config.models import InferenceParameters

    try:
        InferenceParameters.model_validate({"temperature": dist})
    except ValueError:
        assert [(i.code, i.field) for i in issues.found] == [
            ("dd_not_supported", "inference_parameters.temperature")
        ]
    else:
        assert mapped is not None and mapped["inference_parameters"]["temperature"] == dist


def test_dd_providers_map_keys_headers_and_anthropic() -> None:
    issues = Issues()
    env = {
        "name": "n",
        "endpoint": "https://e/v1",
        "provider_type": "openai",
        "api_key": "NVIDIA_API_KEY",
        "extra_body": {"a": 1},
        "extra_headers": {"X-T": "1"},
    }
    assert map_provider(env, "p", issues) == {
        "name": "n",
        "provider_type": "openai",
        "endpoint": "https://e/v1",
        "api_key_env": "NVIDIA_API_KEY",
        "extra_body": {"a": 1},
        "extra_headers": {"X-T": "1"},
    }
    literal = map_provider({"name": "l", "endpoint": "https://e", "api_key": "sk-abc"}, "p", issues)
    assert literal is not None and literal["api_key"] == "sk-abc" and "api_key_env" not in literal
    claude = {"name": "c", "endpoint": "https://api.anthropic.com", "provider_type": "Anthropic"}
    mapped = map_provider(claude, "p", issues)
    assert mapped is not None and mapped["endpoint"] == "https://api.anthropic.com/v1/"
    assert issues.found == []
    map_provider({"name": "x", "endpoint": "https://x", "provider_type": "bedrock"}, "p", issues)
    assert [(i.code, i.field) for i in issues.found] == [("dd_not_supported", "provider_type")]


def test_columns_named_by_expression_keep_dd_semantics() -> None:
    data = config(
        [
            sampler("n", "uniform", low=1.0, high=5.0),
            expression("twice", "{{ n * 2 }}", dtype="float"),
        ],
        model_configs=[],
    )
    cfg = DatasetConfig.from_dict(copy.deepcopy(data), adapt=native_document)
    assert cfg.column_by_name["twice"].dtype == "float"
    assert cfg.dependencies["twice"] == ("n",)
    assert cfg.models == [] and cfg.providers == []


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


_BASES = [shared(n) for n in ("product_info_qa", "structured_outputs", "seeding", "text_to_sql")]
_ALL_PATHS = [(i, p) for i, base in enumerate(_BASES) for p in _paths(base) if p]
_EXAMPLES = int(os.environ.get("ROWLOOM_FUZZ_EXAMPLES", "300"))


@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.sampled_from(_ALL_PATHS), min_size=1, max_size=3),
    values=st.lists(_json_values, min_size=3, max_size=3),
)
def test_any_mutation_of_a_dd_config_is_loaded_or_refused_with_a_typed_error(
    picks: list[tuple[int, tuple[Any, ...]]], values: list[Any]
) -> None:
    data = copy.deepcopy(_BASES[picks[0][0]])
    picks = [(i, p) for i, p in picks if i == picks[0][0]]
    for (_, path), value in zip(picks, values, strict=False):
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    try:
        DatasetConfig.from_dict(data, adapt=native_document)
    except (ConfigValidationError, ConfigFileError) as exc:
        assert str(exc)


def test_json_dd_configs_and_the_public_loader(tmp_path: Path) -> None:
    import json

    import rowloom

    path = tmp_path / "dd.json"
    path.write_text(json.dumps(shared("product_info_qa")))
    assert rowloom.load_config(path) == load_config(CONFIGS / "product_info_qa.yaml")


def test_judge_score_profilers() -> None:
    data = shared("product_info_qa")
    data["data_designer"]["profilers"] = [
        {"model_alias": "openai-text", "summary_score_sample_size": None}
    ]
    assert from_data_designer(data)["columns"]  # rowloom profiles judge scores anyway
    data["data_designer"]["profilers"] = [
        {"model_alias": "openai-text", "summary_score_sample_size": 20}
    ]
    found = issues_of(data)
    assert [(i.code, i.field) for i in found] == [
        ("dd_not_supported", "profilers[0].summary_score_sample_size")
    ]
    assert "profile.json" in found[0].message


@pytest.mark.parametrize(
    "seed_type", ["local", "hf", "df", "directory", "file_contents", "agent_rollout"]
)
def test_every_dd_seed_type_is_native_or_named_as_not_supported(seed_type: str) -> None:
    from rowloom.config.seed import BUILTIN_SEED_TYPES

    data = config([expression("e", "x")], model_configs=[])
    data["data_designer"]["seed_config"] = {
        "source": {"seed_type": seed_type, "path": "traces", "format": "claude_code"},
        "sampling_strategy": "ordered",
        "selection_strategy": None,
    }
    if seed_type in BUILTIN_SEED_TYPES:
        assert from_data_designer(data)["seed_config"]["source"]["seed_type"] == seed_type
    else:
        found = [(i.code, i.field) for i in issues_of(data)]
        assert found == [("dd_not_supported", "seed_config.source.seed_type")]


def test_dd_person_reads_nemotron_personas_and_person_from_faker_does_not() -> None:
    params = {"locale": "en_US", "with_synthetic_personas": True, "age_range": [18, 114],
              "select_field_values": {"state": ["NY"]}, "sex": None, "city": None}  # fmt: skip
    person = from_data_designer(config([sampler("p", "person", **params)], model_configs=[]))
    assert person["columns"][0]["params"]["source"] == "nemotron_personas"
    assert person["columns"][0]["params"]["with_synthetic_personas"] is True
    faker = from_data_designer(config([sampler("p", "person_from_faker")], model_configs=[]))
    assert "source" not in faker["columns"][0]["params"]
    loaded = load_config(CONFIGS / "tutorial_7_nemotron_personas.yaml")
    assert loaded.column_by_name["person"].typed_params().source == "nemotron_personas"
