"""Column configs: a discriminated union on `column_type`.

Template fields (`prompt`, `system_prompt`, `expr`, `skip.when`) are Jinja2 over other columns;
their references become the column's dependencies. Field names follow Data Designer's where it
has the same concept.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeAlias

from jinja2 import Environment, TemplateSyntaxError
from jinja2 import nodes as jinja_nodes
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializeAsAny,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rowloom.config.callables import CustomFunction, resolve_callable
from rowloom.config.code_lang import CodeLang
from rowloom.config.media import ImageContext
from rowloom.config.paths import base_dir_of
from rowloom.config.plugins import PLUGIN_TAG, plugin_config_parser, union_tag
from rowloom.config.samplers import (
    SAMPLER_PARAMS,
    SamplerParams,
    SamplerType,
    Shape,
    plain_params,
    shape_after_convert,
)
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.config.validators import (
    CodeValidatorParams,
    ValidatorParams,
    ValidatorType,
    code_validation_shape,
)

_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- columns ----------------------------------------------------------------------------------


SkipValue: TypeAlias = bool | int | float | str | None


class SkipConfig(_Strict):
    """A condition that skips a cell: no call is made and the cell gets `value`."""

    when: str = Field(
        min_length=1, description="Jinja2 expression over other columns; truthy skips the cell"
    )
    value: SkipValue = Field(None, description="the value written for a skipped cell")


class ColumnConfigBase(_Strict):
    """Fields every column has."""

    name: str = Field(pattern=_NAME_PATTERN, max_length=128)
    drop: bool = Field(False, description="computed and usable by other columns, not written")
    skip: SkipConfig | None = Field(None, description="skip a cell when `skip.when` is truthy")
    propagate_skip: bool = Field(
        True,
        description="skip a cell when a column it reads was skipped for that row",
        exclude_if=lambda v: (
            v is True
        ),  # the default is not written: fingerprints stay as they were
    )

    @model_validator(mode="before")
    @classmethod
    def _skip_when_shorthand(cls, data: Any) -> Any:
        """`skip_when: X` is the shorthand of `skip: {when: X}`."""
        if isinstance(data, dict) and "skip_when" in data:
            data = dict(data)
            when = data.pop("skip_when")
            if when is not None:
                if data.get("skip") is not None:
                    raise ValueError("give either skip_when or skip, not both")
                data["skip"] = {"when": when}
        return data

    def output_shape(self) -> dict[str, Any] | None:
        """A JSON-schema subset describing this column's values (None: unknown)."""
        return None


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

    @model_validator(mode="after")
    def _skip_value_dtype(self) -> ExpressionColumnConfig:
        """A skipped cell's value has the column's dtype, as computed cells do."""
        skip = self.skip
        cast = {"str": str, "int": int, "float": float, "bool": bool}.get(self.dtype)
        if skip is None or skip.value is None or cast is None or type(skip.value) is cast:
            return self
        try:
            value = cast(skip.value)
        except (TypeError, ValueError):
            raise ValueError(f"skip.value {skip.value!r} is not a valid {self.dtype}") from None
        object.__setattr__(self, "skip", SkipConfig(when=skip.when, value=value))
        return self

    def output_shape(self) -> dict[str, Any] | None:
        """The dtype's type; unknown for a `str` expression that is one value alone
        (`{{ person.openness }}`): its text may be a whole object, which templates can read
        into (`{{ openness.description }}`)."""
        if self.dtype == "str" and _one_value(self.expr):
            return None
        kinds = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
        return {"type": kinds[self.dtype]} if self.dtype in kinds else None


def _one_value(expr: str) -> bool:
    """True when `expr` is a single `{{ ... }}` with no text around it."""
    try:
        body = _PARSER.parse(expr).body
    except TemplateSyntaxError:
        return False
    return (
        len(body) == 1
        and isinstance(body[0], jinja_nodes.Output)
        and len(body[0].nodes) == 1
        and not isinstance(body[0].nodes[0], jinja_nodes.TemplateData)
    )


_PARSER = Environment()


TraceType: TypeAlias = Literal["none", "last_message", "all_messages"]
REASONING_CONTENT_SUFFIX = "__reasoning_content"
TRACE_SUFFIX = "__trace"


class LLMTextColumnConfig(ColumnConfigBase):
    """Free text written by a chat model.

    `extract_reasoning_content` adds `<name>__reasoning_content` (the model's reasoning, from
    its `reasoning_content` field or inline `<think>` blocks); `with_trace` adds `<name>__trace`
    (the final assistant message, or every message of the exchange incl. tool calls);
    `multi_modal_context` sends images with the prompt (which may then be empty, as for an
    OCR model that reads only the image); `tool_alias` lets the model call the tools of that
    tool config.
    """

    column_type: Literal["llm_text"] = "llm_text"
    model_alias: str
    prompt: str
    system_prompt: str | None = None
    multi_modal_context: list[ImageContext] | None = None
    tool_alias: str | None = None
    with_trace: TraceType | None = Field(None, description="unset means none")
    extract_reasoning_content: bool | None = Field(None, description="unset means false")

    @model_validator(mode="after")
    def _something_to_send(self) -> LLMTextColumnConfig:
        if not self.prompt and not self.multi_modal_context:
            raise ValueError("prompt is empty and there is no multi_modal_context: nothing to send")
        return self

    @property
    def side_effect_columns(self) -> list[str]:
        """The extra columns this column writes (`__reasoning_content`, `__trace`)."""
        extra = []
        if self.extract_reasoning_content:
            extra.append(f"{self.name}{REASONING_CONTENT_SUFFIX}")
        if self.with_trace not in (None, "none"):
            extra.append(f"{self.name}{TRACE_SUFFIX}")
        return extra


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

    def output_shape(self) -> dict[str, Any] | None:
        return dict(self.output_format)


class LLMCodeColumnConfig(LLMTextColumnConfig):
    """Code written by a chat model in `code_lang`; the value is the code of the answer's
    (last) fenced block."""

    column_type: Literal["llm_code"] = "llm_code"  # type: ignore[assignment]
    code_lang: CodeLang
    max_correction_attempts: int = Field(2, ge=0, le=10)

    def output_shape(self) -> dict[str, Any] | None:
        return {"type": "string"}


ScoreOption: TypeAlias = int | str


class Score(_Strict):
    """One judged dimension: a name (any text), what it means, and its options (int or str
    keys, each with what it means)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    options: dict[ScoreOption, str] = Field(
        min_length=1, description="option -> what it means (e.g. 1: poor, 5: excellent)"
    )

    @field_validator("options", mode="before")
    @classmethod
    def _no_bool_keys(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(isinstance(k, bool) or k is None for k in value):
            raise ValueError("option keys must be integers or strings")
        return value


class LLMJudgeColumnConfig(LLMTextColumnConfig):
    """Rubric scores from a judge model: `{score_name: {"reasoning": text, "score": option}}`."""

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

    def output_shape(self) -> dict[str, Any] | None:
        return {
            "type": "object",
            "properties": {s.name: _judge_score_shape(s) for s in self.scores},
            "required": [s.name for s in self.scores],
            "additionalProperties": False,
        }


def _judge_score_shape(score: Score) -> dict[str, Any]:
    kinds = {type(k) for k in score.options}
    option_shape: dict[str, Any] = {"enum": list(score.options)}
    if len(kinds) == 1:
        option_shape["type"] = "integer" if kinds == {int} else "string"
    return {
        "type": "object",
        "properties": {"reasoning": {"type": "string"}, "score": option_shape},
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    }


class EmbeddingColumnConfig(ColumnConfigBase):
    """The embedding vector of another column's text."""

    column_type: Literal["embedding"] = "embedding"
    model_alias: str
    target_column: str

    def output_shape(self) -> dict[str, Any] | None:
        return {"type": "array", "items": {"type": "number"}}


class ImageColumnConfig(ColumnConfigBase):
    """An image generated from a prompt by an `image` model (the provider's images endpoint),
    stored as a PNG (or the provider's format) under the run folder's `images/<column>/`; the
    dataset holds its path relative to the run folder (a `data:` URI in a preview)."""

    column_type: Literal["image"] = "image"
    model_alias: str
    prompt: str = Field(min_length=1)
    multi_modal_context: list[ImageContext] | None = Field(
        None, description="accepted for Data Designer configs; images endpoints ignore it"
    )

    def output_shape(self) -> dict[str, Any] | None:
        return {"type": "string"}


GenerationStrategy: TypeAlias = Literal["cell_by_cell", "full_column"]
CUSTOM_FUNCTION_PARAMS = ("generator_params", "models", "facade")
"""Names a custom function's parameters after the first (`row` or `df`) may have."""


class CustomColumnConfig(ColumnConfigBase):
    """A Python function (sync or async) that computes the column.

    `cell_by_cell` calls `generator_function(row, ...)` once per row; `full_column` calls
    `generator_function(df, ...)` once per row group with a pandas DataFrame. After the first
    parameter the function may take `generator_params` (this config's `generator_params`) and
    `models` (model access through `model_aliases`), by name. A cell function returns the value,
    or a dict with the column and its `side_effect_columns`; a full-column function returns the
    DataFrame with those columns added (or a list of values). Metadata from the
    `@custom_column_generator` decorator fills `required_columns`, `side_effect_columns` and
    `model_aliases` when the config leaves them empty.
    """

    column_type: Literal["custom"] = "custom"
    generator_function: CustomFunction
    generation_strategy: GenerationStrategy = "cell_by_cell"
    generator_params: dict[str, Any] | SerializeAsAny[BaseModel] | None = None
    required_columns: list[str] = Field(default_factory=list)
    side_effect_columns: list[str] = Field(default_factory=list)
    model_aliases: list[str] = Field(default_factory=list)
    scheduling_metadata: SchedulingMetadata | None = Field(None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _former_name(cls, data: Any) -> Any:
        """`function` is accepted for `generator_function`."""
        if isinstance(data, dict) and "function" in data:
            if "generator_function" in data:
                raise ValueError("give either function or generator_function, not both")
            data = dict(data)
            data["generator_function"] = data.pop("function")
        return data

    @field_validator("generator_function", mode="before")
    @classmethod
    def _load(cls, value: Any, info: ValidationInfo) -> Any:
        return resolve_callable(value, base_dir_of(info))

    @model_validator(mode="after")
    def _signature(self) -> CustomColumnConfig:
        meta = getattr(self.generator_function, "custom_column_metadata", None)
        if isinstance(meta, dict):  # the decorator's metadata fills undeclared lists
            for key in ("required_columns", "side_effect_columns", "model_aliases"):
                if not getattr(self, key) and meta.get(key):
                    object.__setattr__(self, key, [str(v) for v in meta[key]])
        params = function_parameters(self.generator_function)
        if not 1 <= len(params) <= 3:
            raise ValueError(
                f"generator_function must take 1 to 3 positional parameters, got {len(params)}"
            )
        first = "df" if self.generation_strategy == "full_column" else "row"
        other = "row" if first == "df" else "df"
        if params[0] == other:
            raise ValueError(
                f"a {self.generation_strategy} function's first parameter is {first!r}, "
                f"not {other!r}"
            )
        for name in params[1:]:
            if name not in CUSTOM_FUNCTION_PARAMS:
                raise ValueError(
                    f"generator_function parameter {name!r} is not one of "
                    f"{list(CUSTOM_FUNCTION_PARAMS)}"
                )
        for extra in self.side_effect_columns:
            if not re.fullmatch(_NAME_PATTERN, extra) or extra == self.name:
                raise ValueError(f"side effect column {extra!r} is not a valid other column name")
        if len(set(self.side_effect_columns)) != len(self.side_effect_columns):
            raise ValueError("side_effect_columns has duplicates")
        return self

    @property
    def is_async(self) -> bool:
        """True when `generator_function` is a coroutine function."""
        return inspect.iscoroutinefunction(inspect.unwrap(self.generator_function))

    @property
    def function(self) -> Callable[..., Any]:
        """`generator_function` (its former name)."""
        return self.generator_function


def function_parameters(fn: Callable[..., Any]) -> list[str]:
    """Names of a function's positional parameters."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ValueError(f"cannot read the signature of {fn!r}") from None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in signature.parameters.values() if p.kind in kinds]


class ValidationColumnConfig(ColumnConfigBase):
    """Checks `target_columns` with a validator, `batch_size` rows per validator call; the
    value is `{"is_valid": bool | None, ...messages}` (per target column for a code validator
    with several targets)."""

    column_type: Literal["validation"] = "validation"
    target_columns: list[str] = Field(min_length=1)
    validator_type: ValidatorType
    validator_params: ValidatorParams
    batch_size: int = Field(10, ge=1, description="rows per validator call (at most a row group)")

    @model_validator(mode="before")
    @classmethod
    def _params_type(cls, data: Any) -> Any:
        if isinstance(data, dict):
            params = data.get("validator_params")
            kind = data.get("validator_type")
            if isinstance(params, dict) and "validator_type" not in params and kind:
                data = {**data, "validator_params": {"validator_type": kind, **params}}
        return data

    @model_validator(mode="after")
    def _same_type(self) -> ValidationColumnConfig:
        if self.validator_params.validator_type != self.validator_type:
            raise ValueError(
                f"validator_params are for {self.validator_params.validator_type!r}, "
                f"not {self.validator_type!r}"
            )
        return self

    def output_shape(self) -> dict[str, Any] | None:
        params = self.validator_params
        if not isinstance(params, CodeValidatorParams):
            return {"type": "object", "properties": {"is_valid": {"type": ["boolean", "null"]}}}
        one = code_validation_shape(params.code_lang)
        if len(self.target_columns) == 1:
            return one
        return {
            "type": "object",
            "properties": dict.fromkeys(self.target_columns, one),
            "additionalProperties": False,
        }


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


BUILTIN_COLUMN_TYPES: dict[str, type[ColumnConfigBase]] = {
    "sampler": SamplerColumnConfig,
    "expression": ExpressionColumnConfig,
    "llm_text": LLMTextColumnConfig,
    "llm_code": LLMCodeColumnConfig,
    "llm_structured": LLMStructuredColumnConfig,
    "llm_judge": LLMJudgeColumnConfig,
    "embedding": EmbeddingColumnConfig,
    "image": ImageColumnConfig,
    "validation": ValidationColumnConfig,
    "custom": CustomColumnConfig,
    "seed_dataset": SeedDatasetColumnConfig,
}
MODEL_GENERATION_KIND: dict[type, str] = {
    EmbeddingColumnConfig: "embedding",
    ImageColumnConfig: "image",
}
"""The generation kind a column type's model must have (other model columns: chat)."""
ColumnConfig = Annotated[
    Annotated[SamplerColumnConfig, Tag("sampler")]
    | Annotated[ExpressionColumnConfig, Tag("expression")]
    | Annotated[LLMTextColumnConfig, Tag("llm_text")]
    | Annotated[LLMCodeColumnConfig, Tag("llm_code")]
    | Annotated[LLMStructuredColumnConfig, Tag("llm_structured")]
    | Annotated[LLMJudgeColumnConfig, Tag("llm_judge")]
    | Annotated[EmbeddingColumnConfig, Tag("embedding")]
    | Annotated[ImageColumnConfig, Tag("image")]
    | Annotated[ValidationColumnConfig, Tag("validation")]
    | Annotated[CustomColumnConfig, Tag("custom")]
    | Annotated[SeedDatasetColumnConfig, Tag("seed_dataset")]
    | Annotated[
        SerializeAsAny[ColumnConfigBase],
        BeforeValidator(plugin_config_parser("column_generator")),
        Tag(PLUGIN_TAG),
    ],
    Discriminator(union_tag("column_generator", BUILTIN_COLUMN_TYPES, ColumnConfigBase)),
]
"""Any column config: a built-in type by `column_type`, or one an installed plugin provides."""
