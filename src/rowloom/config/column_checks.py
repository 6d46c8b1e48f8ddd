"""Static checks of side-effect columns, listed column references, processors, tools, duplicate
names and unknown column types (part of `DatasetConfig.validate_static`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from jinja2 import TemplateSyntaxError

from rowloom.config.columns import BUILTIN_COLUMN_TYPES
from rowloom.config.errors import ConfigIssue
from rowloom.config.plugins import REGISTRY as PLUGINS
from rowloom.config.processors import DropColumnsProcessorConfig, SchemaTransformProcessorConfig
from rowloom.config.references import column_side_effects, template_references


def processor_issues(config: Any) -> Iterable[ConfigIssue]:
    if config.seed_config is not None and config.seed_columns is None:
        return  # the seed's columns are not known yet: checked once they are
    names = set(config.producers) | set(config.seed_columns or ())
    for proc in config.processors:
        loc = f"processors.{proc.name}"
        if isinstance(proc, DropColumnsProcessorConfig):
            for pattern in proc.column_names:
                if not any(fnmatchcase(n, pattern) for n in names):
                    yield ConfigIssue(
                        "unknown_reference", loc, "column_names", f"no column matches {pattern!r}"
                    )
        elif isinstance(proc, SchemaTransformProcessorConfig):
            try:
                refs = template_references(proc.template_text)
            except TemplateSyntaxError as exc:
                yield ConfigIssue(
                    "template_syntax", loc, "template", f"template does not parse: {exc.message}"
                )
                continue
            for ref in sorted(refs - names):
                yield ConfigIssue(
                    "unknown_reference",
                    loc,
                    "template",
                    f"template refers to unknown column {ref!r}",
                )


def side_effect_issues(config: Any) -> Iterable[ConfigIssue]:
    seen = {c.name for c in config.columns}
    for col in config.columns:
        for extra in column_side_effects(col):
            if extra in seen:
                yield ConfigIssue(
                    "duplicate_column",
                    f"columns.{col.name}",
                    "side_effect_columns",
                    f"side effect column {extra!r} is already a column",
                )
            seen.add(extra)


def listed_column_issues(
    col: Any, loc: str, names: set[str], deferred: bool = False
) -> Iterable[ConfigIssue]:
    """`required_columns` (custom, plugins), `target_columns` (validation) and the columns of
    `multi_modal_context` must exist (checked later when they may be seed columns not read
    yet: `deferred`)."""
    own = {col.name, *column_side_effects(col)}
    for i, context in enumerate(getattr(col, "multi_modal_context", None) or ()):
        field_name = f"multi_modal_context.{i}.column_name"
        if context.column_name in own:
            yield ConfigIssue("self_reference", loc, field_name, "a column cannot read itself")
        elif context.column_name not in names and not deferred:
            yield ConfigIssue(
                "unknown_reference",
                loc,
                field_name,
                f"image column {context.column_name!r} does not exist",
            )
    for field_name in ("required_columns", "target_columns"):
        listed = getattr(col, field_name, None)
        if not isinstance(listed, list | tuple):
            continue
        for req in listed:
            if req in own:
                yield ConfigIssue(
                    "self_reference", loc, field_name, "a column cannot require itself"
                )
            elif req not in names and not deferred:
                yield ConfigIssue(
                    "unknown_reference", loc, field_name, f"column {req!r} does not exist"
                )


def unknown_column_type_message(tag: Any) -> str:
    known = [*BUILTIN_COLUMN_TYPES, *PLUGINS.names("column_generator")]
    msg = f"unknown column_type {tag!r}; expected one of {known}"
    broken = PLUGINS.errors()
    if broken:
        msg += "; plugins that failed to load: " + "; ".join(f"{k}: {v}" for k, v in broken.items())
    return msg


def tool_issues(config: Any) -> Iterable[ConfigIssue]:
    """MCP providers and tool configs: unique names, known providers, known tool aliases."""
    mcp_names = [p.name for p in config.mcp_providers or ()]
    tools = [t.tool_alias for t in config.tool_configs or ()]
    yield from duplicates(mcp_names, "mcp_providers", "name", "duplicate_mcp_provider")
    yield from duplicates(tools, "tool_configs", "tool_alias", "duplicate_tool_alias")
    for tool in config.tool_configs or ():
        for name in tool.providers:
            if name not in mcp_names:
                yield ConfigIssue(
                    "unknown_mcp_provider",
                    f"tool_configs.{tool.tool_alias}",
                    "providers",
                    f"MCP provider {name!r} is not declared; known: {mcp_names}",
                )
    for col in config.columns:
        alias = getattr(col, "tool_alias", None)
        if alias is not None and alias not in tools:
            yield ConfigIssue(
                "unknown_tool_alias",
                f"columns.{col.name}",
                "tool_alias",
                f"tool alias {alias!r} is not declared in tool_configs; known: {tools}",
            )


def duplicates(
    values: Sequence[str], section: str, field_name: str, code: str
) -> Iterable[ConfigIssue]:
    """An issue per value declared more than once in `section`."""
    seen: set[str] = set()
    for v in values:
        if v in seen:
            yield ConfigIssue(code, f"{section}.{v}", field_name, f"{v!r} is declared twice")
        seen.add(v)
