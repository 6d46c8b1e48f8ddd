"""Data Designer sampler params -> rowloom sampler params.

rowloom's sampler params use Data Designer's field names, so a field rowloom has is copied as
is. A field rowloom lacks is accepted only at its Data Designer default, and only where that
default means "no effect"; any other value is a typed "not supported yet" issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rowloom.compat._fields import Fields
from rowloom.config import samplers as native_samplers

_AGE_RANGE = [18, 114]

# Per DD sampler type: every param DD defines, with its default (None = required or unset).
_DD_PARAMS: dict[str, dict[str, Any]] = {
    "category": {"values": None, "weights": None},
    "subcategory": {"category": None, "values": None},
    "datetime": {"start": None, "end": None, "unit": "D"},
    "timedelta": {"dt_min": None, "dt_max": None, "reference_column_name": None, "unit": "D"},
    "uuid": {"prefix": None, "short_form": False, "uppercase": False},
    "scipy": {"dist_name": None, "dist_params": None, "decimal_places": None},
    "binomial": {"n": None, "p": None},
    "bernoulli": {"p": None},
    "bernoulli_mixture": {"p": None, "dist_name": None, "dist_params": None},
    "gaussian": {"mean": None, "stddev": None, "decimal_places": None},
    "poisson": {"mean": None},
    "uniform": {"low": None, "high": None, "decimal_places": None},
    "person": {
        "locale": "en_US",
        "sex": None,
        "city": None,
        "age_range": _AGE_RANGE,
        "select_field_values": None,
        "with_synthetic_personas": False,
    },
    "person_from_faker": {"locale": "en_US", "sex": None, "city": None, "age_range": _AGE_RANGE},
}
# Fields that have no effect at their DD default (so rowloom lacking them changes nothing).
_INERT_AT_DEFAULT = {
    ("uuid", "prefix"),
    ("uuid", "uppercase"),
    ("person", "sex"),
    ("person", "city"),
    ("person", "select_field_values"),
    ("person", "with_synthetic_personas"),
    ("person_from_faker", "sex"),
    ("person_from_faker", "city"),
    ("gaussian", "decimal_places"),
    ("uniform", "decimal_places"),
    ("scipy", "decimal_places"),
    ("category", "weights"),
}


def dd_sampler_types() -> list[str]:
    """Every sampler type Data Designer defines."""
    return list(_DD_PARAMS)


def native_sampler_params() -> Mapping[str, type[Any]]:
    """rowloom's sampler params models by sampler type."""
    params: Mapping[str, type[Any]] = native_samplers.SAMPLER_PARAMS
    return params


def native_sampler_type(dd_type: str) -> str | None:
    """The rowloom sampler type running a DD sampler type, or None when there is none yet."""
    native = native_sampler_params()
    if dd_type in native:
        return dd_type
    if dd_type == "person_from_faker" and "person" in native and not _has_dd_person(native):
        return "person"  # rowloom's Faker-based person is DD's person_from_faker
    return None


def _has_dd_person(native: Mapping[str, type[Any]]) -> bool:
    return "with_synthetic_personas" in native["person"].model_fields


def map_params(f: Fields, dd_type: str, native_type: str) -> dict[str, Any]:
    """Map the DD params object `f` (of `dd_type`) onto `native_type`'s params."""
    fields = native_sampler_params()[native_type].model_fields
    known = _DD_PARAMS[dd_type]
    out: dict[str, Any] = {}
    declared = f.get("sampler_type", dd_type)
    if declared != dd_type:
        f.invalid("sampler_type", f"params are for {declared!r} but the column is {dd_type!r}")
    for key, default in known.items():
        if not f.has(key):
            continue
        value = f.get(key)
        if key in fields:
            if value is not None:  # None is DD's "unset"; rowloom's default then applies
                out[key] = value
        elif key == "age_range" and {"min_age", "max_age"} <= set(fields):
            _age_range(f, value, out)
        elif (dd_type, key) in _INERT_AT_DEFAULT and value == default:
            continue
        else:
            f.not_supported(key, f"{dd_type} sampler param {key!r} = {value!r}")
    f.done()
    if dd_type == "person" and "source" in fields:
        out["source"] = "nemotron_personas"  # DD's `person` reads NVIDIA's datasets
    return out


def _age_range(f: Fields, value: Any, out: dict[str, Any]) -> None:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        out["min_age"], out["max_age"] = value
    else:
        f.invalid("age_range", "must be a list of two integers [min_age, max_age]")
