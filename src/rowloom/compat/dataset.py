"""A whole Data Designer config (its envelope or the bare config) -> a native config mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rowloom.compat._fields import Fields, Issues
from rowloom.compat.columns import map_column
from rowloom.compat.models import map_model_config
from rowloom.compat.processors import map_processors
from rowloom.config.dataset import DatasetConfig

_DD_ONLY_KEYS = frozenset({"model_configs", "constraints", "profilers"})
"""Top-level fields only Data Designer has (`seed_config` and `tool_configs` are native too:
not a sign)."""
_DD_COLUMN_TYPES = frozenset(
    {"llm-text", "llm-code", "llm-structured", "llm-judge", "seed-dataset"}
)


def is_data_designer_config(data: Any) -> bool:
    """Whether a loaded document has Data Designer's shape rather than rowloom's: the
    `{data_designer: ..., library_version}` envelope, a top-level field only Data Designer has,
    a hyphenated column type, or sampler params carrying their own `sampler_type`."""
    if not isinstance(data, Mapping):
        return False
    if isinstance(data.get("data_designer"), Mapping) or _DD_ONLY_KEYS & set(data):
        return True
    columns = data.get("columns")
    for column in columns if isinstance(columns, list) else ():
        if not isinstance(column, Mapping):
            continue
        kind = column.get("column_type")
        if isinstance(kind, str) and kind in _DD_COLUMN_TYPES:
            return True
        params = column.get("params")
        if isinstance(params, Mapping) and "sampler_type" in params:
            return True
    return False


def from_data_designer(data: Mapping[str, Any]) -> dict[str, Any]:
    """The native config mapping for a Data Designer config; raises `ConfigValidationError`
    naming every field that cannot be mapped (nothing is dropped silently)."""
    issues = Issues()
    body: Any = data
    if "data_designer" in data:
        envelope = Fields(data, "config", issues)
        body = envelope.get("data_designer")
        version = envelope.get("library_version", None)
        if version is not None and not isinstance(version, str):
            envelope.invalid("library_version", "must be a version string")
        envelope.done()
        if not isinstance(body, Mapping):
            issues.add("dd_invalid", "config", "data_designer", "must be a mapping")
            issues.raise_if_any()
    out = _map_body(Fields(body, "config", issues))
    issues.raise_if_any()
    return out


def _map_body(f: Fields) -> dict[str, Any]:
    out: dict[str, Any] = {}
    models = f.get("model_configs", None)
    if isinstance(models, list):
        mapped_models = [
            map_model_config(m, f"model_configs[{i}]", f.issues) for i, m in enumerate(models)
        ]
        out["models"] = [m for m in mapped_models if m is not None]
    elif models is not None:
        f.invalid("model_configs", "must be a list")
    columns = f.get("columns")
    if f.expect_type("columns", columns, list, "a list"):
        mapped = [map_column(c, i, f.issues) for i, c in enumerate(columns)]
        out["columns"] = [c for c in mapped if c is not None]
    processors = f.get("processors", None)
    if processors and f.expect_type("processors", processors, list, "a list"):
        out["processors"] = map_processors(f, processors)
    for key in ("seed_config", "constraints", "tool_configs"):
        _pass_through(f, key, out)
    _map_profilers(f)
    f.done()
    return out


def _pass_through(f: Fields, key: str, out: dict[str, Any]) -> None:
    """A top-level section rowloom has under Data Designer's name is copied as it is."""
    value = f.get(key, None)
    if key in DatasetConfig.model_fields:
        if value is not None:
            out[key] = value
    elif value:  # None and [] mean "none"
        count = len(value) if isinstance(value, list) else 1
        f.not_supported(key, f"{key} ({count} entries)")


def _map_profilers(f: Fields) -> None:
    """DD's judge-score profiler: rowloom profiles every judge column's scores anyway
    (profile.json); model-written summaries of them (`summary_score_sample_size`) it lacks."""
    value = f.get("profilers", None)
    if not value or not f.expect_type("profilers", value, list, "a list"):
        return
    for i, entry in enumerate(value):
        key = f"profilers[{i}]"
        if not f.expect_type(key, entry, Mapping, "a judge-score profiler mapping"):
            continue
        p = f.child(key, entry)
        if not isinstance(p.get("model_alias"), str):
            p.invalid("model_alias", "must be a model alias")
        p.inert(
            "summary_score_sample_size",
            None,
            "model-written summaries of judge scores (rowloom profiles every judge column's "
            "scores in profile.json; set summary_score_sample_size: null to accept that)",
        )
        p.done()
