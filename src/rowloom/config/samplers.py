"""Sampler parameters: one model per `sampler_type`, with Data Designer's field names.

Each model validates its own fields (hostile values are refused with a message naming the
field) and declares the shape of the value it produces (`output_shape()`, a JSON-schema
subset), which template validation checks `{{ column.field }}` references against.
Cross-column checks (a subcategory's parent, a timedelta's reference, `convert_to`,
constraints) live in `rowloom.config.sampler_checks`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from typing import Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rowloom.config.personas import (
    PERSONA_LOCALES,
    SELECTABLE_DATASET_FIELDS,
    persona_shape,
    state_named_region,
)

SamplerType: TypeAlias = Literal[
    "bernoulli",
    "bernoulli_mixture",
    "binomial",
    "category",
    "datetime",
    "gaussian",
    "person",
    "person_from_faker",
    "poisson",
    "scipy",
    "subcategory",
    "timedelta",
    "uniform",
    "uuid",
]
Shape: TypeAlias = dict[str, Any]
Scalar: TypeAlias = str | int | float | bool

MIN_AGE, MAX_AGE = 0, 114
DEFAULT_AGE_RANGE = (18, 114)
DEFAULT_REFERENCE_DATE = dt.date(2026, 1, 1)
"""The date ages are counted from when a person sampler sets no `reference_date` (a fixed
date, so the same config and seed give the same birth dates on any day)."""


class SamplerParams(BaseModel):
    """Base of every sampler's parameters: strict (unknown fields are errors), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def output_shape(self) -> Shape | None:
        """The JSON-schema shape of one sampled value (None: not known)."""
        return None


def _scalar_type(values: list[Any]) -> str | None:
    kinds = {
        "boolean"
        if isinstance(v, bool)
        else "integer"
        if isinstance(v, int)
        else "number"
        if isinstance(v, float)
        else "string"
        for v in values
    }
    if kinds == {"integer", "number"}:
        return "number"
    return kinds.pop() if len(kinds) == 1 else None


def enum_shape(values: list[Any]) -> Shape:
    """The shape of a value drawn from `values`."""
    distinct = list(dict.fromkeys(values))
    kind = _scalar_type(distinct)
    return {"type": kind, "enum": distinct} if kind else {"enum": distinct}


class CategoryParams(SamplerParams):
    """One of `values`, uniformly or by `weights` (unnormalised, one per value)."""

    values: list[Scalar] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights(self) -> CategoryParams:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("weights must have one entry per value")
            if any(not math.isfinite(w) or w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be finite, non-negative, with a positive sum")
        return self

    def output_shape(self) -> Shape:
        return enum_shape(list(self.values))


class SubcategoryParams(SamplerParams):
    """One of `values[parent]`, where parent is this row's value of the `category` column."""

    category: str = Field(description="the category column this one refines")
    values: dict[str, list[Scalar]] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _non_empty(cls, v: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        empty = [k for k, opts in v.items() if not opts]
        if empty:
            raise ValueError(f"every category needs at least one subcategory; empty: {empty}")
        return v

    def output_shape(self) -> Shape:
        return enum_shape([x for opts in self.values.values() for x in opts])


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return value


class UniformParams(SamplerParams):
    """A uniform value in [low, high); `integer` draws whole numbers in [low, high]."""

    low: float
    high: float
    decimal_places: int | None = Field(None, ge=0, le=15)
    integer: bool = False

    @model_validator(mode="after")
    def _range(self) -> UniformParams:
        _finite(self.low, "low")
        _finite(self.high, "high")
        if self.high <= self.low:
            raise ValueError("high must be greater than low")
        if self.integer and math.floor(self.high) < math.ceil(self.low):
            raise ValueError("no whole number lies between low and high")
        return self

    def output_shape(self) -> Shape:
        return {"type": "integer" if self.integer else "number"}


class GaussianParams(SamplerParams):
    """A normal value with `mean` and standard deviation `stddev`."""

    mean: float = 0.0
    stddev: float = Field(1.0, gt=0)
    decimal_places: int | None = Field(None, ge=0, le=15)

    @model_validator(mode="after")
    def _finite_values(self) -> GaussianParams:
        _finite(self.mean, "mean")
        _finite(self.stddev, "stddev")
        return self

    def output_shape(self) -> Shape:
        return {"type": "number"}


class BernoulliParams(SamplerParams):
    """1 with probability `p`, else 0."""

    p: float = Field(ge=0, le=1)

    def output_shape(self) -> Shape:
        return {"type": "integer", "enum": [0, 1]}


class BinomialParams(SamplerParams):
    """Successes in `n` independent trials of probability `p`."""

    n: int = Field(ge=0, le=10**12)
    p: float = Field(ge=0, le=1)

    def output_shape(self) -> Shape:
        return {"type": "integer"}


class PoissonParams(SamplerParams):
    """Events in an interval with mean rate `mean`."""

    mean: float = Field(gt=0, le=1e12)

    def output_shape(self) -> Shape:
        return {"type": "integer"}


class ScipyParams(SamplerParams):
    """Any univariate `scipy.stats` distribution, by name, with its parameters (needs the
    `scipy` extra). Name and parameters are checked when the config is validated."""

    dist_name: str = Field(min_length=1)
    dist_params: dict[str, float] = Field(default_factory=dict)
    decimal_places: int | None = Field(None, ge=0, le=15)

    def output_shape(self) -> Shape:
        return {"type": "number"}


class BernoulliMixtureParams(SamplerParams):
    """0 with probability 1 - `p`, else a draw of the `scipy.stats` distribution `dist_name`
    (needs the `scipy` extra)."""

    p: float = Field(ge=0, le=1)
    dist_name: str = Field(min_length=1)
    dist_params: dict[str, float] = Field(default_factory=dict)

    def output_shape(self) -> Shape:
        return {"type": "number"}


class UUIDParams(SamplerParams):
    """A random UUID4 as 32 hex digits (8 with `short_form`), optionally uppercase and
    behind a `prefix`."""

    prefix: str | None = Field(None, max_length=256)
    short_form: bool = False
    uppercase: bool = False

    def output_shape(self) -> Shape:
        return {"type": "string"}


def parse_datetime(value: Any) -> Any:
    """Datetimes from any string pandas reads (`2024-01-01`, `Jan 5 2024 10:00`, ISO 8601);
    timezone-aware values are converted to naive UTC."""
    if isinstance(value, str):
        import pandas as pd

        try:
            stamp = pd.Timestamp(value)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"not a datetime: {value!r} ({exc})") from None
        if stamp is pd.NaT:
            raise ValueError(f"not a datetime: {value!r}")
        value = stamp.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


DatetimeUnit: TypeAlias = Literal["Y", "M", "D", "h", "m", "s"]
DeltaUnit: TypeAlias = Literal["D", "h", "m", "s"]


class DatetimeParams(SamplerParams):
    """A datetime drawn uniformly from [start, end), truncated to `unit` (years, months,
    days, hours, minutes, seconds). Written in ISO 8601 unless the column's `convert_to` (or
    `format`) gives a strftime format."""

    start: dt.datetime
    end: dt.datetime
    unit: DatetimeUnit = "D"
    format: str | None = Field(None, description="strftime format (the column's convert_to)")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return parse_datetime(value)

    @model_validator(mode="after")
    def _range(self) -> DatetimeParams:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.start.year < 1 or self.end.year > 9999:
            raise ValueError("start and end must lie in years 1-9999")
        return self

    def output_shape(self) -> Shape:
        return {"type": "string"}


class TimeDeltaParams(SamplerParams):
    """The `reference_column_name` column's datetime plus a delta drawn uniformly from
    [dt_min, dt_max) `unit`s; written like a datetime sampler."""

    dt_min: int = Field(ge=0)
    dt_max: int = Field(gt=0)
    reference_column_name: str = Field(min_length=1)
    unit: DeltaUnit = "D"

    @model_validator(mode="after")
    def _range(self) -> TimeDeltaParams:
        if self.dt_min >= self.dt_max:
            raise ValueError("dt_min must be less than dt_max")
        limit = {"D": 3_650_000, "h": 87_600_000, "m": 5_256_000_000, "s": 315_360_000_000}
        if self.dt_max > limit[self.unit]:
            raise ValueError(f"dt_max must be at most {limit[self.unit]} for unit {self.unit!r}")
        return self

    def output_shape(self) -> Shape:
        return {"type": "string"}


# --- person -----------------------------------------------------------------------------------

PERSON_FIELDS: tuple[tuple[str, str | tuple[str, str]], ...] = (
    ("uuid", "string"),
    ("locale", "string"),
    ("first_name", "string"),
    ("middle_name", ("string", "null")),
    ("last_name", "string"),
    ("sex", "string"),
    ("age", "integer"),
    ("birth_date", "string"),
    ("marital_status", "string"),
    ("education_level", "string"),
    ("bachelors_field", "string"),
    ("occupation", ("string", "null")),
    ("street_number", "string"),
    ("street_name", ("string", "null")),
    ("unit", "string"),
    ("city", ("string", "null")),
    ("county", ("string", "null")),
    ("district", ("string", "null")),
    ("state", ("string", "null")),
    ("region", ("string", "null")),
    ("postcode", ("string", "null")),
    ("zipcode", ("string", "null")),
    ("country", ("string", "null")),
    ("email_address", ("string", "null")),
    ("phone_number", ("string", "null")),
    ("national_id", ("string", "null")),
    ("ssn", ("string", "null")),
)
"""Every field of a sampled person, in order, with its JSON type. `district`/`county`,
`region`/`state`, `postcode`/`zipcode` and `national_id`/`ssn` are the same value under the
names Data Designer has used for it."""
PERSON_FIELD_NAMES = tuple(name for name, _ in PERSON_FIELDS)
PERSON_ALIASES = {
    "county": "district",
    "state": "region",
    "zipcode": "postcode",
    "ssn": "national_id",
}
"""Field -> the field it is another name of."""
SELECTABLE_PERSON_FIELDS = (
    "sex",
    "city",
    "district",
    "county",
    "region",
    "state",
    "postcode",
    "zipcode",
    "country",
    "marital_status",
    "education_level",
    "bachelors_field",
    "occupation",
    "street_name",
)
"""Fields `select_field_values` may fix (each row gets one of the listed values)."""
MARITAL_STATUSES = ("married_present", "divorced", "never_married", "separated", "widowed")
EDUCATION_LEVELS = (
    "secondary_education",
    "some_college",
    "bachelors",
    "associates",
    "graduate",
    "doctorate",
)
BACHELORS_FIELDS = ("stem", "business", "education", "arts_humanities", "stem_related")
COLLEGE_LEVELS = ("bachelors", "graduate", "doctorate")
LOCALE_FALLBACKS = {"hi_Deva_IN": "hi_IN", "hi_Latn_IN": "en_IN", "en_SG": "en_GB"}
"""Data Designer person locales that Faker lacks -> the Faker locale used for them."""


def person_shape() -> Shape:
    """The object shape of a sampled person."""
    props = {
        name: {"type": list(kind) if isinstance(kind, tuple) else kind}
        for name, kind in PERSON_FIELDS
    }
    props["sex"]["enum"] = ["Male", "Female"]
    return {
        "type": "object",
        "properties": props,
        "required": list(PERSON_FIELD_NAMES),
        "additionalProperties": False,
    }


def faker_locales() -> tuple[str, ...]:
    """Locales Faker supports (imports faker lazily)."""
    from faker.config import AVAILABLE_LOCALES

    return tuple(AVAILABLE_LOCALES)


def faker_locale_checked(value: str) -> str:
    """`value` when Faker (or a fallback) has that locale; else a ValueError."""
    known = faker_locales()
    if value not in known and value not in LOCALE_FALLBACKS:
        raise ValueError(f"unknown locale {value!r}{did_you_mean(value, known)}")
    return value


def did_you_mean(value: str, options: Any) -> str:
    """`"; did you mean 'x'?"` for the closest option, or an empty string."""
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class PersonFromFakerParams(SamplerParams):
    """A synthetic person (names, sex, age, birth date, address, email, phone, national id,
    occupation, education) from Faker in `locale`; `sex`, `city` and `age_range` fix or bound
    those fields. Ages are counted from `reference_date`."""

    locale: str = "en_US"
    sex: Literal["Male", "Female"] | None = None
    city: str | list[str] | None = None
    age_range: list[int] = Field(default_factory=lambda: list(DEFAULT_AGE_RANGE))
    reference_date: dt.date = DEFAULT_REFERENCE_DATE

    @field_validator("sex", mode="before")
    @classmethod
    def _sex(cls, value: Any) -> Any:
        return value.capitalize() if isinstance(value, str) else value

    @field_validator("city")
    @classmethod
    def _cities(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("city must name at least one city")
        return value

    @field_validator("age_range")
    @classmethod
    def _ages(cls, value: list[int]) -> list[int]:
        if len(value) != 2:
            raise ValueError("age_range must be [min_age, max_age]")
        low, high = value
        if low < MIN_AGE or high > MAX_AGE:
            raise ValueError(f"ages must lie in [{MIN_AGE}, {MAX_AGE}]; got {value}")
        if low > high:
            raise ValueError(f"min age {low} is above max age {high}")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return faker_locale_checked(value)

    @property
    def faker_locale(self) -> str:
        """The Faker locale that generates this person."""
        return LOCALE_FALLBACKS.get(self.locale, self.locale)

    @property
    def select_values(self) -> dict[str, list[str]]:
        """Fields fixed to a list of values (`sex` and `city` included)."""
        out: dict[str, list[str]] = {}
        if self.city is not None:
            out["city"] = [self.city] if isinstance(self.city, str) else list(self.city)
        return out

    def output_shape(self) -> Shape:
        return person_shape()


class PersonParams(PersonFromFakerParams):
    """Like `person_from_faker`, plus `select_field_values` (fix fields such as `state` or
    `education_level` to one of a list of values) and a `source`:

    - `faker` (rowloom's default): drawn from Faker's per-locale pools, census-style (state
      abbreviations, middle names, counties), any Faker locale, no download.
    - `nemotron_personas` (what Data Designer's `person` is): drawn from NVIDIA's
      Nemotron-Personas dataset of the locale, downloaded beforehand
      (`rowloom.config.personas`), with every field the dataset has;
      `with_synthetic_personas` adds the persona texts and Big Five traits, and
      `select_field_values` may filter on any dataset field.

    `min_age`/`max_age` are the older spelling of `age_range`."""

    source: Literal["faker", "nemotron_personas"] = "faker"
    select_field_values: dict[str, list[str]] | None = None
    with_synthetic_personas: bool = False

    @model_validator(mode="before")
    @classmethod
    def _legacy_ages(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("min_age" in data or "max_age" in data):
            if "age_range" in data:
                raise ValueError("give age_range or min_age/max_age, not both")
            data = dict(data)
            low, high = data.pop("min_age", 18), data.pop("max_age", MAX_AGE)
            data["age_range"] = [low, high]
        return data

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return value  # checked with the source (`_source_fits`)

    @model_validator(mode="after")
    def _locale_of_source(self) -> PersonParams:
        if self.source == "faker":
            faker_locale_checked(self.locale)
        elif self.locale not in PERSONA_LOCALES:
            raise ValueError(
                f"no Nemotron-Personas dataset for locale {self.locale!r}"
                f"{did_you_mean(self.locale, PERSONA_LOCALES)}; datasets exist for "
                f"{list(PERSONA_LOCALES)} (`sampler_type: person_from_faker` takes any "
                "Faker locale)"
            )
        return self

    @field_validator("with_synthetic_personas")
    @classmethod
    def _personas_need_dataset(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("source") != "nemotron_personas":
            raise ValueError(
                "with_synthetic_personas needs `source: nemotron_personas` (persona texts "
                "come from NVIDIA's Nemotron-Personas datasets)"
            )
        return value

    @field_validator("select_field_values")
    @classmethod
    def _selectable(
        cls, value: dict[str, list[str]] | None, info: ValidationInfo
    ) -> dict[str, list[str]] | None:
        dataset = info.data.get("source") == "nemotron_personas"
        allowed = SELECTABLE_DATASET_FIELDS if dataset else SELECTABLE_PERSON_FIELDS
        for key, options in (value or {}).items():
            if key not in allowed:
                listed = "any field of the dataset" if dataset else list(allowed)
                raise ValueError(
                    f"cannot select on {key!r}{did_you_mean(key, sorted(allowed))}; "
                    f"selectable fields: {listed}"
                )
            if not options:
                raise ValueError(f"select_field_values.{key} lists no values")
        return value

    @property
    def faker_locale(self) -> str:
        """The Faker locale that generates this person (`faker` source)."""
        return LOCALE_FALLBACKS.get(self.locale, self.locale)

    @property
    def select_values(self) -> dict[str, list[str]]:
        out = super().select_values
        for key, options in (self.select_field_values or {}).items():
            out[PERSON_ALIASES.get(key, key)] = [str(v) for v in options]
        if "sex" in out:
            out["sex"] = [v.capitalize() for v in out["sex"]]
        return out

    def dataset_filters(self) -> dict[str, list[Any]]:
        """`nemotron_personas` source: dataset column -> accepted values, as Data Designer
        filters (`sex`, `city`, every age in `age_range`, `select_field_values`; `state` is
        the en_US dataset's `region`)."""
        out: dict[str, list[Any]] = {}
        if self.sex is not None:
            out["sex"] = [self.sex]
        if self.city is not None:
            out["city"] = [self.city] if isinstance(self.city, str) else list(self.city)
        low, high = self.age_range
        out["age"] = list(range(low, high + 1))
        for key, options in (self.select_field_values or {}).items():
            column = "region" if key == "state" and state_named_region(self.locale) else key
            out[column] = list(options)
        return out

    def output_shape(self) -> Shape:
        if self.source == "nemotron_personas":
            return persona_shape(self.locale, self.with_synthetic_personas)
        return person_shape()


SAMPLER_PARAMS: dict[str, type[SamplerParams]] = {
    "bernoulli": BernoulliParams,
    "bernoulli_mixture": BernoulliMixtureParams,
    "binomial": BinomialParams,
    "category": CategoryParams,
    "datetime": DatetimeParams,
    "gaussian": GaussianParams,
    "person": PersonParams,
    "person_from_faker": PersonFromFakerParams,
    "poisson": PoissonParams,
    "scipy": ScipyParams,
    "subcategory": SubcategoryParams,
    "timedelta": TimeDeltaParams,
    "uniform": UniformParams,
    "uuid": UUIDParams,
}
"""Each sampler type's parameter model."""
NUMERIC_SAMPLERS = frozenset(
    {"bernoulli", "bernoulli_mixture", "binomial", "gaussian", "poisson", "scipy", "uniform"}
)
"""Samplers whose values are numbers (`convert_to` int/float/str; inequality constraints)."""
DATETIME_SAMPLERS = frozenset({"datetime", "timedelta"})
"""Samplers whose values are datetimes (`convert_to` is a strftime format)."""
ConvertTo: TypeAlias = Literal["int", "float", "str"]


def plain_params(sampler_type: str, value: Any) -> dict[str, Any]:
    """A params value (a dict, possibly with Data Designer's inner `sampler_type`, or a
    params model) as the plain dict a sampler column stores."""
    if isinstance(value, SamplerParams):
        value = value.model_dump(mode="json", exclude_unset=True)
    if not isinstance(value, dict):
        raise ValueError("params must be a mapping")
    inner = value.get("sampler_type")
    if inner is None:
        return value
    if inner != sampler_type:
        raise ValueError(f"params.sampler_type {inner!r} does not match {sampler_type!r}")
    return {k: v for k, v in value.items() if k != "sampler_type"}


def shape_after_convert(
    shape: Shape | None, convert_to: str | None, sampler_type: str
) -> Shape | None:
    """A sampler's value shape once `convert_to` has applied."""
    if convert_to is None:
        return shape
    if sampler_type in DATETIME_SAMPLERS or convert_to == "str":
        return {"type": "string"}
    return {"type": "integer" if convert_to == "int" else "number"}
