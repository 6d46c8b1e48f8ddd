"""What a column reads and writes: template references, dependencies, side-effect columns
and model aliases, analysed without rendering anything."""

from __future__ import annotations

from typing import Any

from jinja2 import meta, pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rowloom.config.columns import (
    EmbeddingColumnConfig,
    SamplerColumnConfig,
    ValidationColumnConfig,
)
from rowloom.config.sampler_checks import sampler_dependencies

_TEMPLATE_FIELDS = ("prompt", "system_prompt", "expr")


def template_sources(column: Any) -> list[tuple[str, str]]:
    """`(field, Jinja2 source)` of every template a column has (`skip.when` included)."""
    out = [(f, src) for f in _TEMPLATE_FIELDS if isinstance(src := getattr(column, f, None), str)]
    skip = getattr(column, "skip", None)
    if skip is not None:
        out.append(("skip.when", skip.when))
    return out


@pass_context
def _analysis_only(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never rendered
    raise RuntimeError("templates are only analysed here, not rendered")


class _AnalysisEnvironment(ImmutableSandboxedEnvironment):
    """Parses and analyses templates without evaluating any of their code: Jinja folds
    constant expressions while analysing, so every operator is intercepted and every filter is
    a context-taking stub (neither is folded); `{{ 9 ** (9 ** 9) }}` cannot hang validation."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"+", "-"})

    def __init__(self) -> None:
        super().__init__()
        self.filters = dict.fromkeys(self.filters, _analysis_only)


_ENV = _AnalysisEnvironment()
_JINJA_GLOBALS = frozenset(_ENV.globals)


def parse_template(source: str) -> Any:
    """A template's Jinja AST, parsed without evaluating anything (raises
    `jinja2.TemplateSyntaxError`)."""
    return _ENV.parse(source)


def template_references(source: str) -> frozenset[str]:
    """Names a Jinja2 template reads (raises `jinja2.TemplateSyntaxError`)."""
    return frozenset(meta.find_undeclared_variables(_ENV.parse(source))) - _JINJA_GLOBALS


def column_inputs(column: Any) -> tuple[str, ...]:
    """The columns whose values a column reads to compute a cell (not its skip condition)."""
    deps: set[str] = set()
    for field_name in _TEMPLATE_FIELDS:
        source = getattr(column, field_name, None)
        if source:
            deps |= template_references(source)
    if isinstance(column, EmbeddingColumnConfig):
        deps.add(column.target_column)
    if isinstance(column, ValidationColumnConfig):
        deps |= set(column.target_columns)
    for context in getattr(column, "multi_modal_context", None) or ():
        deps.add(context.column_name)
    required = getattr(column, "required_columns", None)  # custom and plugin columns
    if isinstance(required, list | tuple | set | frozenset):
        deps |= {str(c) for c in required}
    if isinstance(column, SamplerColumnConfig):
        deps |= sampler_dependencies(column)
        for condition in column.conditional_params or {}:
            deps |= template_references(condition_template(condition))
    return tuple(sorted(deps))


def condition_template(condition: str) -> str:
    """The Jinja template a `conditional_params` condition is evaluated as."""
    return "{{ " + condition + " }}"


def column_dependencies(column: Any) -> tuple[str, ...]:
    """The columns a column reads, skip condition included, in a stable order."""
    deps = set(column_inputs(column))
    skip = getattr(column, "skip", None)
    if skip is not None:
        deps |= template_references(skip.when)
    return tuple(sorted(deps))


def column_side_effects(column: Any) -> tuple[str, ...]:
    """Extra columns a column's generator writes beside its own (e.g. custom side effects)."""
    extra = getattr(column, "side_effect_columns", None)
    return tuple(str(c) for c in extra) if isinstance(extra, list | tuple) else ()


def column_model_aliases(column: Any) -> tuple[str, ...]:
    """The model aliases a column may call."""
    aliases: list[str] = []
    alias = getattr(column, "model_alias", None)
    if isinstance(alias, str):
        aliases.append(alias)
    more = getattr(column, "model_aliases", None)
    if isinstance(more, list | tuple):
        aliases.extend(str(a) for a in more)
    return tuple(dict.fromkeys(aliases))
