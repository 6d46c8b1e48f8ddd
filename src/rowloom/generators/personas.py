"""People drawn from a Nemotron-Personas dataset (`person` with `source: nemotron_personas`).

The locale's parquet file (`rowloom.config.personas`) is opened once per process and params:
the columns the filters read are loaded to find the matching rows (Data Designer's filters:
`sex`, `city`, every age of `age_range`, `select_field_values`), and each row of a run picks
one of them with a counter-based draw keyed by (run seed, column, global row), so a person
depends only on those (any buffer size, async or sequential). Only the parquet row groups
holding the picked rows are read, with only the columns a person keeps.

A person holds the dataset's demographic columns (null-typed ones left out, as Data Designer
drops all-null columns), `locale`, and the fields Data Designer derives: `birth_date` (the
age counted back from `reference_date`), `email_address` (adults), `phone_number` and
`national_id` (en_US adults; None elsewhere); en_US calls `region` `state`. With
`with_synthetic_personas` the persona columns follow.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rowloom.config.personas import (
    DEMOGRAPHIC_FIELDS,
    PERSONA_FIELDS,
    REQUIRED_FIELDS,
    missing_dataset_message,
    persona_dataset_path,
    state_named_region,
)
from rowloom.config.samplers import PersonParams
from rowloom.generators.person import (
    birth_dates,
    email_domains,
    fold_name,
    pick,
    us_phone_numbers,
    us_ssns,
)
from rowloom.generators.rng import row_bits

Objects = npt.NDArray[np.object_]
_CACHED_ROW_GROUPS = 4
"""Decoded parquet row groups kept per dataset (the next batch often needs the same ones)."""
_D_PICK, _D_BIRTH, _D_EMAIL, _D_PHONE, _D_ID = range(5)


class PersonaDatasetError(ValueError):
    """The locale's dataset is missing, unreadable, lacks a column, or no person matches."""


@dataclass
class PersonaSource:
    """One dataset file with one set of filters: the matching rows and how to read them."""

    path: Path
    locale: str
    columns: list[str]
    """Dataset columns a person keeps, in order."""
    schema: pa.Schema
    matches: npt.NDArray[np.int64]
    """Global row numbers of the people the filters accept."""
    starts: npt.NDArray[np.int64]
    """First global row of each parquet row group."""
    _groups: OrderedDict[int, pa.Table] = field(default_factory=OrderedDict, repr=False)

    def rows(self, picks: npt.NDArray[np.int64]) -> list[dict[str, Any]]:
        """The dataset rows `picks` (global row numbers), as dicts, in that order."""
        group_of = np.searchsorted(self.starts, picks, side="right") - 1
        parts: list[pa.Table] = []
        positions: list[npt.NDArray[np.int64]] = []
        for g in np.unique(group_of).tolist():
            where = np.flatnonzero(group_of == g)
            parts.append(self._group(g).take(pa.array(picks[where] - self.starts[g])))
            positions.append(where)
        if not parts:
            return []
        table = pa.concat_tables(parts)
        order = np.argsort(np.concatenate(positions), kind="stable")
        return list(table.take(pa.array(order)).to_pylist())

    def _group(self, g: int) -> pa.Table:
        table = self._groups.pop(g, None)
        if table is None:
            table = _json_friendly(
                pq.ParquetFile(self.path).read_row_group(g, columns=self.columns)
            )
        self._groups[g] = table
        while len(self._groups) > _CACHED_ROW_GROUPS:
            self._groups.popitem(last=False)
        return table

    def value_shape(self, with_personas: bool) -> dict[str, Any]:
        """The JSON shape of a person from this dataset (its Arrow type when stored)."""
        props: dict[str, Any] = {}
        for name in self.columns:
            if name in PERSONA_FIELDS:
                continue
            key = "state" if name == "region" and state_named_region(self.locale) else name
            props[key] = _nullable(_shape_of_type(self.schema.field(name).type))
        for name in ("locale", "birth_date", "phone_number", "email_address", "national_id"):
            props[name] = {"type": ["string", "null"]}
        if "state" in props:
            props["state"] = props.pop("state")
        if with_personas:
            for name in self.columns:
                if name in PERSONA_FIELDS:
                    props[name] = _nullable(_shape_of_type(self.schema.field(name).type))
        return {"type": "object", "properties": props, "additionalProperties": False}


def open_persona_source(params: PersonParams) -> PersonaSource:
    """The dataset of `params.locale` with `params`' filters; `PersonaDatasetError` when it
    is missing or unreadable, lacks a column a filter names, or no person matches."""
    path = persona_dataset_path(params.locale)
    try:
        stat = path.stat()
    except OSError:
        raise PersonaDatasetError(missing_dataset_message(params.locale)) from None
    filters = tuple(
        (column, tuple(values)) for column, values in sorted(params.dataset_filters().items())
    )
    return _open(
        str(path), stat.st_mtime_ns, stat.st_size, params.locale, filters,
        params.with_synthetic_personas,
    )  # fmt: skip


@lru_cache(maxsize=8)
def _open(
    path: str,
    _mtime_ns: int,
    _size: int,
    locale: str,
    filters: tuple[tuple[str, tuple[Any, ...]], ...],
    with_personas: bool,
) -> PersonaSource:
    try:
        file = pq.ParquetFile(path)
        schema = file.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise PersonaDatasetError(
            f"cannot read the Nemotron-Personas dataset {path}: {exc}"
        ) from None
    present = {f.name for f in schema if not pa.types.is_null(f.type)}
    missing = [c for c in REQUIRED_FIELDS if c not in present]
    missing += [c for c, _ in filters if c not in schema.names and c not in missing]
    if missing:
        raise PersonaDatasetError(
            f"the Nemotron-Personas dataset {path} has no column {', '.join(missing)} "
            f"(it has {sorted(present)})"
        )
    keep = [c for c in DEMOGRAPHIC_FIELDS if c in present]
    if with_personas:
        keep += [c for c in PERSONA_FIELDS if c in present]
    counts = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    matches = _matching_rows(file, filters)
    if matches.size == 0:
        wanted = ", ".join(f"{c} in {list(v)[:5]}{'...' if len(v) > 5 else ''}" for c, v in filters)
        raise PersonaDatasetError(
            f"no person in the Nemotron-Personas dataset {path} has {wanted}; loosen the "
            "filters (sex, city, age_range, select_field_values)"
        )
    return PersonaSource(Path(path), locale, keep, schema, matches, starts)


def _matching_rows(
    file: pq.ParquetFile, filters: tuple[tuple[str, tuple[Any, ...]], ...]
) -> npt.NDArray[np.int64]:
    table = file.read(columns=[c for c, _ in filters]) if filters else None
    if table is None:
        return np.arange(file.metadata.num_rows, dtype=np.int64)
    keep = pa.array(np.ones(table.num_rows, dtype=bool))
    for column, values in filters:
        data = table.column(column)
        keep = pc.and_(
            keep, pc.fill_null(pc.is_in(data, value_set=_as_type(values, data.type)), False)
        )
    out: npt.NDArray[np.int64] = np.flatnonzero(keep.to_numpy(zero_copy_only=False))
    return out.astype(np.int64)


def _as_type(values: tuple[Any, ...], kind: pa.DataType) -> pa.Array:
    """Filter values as the column's type (`"30"` matches an integer age of 30)."""
    try:
        return pa.array(list(values)).cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise PersonaDatasetError(
            f"filter values {list(values)[:5]} do not fit the dataset's {kind} column"
        ) from None


def draw_personas(params: PersonParams, key: int, rows: Any) -> Objects:
    """One person (a dict) per row, drawn from the locale's dataset."""
    source = open_persona_source(params)
    bits = row_bits(key, rows, 5)
    people = source.rows(source.matches[pick(bits[:, _D_PICK], source.matches.size)])
    ages = np.asarray([p["age"] for p in people], dtype=np.int64)
    adult = (ages >= 18).tolist()
    born = np.datetime_as_string(
        birth_dates(ages, bits[:, _D_BIRTH], params.reference_date), unit="D"
    ).tolist()
    emails = _emails(people, born, bits[:, _D_EMAIL])
    us = params.locale == "en_US"
    phones = us_phone_numbers(bits[:, _D_PHONE]) if us else [None] * len(people)
    ssns = us_ssns(bits[:, _D_ID]) if us else [None] * len(people)
    state = state_named_region(params.locale)
    out = np.empty(len(people), dtype=object)
    for i, raw in enumerate(people):
        person = {k: v for k, v in raw.items() if k not in PERSONA_FIELDS}
        region = person.pop("region", None) if state and "region" in person else None
        person["locale"] = params.locale
        person["birth_date"] = born[i]
        person["phone_number"] = phones[i] if adult[i] and person.get("postcode") else None
        person["email_address"] = emails[i] if adult[i] else None
        person["national_id"] = ssns[i] if region is not None else None
        if state and "region" in raw:
            person["state"] = region
        person.update((k, v) for k, v in raw.items() if k in PERSONA_FIELDS)
        out[i] = person
    return out


def _emails(
    people: list[dict[str, Any]], born: list[str], bits: npt.NDArray[np.uint64]
) -> list[str]:
    """`first.last`, `firstlast`, `flast` or `first_last`, sometimes with a birth year or a
    number, at a common free-mail domain."""
    domains = email_domains(bits).tolist()
    style = (bits & np.uint64(3)).tolist()
    tail = ((bits >> np.uint64(2)) % np.uint64(4)).tolist()
    number = ((bits >> np.uint64(4)) % np.uint64(99) + np.uint64(1)).tolist()
    out = []
    for p, year, s, t, n, domain in zip(people, born, style, tail, number, domains, strict=True):
        first = fold_name(str(p.get("first_name") or "")) or "user"
        last = fold_name(str(p.get("last_name") or "")) or "mail"
        handle = (f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", f"{first}_{last}")[s]
        suffix = ("", str(n), year[2:4], year[:4])[t]
        out.append(f"{handle}{suffix}@{domain}")
    return out


# --- Arrow types -------------------------------------------------------------------------------


def _json_friendly(table: pa.Table) -> pa.Table:
    """Columns whose values are not JSON (dates, times, decimals, binary) as text."""
    for i, f in enumerate(table.schema):
        if _shape_of_type(f.type).get("type") == "string" and not _is_text(f.type):
            table = table.set_column(i, f.name, pc.cast(table.column(i), pa.string()))
    return table


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _shape_of_type(kind: pa.DataType) -> dict[str, Any]:
    if pa.types.is_dictionary(kind):
        return _shape_of_type(kind.value_type)
    if pa.types.is_boolean(kind):
        return {"type": "boolean"}
    if pa.types.is_integer(kind):
        return {"type": "integer"}
    if pa.types.is_floating(kind):
        return {"type": "number"}
    if pa.types.is_struct(kind):
        props = {
            kind.field(i).name: _nullable(_shape_of_type(kind.field(i).type))
            for i in range(kind.num_fields)
        }
        return {"type": "object", "properties": props, "additionalProperties": False}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return {"type": "array", "items": _nullable(_shape_of_type(kind.value_type))}
    return {"type": "string"}


def _nullable(shape: dict[str, Any]) -> dict[str, Any]:
    kind = shape.get("type")
    return {**shape, "type": [kind, "null"]} if isinstance(kind, str) else shape
