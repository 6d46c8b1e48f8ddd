"""Processors at run time: per finished row group, columns dropped from the dataset and extra
output tables (`processors/<name>/part-NNNNN.parquet`, one part per row group beside the
dataset's, so a resumed run has the same processor outputs as an uninterrupted one).

A plugin processor subclasses `Processor` and overrides `dropped_columns` and/or `transform`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from jinja2 import StrictUndefined, TemplateError

from rowloom.config.plugins import PluginLoadError, find_plugin
from rowloom.config.processors import DropColumnsProcessorConfig, SchemaTransformProcessorConfig
from rowloom.generators.sandbox import BoundedSandbox, render_bounded


class ProcessorError(Exception):
    """A processor could not process a row group: it stops the run (finished row groups are
    kept); the message names the processor and the row."""


class Processor:
    """What a processor does with one finished row group (override what applies)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.name: str = config.name

    def dropped_columns(self, columns: Sequence[str]) -> list[str]:
        """Which of the dataset's `columns` this processor removes from it."""
        return []

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
        """Rows of this processor's extra output table for these dataset rows (None: none)."""
        return None


class DropColumnsProcessor(Processor):
    """Removes the named columns (`*` globs allowed)."""

    config: DropColumnsProcessorConfig

    def dropped_columns(self, columns: Sequence[str]) -> list[str]:
        patterns = self.config.column_names
        return [c for c in columns if any(fnmatchcase(c, p) for p in patterns)]


def _json_fragment(value: Any) -> str:
    """A value as it is written inside the JSON template: strings escaped in place, objects
    and lists as JSON text, None as null (Data Designer's rules)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if isinstance(value, dict | list):
        return json.dumps(json.dumps(value, ensure_ascii=False), ensure_ascii=False)[1:-1]
    if value is None:
        return "null"
    return str(value)


_ENV = BoundedSandbox(autoescape=False, undefined=StrictUndefined, finalize=_json_fragment)


class SchemaTransformProcessor(Processor):
    """Renders the JSON template per row into a row of its output table."""

    config: SchemaTransformProcessorConfig

    def __init__(self, config: SchemaTransformProcessorConfig) -> None:
        super().__init__(config)
        self._template = _ENV.from_string(config.template_text)

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
        out = []
        for i, row in enumerate(rows):
            try:
                text = render_bounded(self._template, row)
                value = json.loads(text)
            except (TemplateError, ValueError) as exc:
                raise ProcessorError(
                    f"processor {self.name!r} failed on row {i} of its row group: {exc}"
                ) from None
            if not isinstance(value, dict):
                raise ProcessorError(f"processor {self.name!r} did not render a JSON object")
            out.append(value)
        return out


def build_processors(configs: Sequence[Any]) -> list[Processor]:
    """One processor per config, in order (plugins through their implementation class)."""
    out: list[Processor] = []
    for config in configs:
        if isinstance(config, DropColumnsProcessorConfig):
            out.append(DropColumnsProcessor(config))
        elif isinstance(config, SchemaTransformProcessorConfig):
            out.append(SchemaTransformProcessor(config))
        else:
            plugin = find_plugin("processor", str(getattr(config, "processor_type", "")))
            impl = plugin.impl_cls if plugin is not None else None
            if not (isinstance(impl, type) and issubclass(impl, Processor)):
                raise PluginLoadError(f"no rowloom Processor for {type(config).__name__}")
            out.append(impl(config))
    return out


def without_dropped(columns: Sequence[str], processors: Sequence[Processor]) -> list[str]:
    """The dataset's columns less those any processor drops."""
    dropped = {c for p in processors for c in p.dropped_columns(columns)}
    return [c for c in columns if c not in dropped]
