"""Data Designer processors -> rowloom processors (`drop_columns`, `schema_transform`, and
processor types installed rowloom plugins provide). Field names are Data Designer's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rowloom.compat._fields import Fields
from rowloom.config.plugins import find_plugin

DD_PROCESSOR_FIELDS: dict[str, tuple[str, ...]] = {
    "drop_columns": ("name", "column_names"),
    "schema_transform": ("name", "template"),
}
"""Every processor type of Data Designer's config and its fields."""
_BUILD_STAGE = "post_batch"
"""The only `build_stage` Data Designer before 0.5.1 wrote (processors ran after each batch,
as rowloom's do); later versions dropped the field."""


def map_processors(f: Fields, processors: list[Any]) -> list[dict[str, Any]]:
    """DD's `processors` list as rowloom's."""
    out = []
    for i, entry in enumerate(processors):
        key = f"processors[{i}]"
        if f.expect_type(key, entry, Mapping, "a processor mapping"):
            mapped = _map_processor(f.child(key, entry))
            if mapped is not None:
                out.append(mapped)
    return out


def _map_processor(p: Fields) -> dict[str, Any] | None:
    kind = p.get("processor_type")
    plugin = isinstance(kind, str) and kind not in DD_PROCESSOR_FIELDS
    if plugin and find_plugin("processor", str(kind)) is not None:
        p.done(allowed=lambda _key: True)
        return dict(p.data)  # the plugin's own config checks its fields
    if kind not in DD_PROCESSOR_FIELDS:
        p.invalid(
            "processor_type",
            f"unknown processor_type {kind!r}; one of "
            f"{list(DD_PROCESSOR_FIELDS)} or an installed rowloom processor plugin",
        )
        p.done(allowed=lambda _key: True)
        return None
    out: dict[str, Any] = {"processor_type": kind}
    for name in DD_PROCESSOR_FIELDS[str(kind)]:
        out[name] = p.get(name)
    stage = p.get("build_stage", _BUILD_STAGE)
    if stage != _BUILD_STAGE:
        p.not_supported(
            "build_stage", f"processors run after each row group; build_stage {stage!r}"
        )
    p.done()
    if kind == "drop_columns" and out["column_names"] == []:
        return None  # Data Designer accepts dropping nothing; so does rowloom, by omitting it
    return out
