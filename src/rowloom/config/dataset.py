"""`DatasetConfig`: the whole table description, its YAML/JSON forms and static validation.

Validation runs before any work and reports every issue it finds, each naming the column (or
model/provider) and the field: duplicate names, unknown template references, dependency cycles,
unknown model aliases and providers, bad sampler params, template syntax errors. Checks that
depend on the machine (API key environment variables) run in `check_environment()`. A seed's
columns are known only once it is opened (`rowloom.seeds`): until then, references that no
declared column satisfies are left for `with_seed_columns()` to check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from rowloom.config.column_checks import (
    duplicates,
    listed_column_issues,
    processor_issues,
    side_effect_issues,
    tool_issues,
    unknown_column_type_message,
)
from rowloom.config.columns import (
    BUILTIN_COLUMN_TYPES,
    MODEL_GENERATION_KIND,
    ColumnConfig,
    CustomColumnConfig,
    EmbeddingColumnConfig,
    ExpressionColumnConfig,
    SamplerColumnConfig,
    SeedDatasetColumnConfig,
)
from rowloom.config.constraints import ColumnInequalityConstraint, Constraint
from rowloom.config.errors import ConfigFileError, ConfigIssue, ConfigValidationError
from rowloom.config.files import check_shape, file_dir, load_text
from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.config.paths import BASE_DIR
from rowloom.config.personas import missing_dataset_message, persona_dataset_path
from rowloom.config.plugins import PLUGIN_TAG
from rowloom.config.plugins import REGISTRY as PLUGINS
from rowloom.config.processors import (
    BUILTIN_PROCESSOR_TYPES,
    DropColumnsProcessorConfig,
    ProcessorConfig,
)
from rowloom.config.references import (
    column_dependencies,
    column_model_aliases,
    column_side_effects,
    condition_template,
    parse_template,
    template_references,
    template_sources,
)
from rowloom.config.run import RunConfig
from rowloom.config.sampler_checks import (
    constraint_issues,
    sampler_column_issues,
)
from rowloom.config.seed import DataFrameSeedSource, SeedConfig
from rowloom.config.template_fields import Shape, field_issues, output_shape_of
from rowloom.config.tools import MCPProviderConfig, ToolConfig

Adapter = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""Rewrites a loaded config document before validation (see `DatasetConfig.from_dict`)."""


class DatasetConfig(BaseModel):
    """Providers, models, columns, an optional seed (`seed_config`), a seed, and run settings.

    The legacy `seed_dataset: {path, format, sampling}` section still loads, as a `seed_config`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: list[ModelProvider] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    columns: list[ColumnConfig] = Field(default_factory=list)
    seed_config: SeedConfig | None = None
    constraints: list[Constraint] | None = Field(
        None, description="inequalities between sampler columns (rejection sampling)"
    )
    seed: int | None = Field(None, description="global seed; unset means 0 (runs are reproducible)")
    run: RunConfig | None = None
    mcp_providers: list[MCPProviderConfig] | None = None
    tool_configs: list[ToolConfig] | None = None
    processors: list[ProcessorConfig] = Field(
        default_factory=list, description="drop_columns / schema_transform / plugin processors"
    )

    _seed_columns: tuple[str, ...] | None = PrivateAttr(None)
    _base_dir: Path | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _legacy_seed_dataset(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "seed_dataset" not in data:
            return data
        data = dict(data)
        legacy = data.pop("seed_dataset")
        if legacy is None:
            return data
        if data.get("seed_config") is not None:
            raise ValueError("set seed_config or the older seed_dataset, not both")
        if not isinstance(legacy, Mapping):
            raise ValueError("seed_dataset must be a mapping with a path")
        legacy = dict(legacy)
        source = {"seed_type": "local", "path": legacy.pop("path", None)}
        if legacy.get("format") is not None:
            source["format"] = legacy.pop("format")
        legacy.pop("format", None)
        data["seed_config"] = {
            "source": source,
            "sampling_strategy": legacy.pop("sampling", "ordered"),
            **legacy,
        }
        return data

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        adapt: Adapter | None = None,
        base_dir: str | Path | None = None,
    ) -> DatasetConfig:
        """Build and statically validate a config; raises `ConfigValidationError`.

        `adapt`, when given, rewrites the (shape-checked) document before validation: the
        loader uses it to read other engines' configs and fill in default models. Relative
        paths (seed files, custom functions' modules) resolve against `base_dir` (the config
        file's folder; default: the working folder), validation included."""
        folder = Path(base_dir).resolve() if base_dir is not None else None
        if not isinstance(data, Mapping):
            raise ConfigFileError(f"a dataset config must be a mapping, got {type(data).__name__}")
        check_shape(data)
        if adapt is not None:
            data = adapt(data)
        try:
            config = cls.model_validate(dict(data), context={BASE_DIR: folder})
        except ValidationError as exc:
            raise ConfigValidationError(_issues_from_pydantic(exc, data)) from None
        config._base_dir = folder
        config.validate_static()
        return config

    @classmethod
    def from_yaml(cls, source: str | Path, *, adapt: Adapter | None = None) -> DatasetConfig:
        """Load from a YAML file path or a YAML string; a file's folder becomes `base_dir`."""
        data = load_text(source, yaml_mode=True)
        return cls.from_dict(data, adapt=adapt, base_dir=file_dir(source))

    @classmethod
    def from_json(cls, source: str | Path, *, adapt: Adapter | None = None) -> DatasetConfig:
        """Load from a JSON file path or a JSON string; a file's folder becomes `base_dir`."""
        data = load_text(source, yaml_mode=False)
        return cls.from_dict(data, adapt=adapt, base_dir=file_dir(source))

    @classmethod
    def from_file(cls, path: str | Path, *, adapt: Adapter | None = None) -> DatasetConfig:
        """Load from a `.yaml`/`.yml` or `.json` file."""
        p = Path(path)
        if p.suffix.lower() == ".json":
            return cls.from_json(p, adapt=adapt)
        return cls.from_yaml(p, adapt=adapt)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data, without unset optional fields (the YAML shape)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)

    def _serialisable_dict(self) -> dict[str, Any]:
        if self.seed_config is not None and isinstance(
            self.seed_config.source, DataFrameSeedSource
        ):
            raise ConfigFileError(
                "a DataFrame seed cannot be written to a config file; save it as parquet "
                "(df.to_parquet(path)) and use a `local` seed source with that path"
            )
        return self.to_dict()

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Dump as YAML; also write it to `path` when given."""
        data = self._serialisable_dict()
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if yaml.safe_load(text) != data:  # PyYAML emits some line-break characters raw
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        """Dump as JSON; also write it to `path` when given."""
        text = json.dumps(self._serialisable_dict(), indent=2, ensure_ascii=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def fingerprint(self) -> str:
        """A stable hash of everything that determines generated values (not `run`)."""
        data = self.to_dict()
        data.pop("run", None)
        if self.seed_config is not None and isinstance(
            self.seed_config.source, DataFrameSeedSource
        ):
            data["seed_config"]["source"]["content_hash"] = self.seed_config.source.content_hash()
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def __eq__(self, other: object) -> bool:
        """Same fields (where the config was loaded from, `base_dir`, does not count)."""
        if not isinstance(other, DatasetConfig):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in type(self).model_fields)

    __hash__ = BaseModel.__hash__

    # --- paths --------------------------------------------------------------------------------

    @property
    def base_dir(self) -> Path | None:
        """The folder of the file this config was loaded from (None when built in Python or
        from a string): relative paths in the config resolve against it."""
        return self._base_dir

    def with_base_dir(self, base_dir: str | Path | None) -> DatasetConfig:
        """This config with relative paths resolving against `base_dir`."""
        copy = self.model_copy()
        copy._base_dir = Path(base_dir).resolve() if base_dir is not None else None
        return copy

    def resolve_path(self, path: str | Path) -> Path:
        """A path of the config as the engine opens it: `~` expanded, and a relative path
        joined to `base_dir` (else left relative to the working folder)."""
        p = Path(path).expanduser()
        if p.is_absolute() or self._base_dir is None:
            return p
        return self._base_dir / p

    # --- derived views ------------------------------------------------------------------------

    @property
    def effective_seed(self) -> int:
        """The seed used for sampling (0 when unset)."""
        return self.seed if self.seed is not None else 0

    @property
    def run_config(self) -> RunConfig:
        """The `run:` section, or defaults."""
        return self.run or RunConfig()

    @cached_property
    def column_by_name(self) -> dict[str, Any]:
        """Columns by name."""
        return {c.name: c for c in self.columns}

    @cached_property
    def producers(self) -> dict[str, str]:
        """Every column name, side-effect columns included -> the column that writes it."""
        out = {c.name: c.name for c in self.columns}
        for c in self.columns:
            for extra in column_side_effects(c):
                out.setdefault(extra, c.name)
        return out

    @cached_property
    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """Each column's upstream columns (a side-effect column counts as its producer; a
        column constraint's `rhs` included)."""
        producers = self.producers
        deps = {c.name: {producers.get(d, d) for d in column_dependencies(c)} for c in self.columns}
        for con in self.constraints or ():
            if isinstance(con, ColumnInequalityConstraint) and con.target_column in deps:
                deps[con.target_column].add(con.rhs)
        return {name: tuple(sorted(d)) for name, d in deps.items()}

    @cached_property
    def topological_order(self) -> tuple[str, ...]:
        """Column names in dependency order, ties broken by declaration order."""
        order = _topological_order([c.name for c in self.columns], self.dependencies)
        if order is None:
            raise ConfigValidationError(_cycle_issues(self))
        return order

    def output_columns(self) -> list[str]:
        """Columns written to the dataset (declaration order, without dropped ones); a
        column's side-effect columns follow it."""
        out: list[str] = []
        for c in self.columns:
            if not c.drop:
                out.append(c.name)
            out.extend(column_side_effects(c))
        patterns = [
            p
            for proc in self.processors
            if isinstance(proc, DropColumnsProcessorConfig)
            for p in proc.column_names
        ]
        return [c for c in out if not any(fnmatchcase(c, p) for p in patterns)]

    @property
    def seed_columns(self) -> tuple[str, ...] | None:
        """The seed's column names once known (`with_seed_columns`), else None."""
        return self._seed_columns

    def with_seed_columns(self, seed_columns: Sequence[str]) -> DatasetConfig:
        """This config with every seed column as a column, validated against the seed.

        Seed columns that no declared `seed_dataset` column reads come first, in the seed's
        order; a seed column whose name another (non-seed) column uses is an error.
        """
        if self.seed_config is None:
            raise ValueError("this config has no seed_config")
        declared = {c.name: c for c in self.columns}
        read = {c.source for c in self.columns if isinstance(c, SeedDatasetColumnConfig)}
        issues = [
            ConfigIssue(
                "seed_column_collision",
                f"columns.{name}",
                "name",
                f"the seed has a column {name!r} too; rename this column, or declare the seed "
                "column with `column_type: seed_dataset` (and `source_column`) to rename it",
            )
            for name in seed_columns
            if name in declared and not isinstance(declared[name], SeedDatasetColumnConfig)
        ]
        if issues:
            raise ConfigValidationError(issues)
        implicit = [
            SeedDatasetColumnConfig(name=name)
            for name in seed_columns
            if name not in read and name not in declared
        ]
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        fields["columns"] = [*implicit, *self.columns]
        expanded = type(self)(**fields)
        expanded._seed_columns = tuple(seed_columns)
        expanded._base_dir = self._base_dir
        expanded.validate_static()
        return expanded

    # --- validation ---------------------------------------------------------------------------

    def validate_static(self) -> None:
        """Raise `ConfigValidationError` listing every static problem; no I/O, no env."""
        issues = list(_static_issues(self))
        if issues:
            raise ConfigValidationError(issues)

    def check_environment(self) -> None:
        """Checks that depend on this machine: API key variables set (for the providers of
        models some column uses), Nemotron-Personas datasets present (for `person` samplers
        with `source: nemotron_personas`); seeds are opened and checked by `rowloom.seeds`."""
        issues: list[ConfigIssue] = []
        by_alias = {m.alias: m for m in self.models}
        used = {
            by_alias[a].provider
            for c in self.columns
            for a in column_model_aliases(c)
            if a in by_alias
        }
        for p in self.providers:
            if p.provider_type == "openai" and p.api_key_env and p.name in used:
                import os

                if not os.environ.get(p.api_key_env):
                    issues.append(
                        ConfigIssue(
                            "missing_api_key_env",
                            f"providers.{p.name}",
                            "api_key_env",
                            f"environment variable {p.api_key_env} is not set",
                        )
                    )
        issues += _person_dataset_issues(self.columns)
        if issues:
            raise ConfigValidationError(issues)


def _person_dataset_issues(columns: Iterable[Any]) -> list[ConfigIssue]:
    """A Nemotron-Personas dataset a person sampler needs that is not on this machine."""
    out: list[ConfigIssue] = []
    for col in columns:
        if isinstance(col, SamplerColumnConfig) and col.sampler_type == "person":
            for p in (col.typed_params(), *col.typed_conditional_params().values()):
                if p.source == "nemotron_personas" and not persona_dataset_path(p.locale).is_file():
                    where = f"columns.{col.name}"
                    message = missing_dataset_message(p.locale)
                    out.append(
                        ConfigIssue("missing_person_dataset", where, "params.locale", message)
                    )
    return out


def _topological_order(
    names: Sequence[str], deps: Mapping[str, Iterable[str]]
) -> tuple[str, ...] | None:
    position = {n: i for i, n in enumerate(names)}
    remaining = {n: {d for d in deps.get(n, ()) if d in position} for n in names}
    order: list[str] = []
    while remaining:
        ready = sorted((n for n, d in remaining.items() if not d), key=position.__getitem__)
        if not ready:
            return None
        first = ready[0]
        order.append(first)
        del remaining[first]
        for d in remaining.values():
            d.discard(first)
    return tuple(order)


def _cycle_issues(config: DatasetConfig) -> list[ConfigIssue]:
    names = [c.name for c in config.columns]
    known = set(names)
    remaining = {n: {d for d in config.dependencies[n] if d in known} for n in names}
    changed = True
    while changed:
        changed = False
        for n in [n for n, d in remaining.items() if not d]:
            del remaining[n]
            for d in remaining.values():
                d.discard(n)
            changed = True
    in_cycle = sorted(remaining, key=names.index)
    return [
        ConfigIssue(
            "dependency_cycle",
            f"columns.{n}",
            None,
            f"column {n!r} is part of a dependency cycle among {in_cycle}",
        )
        for n in in_cycle
    ]


def _static_issues(config: DatasetConfig) -> Iterable[ConfigIssue]:
    provider_names = [p.name for p in config.providers]
    yield from duplicates(provider_names, "providers", "name", "duplicate_provider")
    yield from duplicates([m.alias for m in config.models], "models", "alias", "duplicate_alias")
    yield from duplicates([c.name for c in config.columns], "columns", "name", "duplicate_column")
    for m in config.models:
        if m.provider not in provider_names:
            yield ConfigIssue(
                "unknown_provider",
                f"models.{m.alias}",
                "provider",
                f"provider {m.provider!r} is not declared; known: {provider_names}",
            )
    yield from tool_issues(config)
    models = {m.alias: m for m in config.models}
    yield from side_effect_issues(config)
    processor_names = [p.name for p in config.processors]
    yield from duplicates(processor_names, "processors", "name", "duplicate_processor")
    yield from processor_issues(config)
    names = set(config.producers)
    if not config.columns and config.seed_config is None:
        yield ConfigIssue("no_columns", "columns", None, "a config needs columns or a seed_config")
    deferred = config.seed_config is not None and config.seed_columns is None
    template_ok = True
    for col in config.columns:
        loc = f"columns.{col.name}"
        own = {col.name, *column_side_effects(col)}
        for field_name, source in template_sources(col):
            try:
                refs = template_references(source)
            except TemplateSyntaxError as exc:
                template_ok = False
                yield ConfigIssue(
                    "template_syntax",
                    loc,
                    field_name,
                    f"template does not parse: {exc.message} (line {exc.lineno})",
                )
                continue
            for ref in sorted(refs - names) if not deferred else ():
                template_ok = False
                yield ConfigIssue(
                    "unknown_reference",
                    loc,
                    field_name,
                    f"template refers to unknown column {ref!r}" + _seed_hint(config),
                )
            if field_name == "skip.when" and not refs:
                yield ConfigIssue(
                    "invalid_skip",
                    loc,
                    field_name,
                    "skip.when refers to no column; write it with delimiters, "
                    "e.g. '{{ in_stock == 0 }}'",
                )
            if own & refs:
                template_ok = False
                yield ConfigIssue(
                    "self_reference", loc, field_name, "a column cannot refer to itself"
                )
            yield from _template_field_issues(config, col.name, loc, field_name, source)
        if isinstance(col, SamplerColumnConfig):
            template_ok &= yield from _condition_issues(config, col, loc, names, deferred)
        yield from _column_issues(col, loc, names, models, config, deferred)
    yield from constraint_issues(config.constraints or [], config.column_by_name)
    if (
        template_ok
        and _topological_order([c.name for c in config.columns], config.dependencies) is None
    ):
        yield from _cycle_issues(config)


def _seed_hint(config: DatasetConfig) -> str:
    if config.seed_columns is None:
        return ""
    return f" (the seed's columns are {list(config.seed_columns)})"


def _seed_column_issues(
    col: SeedDatasetColumnConfig, loc: str, config: DatasetConfig
) -> Iterable[ConfigIssue]:
    if config.seed_config is None:
        yield ConfigIssue(
            "missing_seed_config",
            loc,
            "column_type",
            "a seed_dataset column needs a top-level seed_config (or seed_dataset) section",
        )
    elif config.seed_columns is not None and col.source not in config.seed_columns:
        yield ConfigIssue(
            "unknown_seed_column",
            loc,
            "source_column" if col.source_column else "name",
            f"the seed has no column {col.source!r}; it has {list(config.seed_columns)}",
        )


def _template_field_issues(
    config: DatasetConfig, column: str, loc: str, field_name: str, source: str
) -> Iterable[ConfigIssue]:
    """Fields a template reads that the referenced column does not produce."""

    def shape(name: str) -> Shape | None:
        other = config.column_by_name.get(name)
        if other is None or name == column:
            return None
        try:
            return output_shape_of(other)
        except Exception:  # a shape that cannot be computed is not known
            return None

    for problem in field_issues(parse_template(source), shape):
        yield ConfigIssue(
            "unknown_field",
            loc,
            field_name,
            f"template reads {{{{ {problem.expression} }}}}, but column {problem.column!r} "
            f"cannot have it: {problem.message}",
        )


def _column_issues(
    col: Any,
    loc: str,
    names: set[str],
    models: Mapping[str, ModelConfig],
    config: DatasetConfig,
    deferred: bool,
) -> Iterable[ConfigIssue]:
    for alias in column_model_aliases(col):
        model = models.get(alias)
        field_name = "model_alias" if not isinstance(col, CustomColumnConfig) else "model_aliases"
        if model is None:
            yield ConfigIssue(
                "unknown_model_alias",
                loc,
                field_name,
                f"model alias {alias!r} is not declared; known: {sorted(models)}",
            )
            continue
        wanted = MODEL_GENERATION_KIND.get(type(col), "chat")
        if not isinstance(col, CustomColumnConfig) and model.generation_kind != wanted:
            yield ConfigIssue(
                "wrong_generation_kind",
                loc,
                "model_alias",
                f"model {alias!r} is a {model.generation_kind} model; "
                f"a {col.column_type} column needs a {wanted} model",
            )
    if isinstance(col, SamplerColumnConfig):
        yield from sampler_column_issues(col, loc, config.column_by_name)
    if isinstance(col, EmbeddingColumnConfig) and col.target_column not in names and not deferred:
        yield ConfigIssue(
            "unknown_reference",
            loc,
            "target_column",
            f"target column {col.target_column!r} does not exist",
        )
    yield from listed_column_issues(col, loc, names, deferred)
    if isinstance(col, SeedDatasetColumnConfig):
        yield from _seed_column_issues(col, loc, config)
    if isinstance(col, ExpressionColumnConfig) and not col.expr.strip():
        yield ConfigIssue("empty_expression", loc, "expr", "expression is empty")


def _condition_issues(
    config: DatasetConfig, col: SamplerColumnConfig, loc: str, names: set[str], deferred: bool
) -> Generator[ConfigIssue, None, bool]:
    """Conditions of `conditional_params` parse, name known columns (not this one) and read
    only fields those columns have."""
    ok = True
    for condition in col.conditional_params or {}:
        field_name = f"conditional_params.{condition}"
        try:
            refs = template_references(condition_template(condition))
        except TemplateSyntaxError as exc:
            ok = False
            yield ConfigIssue(
                "template_syntax", loc, field_name, f"condition does not parse: {exc.message}"
            )
            continue
        for ref in sorted(refs - names) if not deferred else ():
            ok = False
            yield ConfigIssue(
                "unknown_reference", loc, field_name, f"condition refers to unknown column {ref!r}"
            )
        if col.name in refs:
            ok = False
            yield ConfigIssue("self_reference", loc, field_name, "a column cannot refer to itself")
        yield from _template_field_issues(
            config, col.name, loc, field_name, condition_template(condition)
        )
    return ok


def _issues_from_pydantic(exc: ValidationError, data: Mapping[str, Any]) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        loc = list(err["loc"])
        location, field_name = _describe_loc(loc, data)
        msg = err["msg"]
        tag = "seed_type" if loc[:1] == ["seed_config"] else "column_type"
        if location.startswith("processors"):
            tag = "processor_type"
        if err["type"] == "union_tag_invalid" and location.startswith("columns"):
            msg = unknown_column_type_message(err.get("ctx", {}).get("tag"))
        elif err["type"] == "union_tag_invalid" and location.startswith("processors"):
            known = [*BUILTIN_PROCESSOR_TYPES, *PLUGINS.names("processor")]
            msg = (
                f"unknown processor_type {err.get('ctx', {}).get('tag')!r}; expected one of {known}"
            )
        elif err["type"] == "union_tag_invalid":
            expected = str(err.get("ctx", {}).get("expected_tags")).replace(", 'plugin'", "")
            msg = f"unknown {tag}; expected one of {expected} (or a plugin's)"
        elif err["type"] == "union_tag_not_found":
            msg = f"{tag} is required"
            field_name = ".".join([*(field_name or "").split(".")[:1], tag]).strip(".")
            if tag == "seed_type":
                field_name = "source.seed_type"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field"
        issues.append(ConfigIssue(err["type"], location, field_name, msg))
    return issues


_SECTIONS = {"columns": "name", "models": "alias", "providers": "name", "processors": "name"}


def _describe_loc(loc: list[Any], data: Mapping[str, Any]) -> tuple[str, str | None]:
    if not loc:
        return "config", None
    section = str(loc[0])
    if section in _SECTIONS and len(loc) > 1 and isinstance(loc[1], int):
        entries = data.get(section)
        entry = None
        if isinstance(entries, list | tuple) and loc[1] < len(entries):
            entry = entries[loc[1]]
        key = _SECTIONS[section]
        label = entry.get(key) if isinstance(entry, Mapping) else None
        location = f"{section}.{label}" if label else f"{section}[{loc[1]}]"
        rest = [str(p) for p in loc[2:] if not _is_union_tag(p)]
        return location, ".".join(rest) or None
    return section, ".".join(str(p) for p in loc[1:]) or None


def _is_union_tag(part: Any) -> bool:
    return part in BUILTIN_COLUMN_TYPES or part in _OTHER_TAGS


_OTHER_TAGS = frozenset(
    {PLUGIN_TAG, "code", "local_callable", "remote", "drop_columns", "schema_transform"}
)
