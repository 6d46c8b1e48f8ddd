"""Data Designer column configs -> rowloom column configs.

Column types are Data Designer's with `_` for `-` (`llm-text` -> `llm_text`). Fields rowloom
has under the same name are copied; fields it lacks are accepted only at their Data Designer
default when that default has no effect, and reported as "not supported yet" otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from rowloom.compat import samplers
from rowloom.compat._fields import Fields, Issues
from rowloom.config.columns import BUILTIN_COLUMN_TYPES

_REQUIRED = object()
_COMMON: dict[str, Any] = {"name": _REQUIRED, "drop": False, "skip": None, "propagate_skip": True}
_LLM: dict[str, Any] = {
    "prompt": _REQUIRED,
    "model_alias": _REQUIRED,
    "system_prompt": None,
    "multi_modal_context": None,
    "tool_alias": None,
    "with_trace": "none",
    "extract_reasoning_content": False,
}
DD_COLUMN_FIELDS: dict[str, dict[str, Any]] = {
    "sampler": {
        "sampler_type": _REQUIRED,
        "params": _REQUIRED,
        "conditional_params": {},
        "convert_to": None,
    },
    "llm-text": _LLM,
    "llm-code": {**_LLM, "code_lang": _REQUIRED},
    "llm-structured": {**_LLM, "output_format": _REQUIRED},
    "llm-judge": {**_LLM, "scores": _REQUIRED},
    "expression": {"expr": _REQUIRED, "dtype": "str"},
    "validation": {
        "target_columns": _REQUIRED,
        "validator_type": _REQUIRED,
        "validator_params": _REQUIRED,
        "batch_size": 10,
    },
    "seed-dataset": {},
    "embedding": {"target_column": _REQUIRED, "model_alias": _REQUIRED},
    "image": {"prompt": _REQUIRED, "model_alias": _REQUIRED, "multi_modal_context": None},
    "custom": {
        "generator_function": _REQUIRED,
        "generation_strategy": "cell_by_cell",
        "generator_params": None,
    },
}
"""Every column type of Data Designer's config and its fields (default, or required)."""


def native_column_classes() -> dict[str, type[Any]]:
    """rowloom's built-in column config classes by `column_type`."""
    return dict(BUILTIN_COLUMN_TYPES)


def map_column(entry: Any, index: int, issues: Issues) -> dict[str, Any] | None:
    """One DD column mapping as a native column mapping (None when it cannot be mapped)."""
    if not isinstance(entry, Mapping):
        issues.add("dd_invalid", f"columns[{index}]", None, "a column must be a mapping")
        return None
    name = entry.get("name")
    f = Fields(entry, f"columns.{name}" if isinstance(name, str) else f"columns[{index}]", issues)
    dd_type = f.get("column_type")
    if not isinstance(dd_type, str) or dd_type not in DD_COLUMN_FIELDS:
        known = list(DD_COLUMN_FIELDS)
        f.invalid("column_type", f"unknown column_type {dd_type!r}; one of {known}")
        return None
    native_type = str(dd_type).replace("-", "_")
    cls = native_column_classes().get(native_type)
    if cls is None:
        f.not_supported("column_type", f"column_type {dd_type!r}")
        f.done(allowed=lambda _key: True)
        return None
    out: dict[str, Any] = {"name": name, "column_type": native_type}
    specs = {**_COMMON, **DD_COLUMN_FIELDS[dd_type]}
    native_fields = set(cls.model_fields)
    for key, default in specs.items():
        if key in ("name",):
            f.get(key)
            continue
        if dd_type == "sampler" and key in ("sampler_type", "params", "conditional_params"):
            continue  # mapped with the sampler below
        if not f.has(key):
            if default is _REQUIRED:
                f.get(key)
            continue
        _map_field(f, key, default, native_fields, out, dd_type)
    if dd_type == "sampler":
        _map_sampler(f, native_fields, out)
    f.done()
    return out


def _map_field(
    f: Fields, key: str, default: Any, native_fields: set[str], out: dict[str, Any], dd_type: str
) -> None:
    value = f.get(key)
    if key == "skip":
        _map_skip(f, value, native_fields, out)
    elif key == "generator_function":
        _map_function(f, value, native_fields, out)
    elif key in native_fields:
        out[key] = value
    elif value != default:
        f.not_supported(key, f"{dd_type} column field {key!r} = {_short(value)}")


def _map_skip(f: Fields, value: Any, native_fields: set[str], out: dict[str, Any]) -> None:
    if value is None:
        return
    if "skip" in native_fields:
        out["skip"] = value
        return
    if not isinstance(value, Mapping) or not isinstance(value.get("when"), str):
        f.invalid("skip", "must be a mapping with a 'when' Jinja2 expression")
        return
    unknown = set(value) - {"when", "value"}
    if unknown:
        f.invalid("skip", f"unknown fields {sorted(unknown)} (when, value)")
    if value.get("value") is not None:
        f.not_supported("skip", f"skip.value = {value['value']!r} (skipped cells are empty)")
    out["skip_when"] = value["when"]


def _map_function(f: Fields, value: Any, native_fields: set[str], out: dict[str, Any]) -> None:
    """DD writes a custom column's function by its bare name; rowloom needs an import path."""
    target = "generator_function" if "generator_function" in native_fields else "function"
    if not isinstance(value, str) and not callable(value):
        f.invalid("generator_function", "must be a function or 'package.module:function'")
        return
    if isinstance(value, str) and ":" not in value:
        f.invalid(
            "generator_function",
            f"{value!r} is a bare function name (as Data Designer writes it); give its import "
            "path 'package.module:function' so rowloom can load it",
        )
        return
    out[target] = value
    metadata = _decorator_metadata(value)
    for key in ("required_columns", "model_aliases", "side_effect_columns"):
        if metadata.get(key) and key in native_fields:
            out[key] = list(metadata[key])


def _decorator_metadata(value: Any) -> Mapping[str, Any]:
    """What DD's `@custom_column_generator` recorded on the function, if it is importable."""
    fn = value
    if isinstance(value, str):
        module_name, _, attr = value.partition(":")
        try:
            fn = importlib.import_module(module_name)
            for part in attr.split("."):
                fn = getattr(fn, part)
        except (ImportError, AttributeError):
            return {}  # rowloom's own validation reports the import error
    metadata = getattr(fn, "custom_column_metadata", None)
    return metadata if isinstance(metadata, Mapping) else {}


def _map_sampler(f: Fields, native_fields: set[str], out: dict[str, Any]) -> None:
    dd_type = f.get("sampler_type")
    params = f.get("params")
    conditional = f.get("conditional_params", {})
    if dd_type not in samplers.dd_sampler_types():
        f.invalid("sampler_type", f"unknown sampler_type {dd_type!r}")
        return
    native_type = samplers.native_sampler_type(str(dd_type))
    if native_type is None:
        f.not_supported("sampler_type", f"sampler_type {dd_type!r}")
        return
    out["sampler_type"] = native_type
    if f.expect_type("params", params, Mapping, "a mapping"):
        out["params"] = samplers.map_params(f.child("params", params), dd_type, native_type)
    if not conditional:
        return
    if "conditional_params" not in native_fields:
        f.not_supported("conditional_params", "conditional sampler params")
        return
    if f.expect_type("conditional_params", conditional, Mapping, "a mapping"):
        mapped = {}
        for condition, cond_params in conditional.items():
            key = f"conditional_params.{condition}"
            if f.expect_type(key, cond_params, Mapping, "a mapping of sampler params"):
                child = f.child(key, cond_params)
                mapped[condition] = samplers.map_params(child, dd_type, native_type)
        out["conditional_params"] = mapped


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
