"""Data Designer's llm-code, validation, judge, skip, custom, processor and plugin fields as
Data Designer writes them -> rowloom's native DTOs (nothing refused that rowloom can run)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.compat.dd_shapes import (
    code_validation,
    config,
    custom,
    drop_columns,
    llm,
    local_validation,
    sampler,
    schema_transform,
    score,
)
from tests.plugins.registered import example_plugins_registered

from rowloom.compat.columns import DD_COLUMN_FIELDS
from rowloom.compat.processors import DD_PROCESSOR_FIELDS
from rowloom.config import ConfigValidationError, DatasetConfig
from rowloom.config.code_lang import CodeLang
from rowloom.config.columns import BUILTIN_COLUMN_TYPES
from rowloom.config.processors import BUILTIN_PROCESSOR_TYPES
from rowloom.interface.loading import native_document

ALIAS = "openai-text"
FUNCTIONS = "tests.compat.configs.recipe_functions"


def load(*columns: dict[str, Any], **sections: Any) -> DatasetConfig:
    data = config([sampler("topic", "category", values=["a", "b"]), *columns], **sections)
    return DatasetConfig.from_dict(data, adapt=native_document)


def refused(*columns: dict[str, Any], **sections: Any) -> list[tuple[str, str, str | None]]:
    with pytest.raises(ConfigValidationError) as info:
        load(*columns, **sections)
    return [(i.code, i.location, i.field) for i in info.value.issues]


def test_every_dd_column_and_processor_type_has_a_native_counterpart() -> None:
    missing = {t for t in DD_COLUMN_FIELDS if t.replace("-", "_") not in BUILTIN_COLUMN_TYPES}
    assert missing <= {"image"}  # image columns: models-io's, not on main yet
    assert set(DD_PROCESSOR_FIELDS) == set(BUILTIN_PROCESSOR_TYPES)


@pytest.mark.parametrize("code_lang", sorted(CodeLang.__args__))  # type: ignore[attr-defined]
def test_llm_code_maps_for_every_dd_code_lang(code_lang: str) -> None:
    cfg = load(llm("code", "snippet", "Code about {{ topic }}", ALIAS, code_lang=code_lang))
    column = cfg.column_by_name["snippet"]
    assert (column.column_type, column.code_lang) == ("llm_code", code_lang)


def test_validation_columns_map_with_each_validator_type() -> None:
    remote = {
        "endpoint_url": "http://127.0.0.1:9/validate",
        "max_parallel_requests": 2,
        "max_retries": 50,  # DD has no upper bounds here, nor does rowloom (waits cap at 60 s)
        "output_schema": None,
        "retry_backoff": 100.0,
        "timeout": 5.0,
    }
    cfg = load(
        llm("code", "sql", "SQL about {{ topic }}", ALIAS, code_lang="sql:postgres"),
        code_validation("sql_check", "sql", "sql:postgres", batch_size=1_000_000),
        local_validation("local_check", ["topic"], f"{FUNCTIONS}:check_answers"),
        {
            **code_validation("remote_check", "topic", "python"),
            "validator_params": remote,  # DD's validator_type injected into params: optional
            "validator_type": "remote",
        },
    )
    sql, local, far = (cfg.column_by_name[n] for n in ("sql_check", "local_check", "remote_check"))
    assert (sql.validator_params.code_lang, sql.batch_size) == ("sql:postgres", 1_000_000)
    assert local.validator_params.validation_function.__name__ == "check_answers"
    assert (far.validator_params.max_retries, far.validator_params.timeout) == (50, 5.0)
    assert cfg.dependencies["sql_check"] == ("sql",)


def test_functions_by_bare_name_are_refused_saying_how_to_name_them() -> None:
    found = refused(
        custom("c", "writer_editor"),
        local_validation("v", ["topic"], "check_answers"),
    )
    assert found == [
        ("dd_invalid", "columns.c", "generator_function"),
        ("dd_invalid", "columns.v", "validator_params.validation_function"),
    ]
    with pytest.raises(ConfigValidationError, match="'module:check_answers'"):
        load(local_validation("v", ["topic"], "check_answers"))


def test_custom_columns_take_the_decorator_metadata_and_params() -> None:
    writer = custom("final_text", f"{FUNCTIONS}:writer_editor")
    words = custom(
        "answer_words",
        f"{FUNCTIONS}:answer_words",
        strategy="full_column",
        generator_params={"min_words": 5},
    )
    answer = llm("text", "answer", "About {{ topic }}", ALIAS)
    models = [{**m, "alias": a} for a, m in zip(("writer", "editor"), _two_models(), strict=True)]
    cfg = load(writer, answer, words, model_configs=models)
    final = cfg.column_by_name["final_text"]
    assert (final.side_effect_columns, final.model_aliases) == (
        ["draft", "critique"],
        ["writer", "editor"],
    )
    assert cfg.dependencies["final_text"] == ("topic",)
    counted = cfg.column_by_name["answer_words"]
    assert (counted.generation_strategy, counted.generator_params) == (
        "full_column",
        {"min_words": 5},
    )
    assert "answer_too_short" in cfg.output_columns()


def _two_models() -> list[dict[str, Any]]:
    from tests.compat.dd_shapes import chat_model

    return [chat_model("x", "openai/gpt-oss-120b", "nvidia") for _ in range(2)]


def test_judge_scores_skip_and_propagate_skip_map_as_written() -> None:
    judge = llm(
        "judge",
        "rating",
        "Rate {{ topic }}",
        ALIAS,
        scores=[score("Overall quality (1-5)", "How good", {1: "poor", 5: "great"})],
    )
    judge["scores"][0]["options"] = {1: "poor", 5: "great"}  # from Python: int keys stay ints
    skipped = llm(
        "text",
        "note",
        "Note on {{ topic }}",
        ALIAS,
        skip={"when": "{{ topic == 'a' }}", "value": "-"},
    )
    after = llm("text", "summary", "{{ note }}", ALIAS, propagate_skip=False)
    cfg = load(judge, skipped, after)
    assert list(cfg.column_by_name["rating"].scores[0].options) == [1, 5]
    note = cfg.column_by_name["note"]
    assert note.skip is not None and (note.skip.when, note.skip.value) == (
        "{{ topic == 'a' }}",
        "-",
    )
    assert cfg.column_by_name["summary"].propagate_skip is False


def test_processors_map_with_dd_names_and_old_build_stage() -> None:
    chat = schema_transform(
        "chat format",  # DD allows any name; rowloom any one folder name
        {"messages": [{"role": "user", "content": "{{ topic }}"}], "meta": "{{ topic | upper }}"},
    )
    old = {**drop_columns("cleanup", ["topic"]), "build_stage": "post_batch"}  # DD < 0.5.1
    nothing = drop_columns("noop", [])  # DD accepts dropping nothing
    cfg = load(llm("text", "t", "{{ topic }}", ALIAS), processors=[old, chat, nothing])
    assert [(p.processor_type, p.name) for p in cfg.processors] == [
        ("drop_columns", "cleanup"),
        ("schema_transform", "chat format"),
    ]
    assert "topic" not in cfg.output_columns()


@pytest.mark.parametrize(
    ("processor", "field"),
    [
        ({**drop_columns("d", ["topic"]), "build_stage": "pre_batch"}, "build_stage"),
        ({"name": "x", "processor_type": "dedupe"}, "processor_type"),
        ({**schema_transform("s", {"a": "{{ topic }}"}), "templates": {}}, "templates"),
        ({"processor_type": "drop_columns", "column_names": ["topic"]}, "name"),
    ],
)
def test_processor_problems_are_named(processor: dict[str, Any], field: str) -> None:
    found = refused(processors=[processor])
    assert [f for _code, _loc, f in found] == [f"processors[0].{field}"]


def test_folder_unsafe_processor_names_are_refused() -> None:
    found = refused(processors=[schema_transform("../up", {"a": "{{ topic }}"})])
    assert found == [("value_error", "processors.../up", "name")]


def test_non_identifier_column_names_are_refused_saying_why() -> None:
    with pytest.raises(ConfigValidationError, match="so that any template can refer"):
        load(llm("text", "my-col", "{{ topic }}", ALIAS))


@pytest.fixture
def example_plugins() -> Iterator[None]:
    with example_plugins_registered():
        yield


def test_plugin_column_and_processor_types_pass_to_their_plugin(example_plugins: None) -> None:
    column = {"column_type": "reverse-text", "drop": False, "name": "rev", "source": "topic"}
    cfg = load(column, processors=[{"name": "stats", "processor_type": "row_stats"}])
    assert cfg.column_by_name["rev"].column_type == "reverse_text"
    assert [p.processor_type for p in cfg.processors] == ["row_stats"]
    bad = {**column, "source": "ghost"}
    with pytest.raises(ConfigValidationError, match="ghost"):
        load(bad)
