"""Hostile configs: the YAML/JSON loader raises only `ConfigError` subclasses (never another
exception) and never hangs, for arbitrary text, arbitrary documents, mutated valid configs and
known YAML/JSON attacks (alias bombs, self-referencing anchors, deep nesting, unsafe tags,
over-long numbers). A config that loads also dumps and reloads to an equal config."""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rowloom import DatasetConfig
from rowloom.config.errors import ConfigError, ConfigFileError
from rowloom.generators import build_generators
from rowloom.models.resources import ModelResourceCatalog

EXAMPLES = Path(__file__).parents[2] / "examples"
VALID: dict[str, Any] = DatasetConfig.from_yaml(EXAMPLES / "qa_judge.yaml").to_dict()
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HANG_SECONDS = 20.0  # a generous bound: each case takes milliseconds when it does not hang


def only_config_errors(load: Callable[[], DatasetConfig]) -> DatasetConfig | None:
    """Run a load; a ConfigError is fine, any other exception fails the test."""
    try:
        return load()
    except ConfigError:
        return None


def finishes(load: Callable[[], object]) -> BaseException | None:
    """Run `load` in a thread; fail if it does not finish; return what it raised."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            load()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive(), "the loader hung"
    return outcome[0]


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=24)
    | st.sampled_from(
        [
            "",
            " ",
            "-1",
            0,
            -1,
            10**30,
            1e308,
            math.inf,
            "{{ x }}",
            "{{ topic }",
            "{% for %}",
            "{{ ''.__class__.__mro__ }}",
            "tests.nope:fn",
            ":",
            ".x:y",
            "..x:y",
            "os:getcwd",
            "writer",
            "judge",
            "sim",
            "question",
            "llm_text",
            "sampler",
            "simulated",
            "openai",
            "category",
            "uniform",
            "person",
            "datetime",
            "\x00",
            "é" * 40,
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.sampled_from(list(VALID)), inner, max_size=4)
    ),
    max_leaves=16,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_configs(draw: st.DrawFn) -> Any:
    """The example config with 1-4 random edits: delete, replace, add a key, duplicate an
    entry, or wrap a value in a list."""
    data: Any = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["delete", "replace", "add", "duplicate", "wrap"]))
        if not path:
            if op == "replace":
                data = draw(json_values)
            continue
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(json_values)
        elif op == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.text(max_size=12))] = draw(json_values)
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif op == "wrap":
            parent[key] = [parent[key]]
    return data


def check_loaded(config: DatasetConfig) -> None:
    """A config that loads dumps and reloads equal, and its generators build."""
    assert DatasetConfig.from_yaml(config.to_yaml()).fingerprint() == config.fingerprint()
    assert DatasetConfig.from_json(config.to_json()).fingerprint() == config.fingerprint()
    build_generators(config, ModelResourceCatalog(config.models, config.providers))


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    if "\n" not in text and text.endswith((".yaml", ".yml", ".json")):
        text += "\n"  # a one-line string with such a suffix is read as a path
    only_config_errors(lambda: DatasetConfig.from_yaml(text))
    only_config_errors(lambda: DatasetConfig.from_json(text))


@FUZZ
@given(st.text(alphabet="{}[]:,-&*!|>'\"\n #%@`?.01aZ_\\", max_size=200))
def test_yaml_punctuation_soup(text: str) -> None:
    text += "\n"
    only_config_errors(lambda: DatasetConfig.from_yaml(text))


@FUZZ
@given(json_values)
def test_arbitrary_documents(data: Any) -> None:
    only_config_errors(lambda: DatasetConfig.from_dict(data))
    only_config_errors(lambda: DatasetConfig.from_json(json.dumps(data) + "\n"))
    only_config_errors(lambda: DatasetConfig.from_yaml(yaml.safe_dump(data) + "\n"))


@FUZZ
@given(mutated_configs())
def test_mutated_valid_configs(data: Any) -> None:
    config = only_config_errors(lambda: DatasetConfig.from_dict(data))
    if config is not None:
        check_loaded(config)
    for text in (json.dumps(data) + "\n", yaml.safe_dump(data) + "\n"):
        loaded = only_config_errors(partial(DatasetConfig.from_yaml, text))
        assert (loaded is None) == (config is None)


BILLION_LAUGHS = (
    "\n".join(
        ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        + [
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]"
            for i in range(8)
        ]
        + [
            "columns:",
            "  - {name: x, column_type: sampler, sampler_type: category, params: {values: [a]}}",
            "run: {buffer_size: 1}",
            "seed: *i",
        ]
    )
    + "\n"
)
LAUGHS_IN_EXTRA_BODY = BILLION_LAUGHS.replace(
    "seed: *i",
    """\
providers: [{name: p, provider_type: simulated}]
models: [{alias: m, model: x, provider: p, inference_parameters: {extra_body: {k: *i}}}]""",
)


def _expression_config(expr: str) -> str:
    """A config whose expression would hang or exhaust memory if validation evaluated it."""
    return yaml.safe_dump(
        {
            "columns": [
                {
                    "name": "x",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["a"]},
                },
                {"name": "e", "column_type": "expression", "expr": expr},
            ]
        }
    )


HOSTILE_YAML = {
    "billion_laughs": BILLION_LAUGHS,
    "laughs_in_extra_body": LAUGHS_IN_EXTRA_BODY,
    "self_reference": "columns: &c [*c]\n",
    "self_reference_in_params": (
        "columns:\n  - &c {name: x, column_type: sampler, sampler_type: category, "
        "params: {values: [a], weights: *c}}\n"
    ),
    "deep_nesting": "columns: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "deep_mapping": "columns: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
    "python_tag": "columns: !!python/object/apply:os.system ['echo pwned']\n",
    "set_tag": "columns: !!set {a, b}\n",
    "set_of_columns": "columns: !!set {? {name: x}}\n",
    "binary_tag": "columns: !!binary aGVsbG8=\n",
    "timestamp": "columns: [2001-12-14t21:59:43.10-05:00]\nseed: 2001-12-14\n",
    "long_int": "seed: " + "1" * 10_000 + "\ncolumns: []\n",
    "long_float": "seed: " + "9" * 400 + ".5\ncolumns: []\n",
    "non_string_keys": "{1: 2, [a]: b, null: c, columns: [{? [x] : y}]}\n",
    "huge_document": "columns:\n" + "  - {name: c, column_type: sampler}\n" * 4_000,
    "tabs": "columns:\n\t- x\n",
    "bom_and_nul": "\ufeffcolumns: [\x00]\n",
    "multi_document": "columns: []\n---\ncolumns: []\n",
    "power_in_template": _expression_config("{{ x * (10 ** (10 ** 10)) }}"),
    "filter_in_template": _expression_config("{{ 'x'|center(1000000000) }}"),
    "huge_constant_in_template": _expression_config("{{ x ~ (99999 ** 99999) }}"),
    "merge_key_bomb": "a: &a {x: 1}\nb: &b {<<: [*a, *a, *a]}\ncolumns: [{<<: *b}]\n",
}

HOSTILE_JSON = {
    "deep_nesting": '{"columns": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "long_int": '{"seed": ' + "1" * 10_000 + ', "columns": []}',
    "nan": '{"seed": NaN, "columns": []}',
    "infinity": '{"seed": Infinity, "columns": [{"name": "x", "column_type": "sampler", '
    '"sampler_type": "uniform", "params": {"low": -Infinity, "high": Infinity}}]}',
    "lone_surrogate": '{"columns": [{"name": "\\ud800", "column_type": "sampler"}]}',
    "duplicate_keys": '{"columns": [], "columns": [{"name": "x"}]}',
    "not_an_object": "[1, 2, 3]",
    "empty": "",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
def test_hostile_yaml(name: str) -> None:
    error = finishes(lambda: DatasetConfig.from_yaml(HOSTILE_YAML[name]))
    assert error is None or isinstance(error, ConfigError), repr(error)


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_hostile_json(name: str) -> None:
    error = finishes(lambda: DatasetConfig.from_json(HOSTILE_JSON[name] + "\n"))
    assert error is None or isinstance(error, ConfigError), repr(error)


def test_alias_bomb_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ConfigFileError, match="too large"):
        DatasetConfig.from_yaml(LAUGHS_IN_EXTRA_BODY)


def test_unreadable_paths_are_config_errors(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.yaml", tmp_path, tmp_path / "dir.json"):
        if path.name == "dir.json":
            path.mkdir()
        assert isinstance(finishes(partial(DatasetConfig.from_file, path)), ConfigError)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert isinstance(finishes(lambda: DatasetConfig.from_file(binary)), ConfigError)
