"""Column configs: a discriminated union on `column_type`.

Template fields (`prompt`, `system_prompt`, `expr`, `skip_when`) are Jinja2 over other columns;
their references become the column's dependencies.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from rowloom.config.samplers import (
    SAMPLER_PARAMS,
    SamplerParams,
    SamplerType,
    Shape,
    plain_params,
    shape_after_convert,
)
from rowloom.config.scheduling import SchedulingMetadata

_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- columns ----------------------------------------------------------------------------------


class ColumnConfigBase(_Strict):
    """Fields every column has."""

    name: str = Field(pattern=_NAME_PATTERN, max_length=128)
    drop: bool = Field(False, description="computed and usable by other columns, not written")
    skip_when: str | None = Field(
        None, description="Jinja2 condition; a true result skips the cell"
    )


class SamplerColumnConfig(ColumnConfigBase):
    """A seeded, deterministic sampled value.

    `conditional_params` maps a condition (a Jinja expression over other columns, e.g.
    `"age > 65"` or `"country == 'FR'"`) to the params used where it holds; where several
    hold, the last wins; elsewhere `params` apply. `convert_to` casts numbers (`int`, `float`,
    `str`) or formats datetimes (a strftime format).
    """

    column_type: Literal["sampler"] = "sampler"
    sampler_type: SamplerType
    params: dict[str, Any] = Field(default_factory=dict)
    conditional_params: dict[str, dict[str, Any]] | None = None
    convert_to: str | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("sampler_type")
        data = dict(data)
        if isinstance(kind, str) and "params" in data:
            data["params"] = plain_params(kind, data["params"])
        conditional = data.get("conditional_params")
        if isinstance(kind, str) and isinstance(conditional, dict):
            data["conditional_params"] = {
                cond: plain_params(kind, p) for cond, p in conditional.items()
            } or None
        return data

    def typed_params(self) -> Any:
        """`params` validated by the sampler type's parameter model."""
        return SAMPLER_PARAMS[self.sampler_type].model_validate(self.params)

    def typed_conditional_params(self) -> dict[str, SamplerParams]:
        """Each condition's params, validated."""
        model = SAMPLER_PARAMS[self.sampler_type]
        return {c: model.model_validate(p) for c, p in (self.conditional_params or {}).items()}

    def output_shape(self) -> Shape | None:
        """The shape of this column's values (None when its params are invalid)."""
        try:
            shapes = [self.typed_params().output_shape()]
            shapes += [p.output_shape() for p in self.typed_conditional_params().values()]
        except ValueError:
            return None
        shape = shapes[0]
        if shape is not None and all("enum" in s for s in shapes if s is not None):
            merged = [v for s in shapes if s is not None for v in s["enum"]]
            shape = {**shape, "enum": list(dict.fromkeys(merged))}
        return shape_after_convert(shape, self.convert_to, self.sampler_type)


ExpressionDtype: TypeAlias = Literal["str", "int", "float", "bool", "json"]


class ExpressionColumnConfig(ColumnConfigBase):
    """A sandboxed Jinja2 expression over other columns, cast to `dtype`."""

    column_type: Literal["expression"] = "expression"
    expr: str = Field(min_length=1)
    dtype: ExpressionDtype = "str"


class LLMTextColumnConfig(ColumnConfigBase):
    """Free text written by a chat model."""

    column_type: Literal["llm_text"] = "llm_text"
    model_alias: str
    prompt: str = Field(min_length=1)
    system_prompt: str | None = None


def _schema_of(value: Any) -> Any:
    if isinstance(value, type) and issubclass(value, BaseModel):
        return value.model_json_schema()
    return value


class LLMStructuredColumnConfig(LLMTextColumnConfig):
    """JSON output validated against a schema, with corrective retries on invalid output."""

    column_type: Literal["llm_structured"] = "llm_structured"  # type: ignore[assignment]
    output_format: dict[str, Any] = Field(
        description="a JSON schema (or, from Python, a pydantic model class)"
    )
    max_correction_attempts: int = Field(2, ge=0, le=10)

    @field_validator("output_format", mode="before")
    @classmethod
    def _model_to_schema(cls, value: Any) -> Any:
        return _schema_of(value)

    @field_validator("output_format")
    @classmethod
    def _is_object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") not in ("object", None) or not (
            "properties" in value or "$ref" in value or "type" in value
        ):
            raise ValueError("output_format must be a JSON schema for an object")
        return value


class Score(_Strict):
    """One judged dimension: a name, what it means, and its allowed options."""

    name: str = Field(pattern=_NAME_PATTERN)
    description: str = Field(min_length=1)
    options: dict[str, str] = Field(
        min_length=2, description="option value -> what it means (e.g. '1': 'poor')"
    )


class LLMJudgeColumnConfig(LLMTextColumnConfig):
    """Rubric scores from a judge model: `{score_name: {score, reasoning}}`."""

    column_type: Literal["llm_judge"] = "llm_judge"  # type: ignore[assignment]
    scores: list[Score] = Field(min_length=1)
    max_correction_attempts: int = Field(2, ge=0, le=10)

    @field_validator("scores")
    @classmethod
    def _unique(cls, scores: list[Score]) -> list[Score]:
        names = [s.name for s in scores]
        if len(set(names)) != len(names):
            raise ValueError("score names must be unique")
        return scores


class EmbeddingColumnConfig(ColumnConfigBase):
    """The embedding vector of another column's text."""

    column_type: Literal["embedding"] = "embedding"
    model_alias: str
    target_column: str


def _resolve_callable(value: Any) -> Any:
    if callable(value):
        return value
    if isinstance(value, str) and ":" in value:
        module_name, _, attr = value.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import {value!r}: {exc}") from None
        if not callable(obj):
            raise ValueError(f"{value!r} is not callable")
        return obj
    raise ValueError("function must be a callable or an import path 'package.module:function'")


def _callable_path(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"{fn!r} has no importable path; define it at module level")
    return f"{module}:{qualname}"


CustomFunction = Annotated[
    Callable[..., Any],
    PlainSerializer(_callable_path, return_type=str),
    WithJsonSchema({"type": "string"}),
]


class CustomColumnConfig(ColumnConfigBase):
    """A Python function (sync or async) called once per row.

    It receives the row (its `required_columns`) and a `ModelFacade` with which it may make any
    number of model calls through `model_aliases`. It may declare its own scheduling metadata.
    """

    column_type: Literal["custom"] = "custom"
    function: CustomFunction
    required_columns: list[str] = Field(default_factory=list)
    model_aliases: list[str] = Field(default_factory=list)
    scheduling_metadata: SchedulingMetadata | None = Field(None, exclude=True)

    @field_validator("function", mode="before")
    @classmethod
    def _load(cls, value: Any) -> Any:
        return _resolve_callable(value)

    @property
    def is_async(self) -> bool:
        """True when `function` is a coroutine function."""
        return inspect.iscoroutinefunction(self.function)


class SeedDatasetColumnConfig(ColumnConfigBase):
    """A column read from the dataset's seed (`seed_config`).

    Every seed column is in the dataset without being declared; declare one only to rename it
    (`source_column`) or to `drop` it. Seed column names need not be identifiers.
    """

    column_type: Literal["seed_dataset"] = "seed_dataset"
    name: str = Field(min_length=1, max_length=256)
    source_column: str | None = Field(None, description="column in the seed; defaults to `name`")

    @property
    def source(self) -> str:
        """The seed column this column reads."""
        return self.source_column or self.name


ColumnConfig = Annotated[
    SamplerColumnConfig
    | ExpressionColumnConfig
    | LLMTextColumnConfig
    | LLMStructuredColumnConfig
    | LLMJudgeColumnConfig
    | EmbeddingColumnConfig
    | CustomColumnConfig
    | SeedDatasetColumnConfig,
    Field(discriminator="column_type"),
]

LLM_COLUMN_TYPES = (LLMTextColumnConfig, EmbeddingColumnConfig)
