"""Processors: what happens to each finished row group besides being written (Data Designer's
names). `drop_columns` removes columns from the dataset; `schema_transform` writes an extra
table, one row per dataset row, from a JSON template whose strings are Jinja2."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializeAsAny,
    Tag,
    field_validator,
)

from rowloom.config.plugins import PLUGIN_TAG, plugin_config_parser, union_tag

_FORBIDDEN_IN_NAME = frozenset('/\\:*?"<>|') | {chr(i) for i in range(32)}


class ProcessorConfigBase(BaseModel):
    """Fields every processor has: a name (its output folder, `processors/<name>/`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        """The name is the output folder: one portable folder name (no path separators or
        characters Windows forbids, not `.`/`..`, no space at either end)."""
        bad = "".join(sorted(set(value) & _FORBIDDEN_IN_NAME))
        if bad:
            raise ValueError(f"{value!r} cannot be a folder name: it has {bad!r}")
        if value in (".", "..") or value != value.strip():
            raise ValueError(f"{value!r} cannot be a folder name (dots only, or edge spaces)")
        return value


class DropColumnsProcessorConfig(ProcessorConfigBase):
    """Remove columns (names or `*` globs) from the written dataset."""

    processor_type: Literal["drop_columns"] = "drop_columns"
    column_names: list[str] = Field(min_length=1)


class SchemaTransformProcessorConfig(ProcessorConfigBase):
    """An extra table under `processors/<name>/`: each key of `template` is a column; values
    are JSON (strings, lists, objects) whose strings are Jinja2 over the row."""

    processor_type: Literal["schema_transform"] = "schema_transform"
    template: dict[str, Any] = Field(min_length=1)

    @field_validator("template")
    @classmethod
    def _json(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ValueError("template must be JSON-serialisable") from None
        return value

    @property
    def template_text(self) -> str:
        """The template as one JSON text (what is rendered)."""
        return json.dumps(self.template, ensure_ascii=False)


BUILTIN_PROCESSOR_TYPES: dict[str, type[ProcessorConfigBase]] = {
    "drop_columns": DropColumnsProcessorConfig,
    "schema_transform": SchemaTransformProcessorConfig,
}


ProcessorConfig = Annotated[
    Annotated[DropColumnsProcessorConfig, Tag("drop_columns")]
    | Annotated[SchemaTransformProcessorConfig, Tag("schema_transform")]
    | Annotated[
        SerializeAsAny[ProcessorConfigBase],
        BeforeValidator(plugin_config_parser("processor")),
        Tag(PLUGIN_TAG),
    ],
    Discriminator(union_tag("processor", BUILTIN_PROCESSOR_TYPES, ProcessorConfigBase)),
]
"""Any processor config: built in by `processor_type`, or from an installed plugin."""
