"""Data Designer column configs -> rowloom column configs.

Column types are Data Designer's with `_` for `-` (`llm-text` -> `llm_text`). Fields rowloom
has under the same name are copied; fields it lacks are accepted only at their Data Designer
default when that default has no effect, and reported as "not supported yet" otherwise. A
column type an installed rowloom plugin provides (under Data Designer's name or with `_` for
`-`) is passed to that plugin's config as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rowloom.compat import samplers
from rowloom.compat._fields import Fields, Issues, short
from rowloom.config.columns import BUILTIN_COLUMN_TYPES
from rowloom.config.plugins import find_plugin

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

_FUNCTION_HINT = (
    "is a bare function name, as Data Designer writes a function it cannot serialise; no "
    "program can import that. Write it as 'module:{name}' (a module file beside the config is "
    "found) or pass the function itself from Python"
)


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
    if isinstance(name, str) and not name.isidentifier():
        f.invalid(
            "name",
            f"{name!r}: rowloom column names are identifiers (letters, digits, _) so that any "
            "template can refer to them; Data Designer allows any text. Rename the column "
            "(and the templates and lists naming it)",
        )
    dd_type = f.get("column_type")
    if isinstance(dd_type, str) and dd_type not in DD_COLUMN_FIELDS:
        plugin_type = _plugin_column_type(dd_type)
        if plugin_type is not None:
            f.done(allowed=lambda _key: True)
            return {**entry, "column_type": plugin_type}
    if not isinstance(dd_type, str) or dd_type not in DD_COLUMN_FIELDS:
        known = list(DD_COLUMN_FIELDS)
        f.invalid("column_type", f"unknown column_type {dd_type!r}; one of {known}")
        return None
    native_type = dd_type.replace("-", "_")
    cls = native_column_classes().get(native_type)
    if cls is None:
        f.not_supported("column_type", f"column_type {dd_type!r}")
        f.done(allowed=lambda _key: True)
        return None
    out: dict[str, Any] = {"name": name, "column_type": native_type}
    specs = {**_COMMON, **DD_COLUMN_FIELDS[dd_type]}
    native_fields = set(cls.model_fields)
    for key, default in specs.items():
        if key == "name":
            f.get(key)
        elif dd_type == "sampler" and key in ("sampler_type", "params", "conditional_params"):
            continue  # mapped with the sampler below
        elif f.has(key):
            _map_field(f, key, default, native_fields, out, dd_type)
        elif default is _REQUIRED:
            f.get(key)
    if dd_type == "sampler":
        _map_sampler(f, out)
    f.done()
    return out


def _plugin_column_type(dd_type: str) -> str | None:
    """The column_type of the installed rowloom plugin serving a DD plugin column type."""
    for candidate in (dd_type, dd_type.replace("-", "_")):
        if find_plugin("column_generator", candidate) is not None:
            return candidate
    return None


def _map_field(
    f: Fields, key: str, default: Any, native_fields: set[str], out: dict[str, Any], dd_type: str
) -> None:
    value = f.get(key)
    if key == "generator_function":
        if _importable(f, key, value):
            out[key] = value
    elif key == "validator_params":
        out[key] = _validator_params(f, value)
    elif key in native_fields:
        out[key] = value
    elif value != default:
        f.not_supported(key, f"{dd_type} column field {key!r} = {short(value)}")


def _importable(f: Fields, key: str, value: Any) -> bool:
    """A user function: a callable (from Python) or an import path `module:function`."""
    if isinstance(value, str) and ":" not in value and value.strip():
        f.invalid(key, f"{value!r} " + _FUNCTION_HINT.format(name=value))
        return False
    return True  # anything else is checked (and named) by rowloom's own validation


def _validator_params(f: Fields, value: Any) -> Any:
    """DD's validator params are rowloom's; a local callable's function is named by its
    import path (DD writes its bare name)."""
    if isinstance(value, Mapping) and "validation_function" in value:
        _importable(
            f.child("validator_params", value), "validation_function", value["validation_function"]
        )
    return value


def _map_sampler(f: Fields, out: dict[str, Any]) -> None:
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
    if conditional and f.expect_type("conditional_params", conditional, Mapping, "a mapping"):
        mapped = {}
        for condition, cond_params in conditional.items():
            key = f"conditional_params.{condition}"
            if f.expect_type(key, cond_params, Mapping, "a mapping of sampler params"):
                child = f.child(key, cond_params)
                mapped[condition] = samplers.map_params(child, dd_type, native_type)
        out["conditional_params"] = mapped
