"""Synthetic people, vectorised: Faker fills per-locale pools once; rows pick from them.

Calling Faker per row costs ~0.5 ms per person and, seeded per row group, would tie values to
`buffer_size`. Instead each locale gets fixed pools of Faker draws (names by sex, streets,
cities with their region and postcode, occupations, phone numbers, national ids), built once
per process from a seed derived from the locale alone. Every row then picks from the pools
with counter-based draws keyed by (run seed, column, global row), so a person depends only on
those, and a row group of people costs a few microseconds per row. Derived fields (age, birth
date, email, US phone numbers and SSNs, UUID) are computed from the same draws.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from rowloom.config.samplers import (
    BACHELORS_FIELDS,
    COLLEGE_LEVELS,
    EDUCATION_LEVELS,
    MARITAL_STATUSES,
    PERSON_ALIASES,
    PERSON_FIELD_NAMES,
    PersonFromFakerParams,
    PersonParams,
)
from rowloom.generators.rng import row_bits, stream_key

POOL_SIZE = 1024
"""Faker draws per pool (names of each sex, streets, locations, ...)."""
_DOMAINS = (
    ("gmail.com", 45.0),
    ("yahoo.com", 12.0),
    ("icloud.com", 12.0),
    ("outlook.com", 10.0),
    ("hotmail.com", 9.0),
    ("aol.com", 4.0),
    ("protonmail.com", 3.0),
    ("comcast.net", 3.0),
    ("gmx.com", 2.0),
)
_PATTERNS = (
    0.3,
    0.2,
    0.15,
    0.1,
    0.15,
    0.1,
)  # first.last, firstlast, flast, first_last, lastf, firstl
_SUFFIXES = (0.4, 0.3, 0.15, 0.15)  # none, 1-99, yy, yyyy
_NON_ALNUM = re.compile(r"[^a-z0-9]")
Objects = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class PersonPools:
    """Per-locale pools of Faker draws (each an object array of POOL_SIZE entries)."""

    first: dict[str, Objects]
    middle: dict[str, Objects] | None
    last: dict[str, Objects]
    folded_first: dict[str, Objects]
    folded_last: dict[str, Objects]
    first_initials: dict[str, Objects]
    last_initials: dict[str, Objects]
    streets: Objects
    buildings: Objects
    cities: Objects
    regions: Objects
    postcodes: Objects
    counties: Objects | None
    occupations: Objects
    phones: Objects | None
    national_ids: Objects | None
    country: str | None


def _objects(values: list[Any]) -> Objects:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def fold_name(name: str) -> str:
    """A name as lowercase ASCII letters and digits (for e-mail handles)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub("", ascii_name.lower())


def _folded(names: Objects, handles: Objects) -> Objects:
    """Names as ASCII e-mail handles; a name with no Latin letters (e.g. 山田) takes the
    Faker user name at the same pool position."""
    return _objects(
        [
            fold_name(n) or fold_name(h).strip("0123456789") or "user"
            for n, h in zip(names, handles, strict=True)
        ]
    )


def _initials(names: Objects) -> Objects:
    return _objects([n[0] for n in names])


def _draws(fn: Callable[[], Any] | None) -> Objects | None:
    if fn is None:
        return None
    try:
        return _objects([None if v is None else str(v) for v in (fn() for _ in range(POOL_SIZE))])
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return None


_NAME_LISTS = {
    "first_name_female": ("first_names_female", "first_name", "first_names"),
    "first_name_male": ("first_names_male", "first_name", "first_names"),
    "last_name_female": ("last_names_female", "last_name", "last_names"),
    "last_name_male": ("last_names_male", "last_name", "last_names"),
}


def _names(fake: Any, method: str) -> Objects | None:
    """A pool of `fake.<method>()` draws. Where the locale uses Faker's generic name methods
    (a weighted pick from a list), one weighted `random_elements` call draws the whole pool;
    otherwise (formats, locale-specific rules) the method is called per entry."""
    from faker.providers.person import Provider as Base

    own, fallback, fallback_list = _NAME_LISTS[method]
    try:
        provider = fake.provider("faker.providers.person")
    except AttributeError:  # pragma: no cover - a Faker without that lookup
        provider = None
    generic = provider is not None and all(
        getattr(type(provider), m, None) is getattr(Base, m) for m in (method, fallback)
    )
    if generic:
        elements = getattr(provider, own, None) or getattr(provider, fallback_list, None)
        if elements:
            return _objects(list(provider.random_elements(elements, POOL_SIZE, use_weighting=True)))
    return _draws(_method(fake, method) or _method(fake, fallback))


def _either(pool: Objects | None, fallback: Any) -> Objects:
    """`pool`, or `fallback` (a pool, or one value repeated) when Faker had none."""
    if pool is not None:
        return pool
    if isinstance(fallback, np.ndarray):
        return fallback
    return _objects([fallback] * POOL_SIZE)


def _method(fake: Any, name: str) -> Callable[[], Any] | None:
    fn = getattr(fake, name, None)
    return fn if callable(fn) else None


def _locale_specific(fake: Any, method: str, locale: str) -> bool:
    """True when `method` comes from a provider written for this locale (not a fallback)."""
    for provider in fake.get_providers():
        if hasattr(provider, method):
            return bool(type(provider).__module__.endswith(locale))
    return False


@lru_cache(maxsize=16)
def person_pools(locale: str, census_style: bool) -> PersonPools:
    """The pools for a Faker locale (`census_style`: state abbreviations with matching US
    zipcodes, middle names and counties, as Data Designer's `person` writes them)."""
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(stream_key(0, "person-pools", locale) & 0x7FFFFFFF)
    first = {s: _names(fake, f"first_name_{s.lower()}") for s in ("Female", "Male")}
    last = {s: _names(fake, f"last_name_{s.lower()}") for s in ("Female", "Male")}
    middle: dict[str, Objects] | None = None
    if census_style:
        middle = {
            s: _either(_draws(_method(fake, f"middle_name_{s.lower()}")), first[s])
            for s in ("Female", "Male")
        }
    cities, regions, postcodes = _locations(fake, locale, census_style)
    handles = _either(_draws(_method(fake, "user_name")), "user")
    folded_first = {s: _folded(v, handles) for s, v in first.items()}  # type: ignore[arg-type]
    folded_last = {s: _folded(v, handles) for s, v in last.items()}  # type: ignore[arg-type]
    us = locale == "en_US"
    return PersonPools(
        first=first,  # type: ignore[arg-type]
        middle=middle,
        last=last,  # type: ignore[arg-type]
        folded_first=folded_first,
        folded_last=folded_last,
        first_initials={s: _initials(v) for s, v in folded_first.items()},
        last_initials={s: _initials(v) for s, v in folded_last.items()},
        streets=_either(_draws(_method(fake, "street_name")), None),
        buildings=_either(_draws(_method(fake, "building_number")), "1"),
        cities=cities,
        regions=regions,
        postcodes=postcodes,
        counties=_objects([f"{n} County" for n in last["Male"]]) if us else None,  # type: ignore[union-attr]
        occupations=_either(_draws(_method(fake, "job")), None),
        phones=None if us else _draws(_method(fake, "phone_number")),
        national_ids=(
            _draws(_method(fake, "ssn"))
            if not us and _locale_specific(fake, "ssn", locale)
            else None
        ),
        country=_country(fake),
    )


def _locations(fake: Any, locale: str, census_style: bool) -> tuple[Objects, Objects, Objects]:
    """(cities, regions, postcodes) drawn together, so a US zipcode lies in its state."""
    city, region = _method(fake, "city"), _method(fake, "administrative_unit")
    in_state = census_style and locale == "en_US"
    if census_style and _method(fake, "state_abbr") is not None:
        region = _method(fake, "state_abbr")
    postcode = _method(fake, "postcode")
    rows = []
    for _ in range(POOL_SIZE):
        r = region() if region else None
        code = fake.zipcode_in_state(r) if in_state else (postcode() if postcode else None)
        rows.append((city() if city else None, r, None if code is None else str(code)))
    cities, regions, codes = zip(*rows, strict=True)
    return _objects(list(cities)), _objects(list(regions)), _objects(list(codes))


def _country(fake: Any) -> str | None:
    try:
        return str(fake.current_country())
    except (AttributeError, KeyError, ValueError):
        return None


# --- drawing ----------------------------------------------------------------------------------

_D_SEX, _D_FIRST, _D_MIDDLE, _D_LAST, _D_AGE, _D_BIRTH, _D_MARITAL, _D_EDU = range(8)
_D_BACHELORS, _D_JOB, _D_STREET, _D_BUILDING, _D_PLACE, _D_COUNTY = range(8, 14)
_D_PATTERN, _D_SUFFIX, _D_NUMBER, _D_DOMAIN, _D_PHONE, _D_ID, _D_UUID_HI, _D_UUID_LO = range(14, 22)
_DRAWS = 22


def pick(bits: npt.NDArray[np.uint64], n: int) -> npt.NDArray[np.int64]:
    """An index in [0, n) per draw."""
    return (((bits >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)).astype(np.int64)


def weighted(bits: npt.NDArray[np.uint64], weights: tuple[float, ...]) -> npt.NDArray[np.int64]:
    """An index of `weights` per draw, drawn with those relative weights."""
    cdf = np.cumsum(weights) / sum(weights)
    u = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(weights) - 1).astype(np.int64)


def draw_people(params: PersonFromFakerParams, key: int, rows: Any) -> Objects:
    """One person (a dict with every field of `PERSON_FIELDS`) per row."""
    pools = person_pools(params.faker_locale, isinstance(params, PersonParams))
    bits = row_bits(key, rows, _DRAWS)
    fixed = params.select_values
    sex = _sexes(params, bits[:, _D_SEX], fixed)
    female = sex == "Female"
    first_idx = pick(bits[:, _D_FIRST], POOL_SIZE)
    last_idx = pick(bits[:, _D_LAST], POOL_SIZE)
    low, high = params.age_range
    age = low + pick(bits[:, _D_AGE], high - low + 1)
    birth = birth_dates(age, bits[:, _D_BIRTH], params.reference_date)
    cols: dict[str, Any] = {
        "uuid": _uuids(bits[:, _D_UUID_HI], bits[:, _D_UUID_LO]),
        "locale": [params.locale] * len(rows),
        "first_name": _by_sex(pools.first, female, first_idx),
        "middle_name": _maybe(pools.middle, female, bits[:, _D_MIDDLE]),
        "last_name": _by_sex(pools.last, female, last_idx),
        "sex": sex,
        "age": age,
        "birth_date": np.datetime_as_string(birth, unit="D"),
        **_background(bits, age >= 18),
        **_address(pools, bits),
    }
    _apply_selections(cols, fixed, key, rows)
    if "bachelors_field" not in fixed:
        college = np.isin(cols["education_level"], COLLEGE_LEVELS)
        cols["bachelors_field"] = np.where(college, cols["bachelors_field"], "no_degree")
    cols["email_address"] = _emails(pools, female, first_idx, last_idx, birth, age, bits)
    cols["phone_number"] = _phones(pools, bits[:, _D_PHONE], age >= 18)
    cols["national_id"] = _national_ids(pools, params, bits[:, _D_ID])
    for alias, canonical in PERSON_ALIASES.items():
        cols[alias] = cols[canonical]
    ordered = [_plain(cols[name]) for name in PERSON_FIELD_NAMES]
    return _objects(
        [dict(zip(PERSON_FIELD_NAMES, v, strict=True)) for v in zip(*ordered, strict=True)]
    )


def _maybe(
    pool: dict[str, Objects] | None, female: npt.NDArray[np.bool_], bits: npt.NDArray[np.uint64]
) -> Objects:
    if pool is None:
        return np.full(len(female), None, dtype=object)
    return _by_sex(pool, female, pick(bits, POOL_SIZE))


def _background(bits: npt.NDArray[np.uint64], adult: npt.NDArray[np.bool_]) -> dict[str, Any]:
    """Marital status, education, degree field (minors: never married, secondary
    education) and occupation."""
    marital = np.asarray(MARITAL_STATUSES, dtype=object)[pick(bits[:, _D_MARITAL], 5)]
    edu = np.asarray(EDUCATION_LEVELS, dtype=object)[pick(bits[:, _D_EDU], len(EDUCATION_LEVELS))]
    return {
        "marital_status": np.where(adult, marital, "never_married"),
        "education_level": np.where(adult, edu, "secondary_education"),
        "bachelors_field": np.asarray(BACHELORS_FIELDS, dtype=object)[
            pick(bits[:, _D_BACHELORS], len(BACHELORS_FIELDS))
        ],
    }


def _address(pools: PersonPools, bits: npt.NDArray[np.uint64]) -> dict[str, Any]:
    n = len(bits)
    place = pick(bits[:, _D_PLACE], POOL_SIZE)
    counties = pools.counties
    return {
        "occupation": pools.occupations[pick(bits[:, _D_JOB], POOL_SIZE)],
        "street_number": pools.buildings[pick(bits[:, _D_BUILDING], POOL_SIZE)],
        "street_name": pools.streets[pick(bits[:, _D_STREET], POOL_SIZE)],
        "unit": [""] * n,
        "city": pools.cities[place],
        "district": (
            counties[pick(bits[:, _D_COUNTY], POOL_SIZE)]
            if counties is not None
            else np.full(n, None, dtype=object)
        ),
        "region": pools.regions[place],
        "postcode": pools.postcodes[place],
        "country": [pools.country] * n,
    }


def _plain(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _sexes(
    params: PersonFromFakerParams,
    bits: npt.NDArray[np.uint64],
    fixed: dict[str, list[str]],
) -> Objects:
    options = fixed.get("sex") or ([params.sex] if params.sex else ["Female", "Male"])
    chosen: Objects = np.asarray(options, dtype=object)[pick(bits, len(options))]
    return chosen


def _by_sex(pool: dict[str, Objects], female: npt.NDArray[np.bool_], idx: Any) -> Objects:
    out: Objects = np.where(female, pool["Female"][idx], pool["Male"][idx])
    return out


def _apply_selections(
    cols: dict[str, Any], fixed: dict[str, list[str]], key: int, rows: Any
) -> None:
    """Fields fixed by `city` / `select_field_values`: each row gets one listed value."""
    for field, options in fixed.items():
        if field == "sex":
            continue
        picks = row_bits(stream_key(key, "select", field), rows, 1)[:, 0]
        cols[field] = np.asarray(options, dtype=object)[pick(picks, len(options))]


def birth_dates(age: Any, bits: npt.NDArray[np.uint64], ref: dt.date) -> npt.NDArray[Any]:
    """A birth date per row such that the person is `age` on `ref`."""
    ages = np.unique(age)
    starts = np.empty(len(ages), dtype="datetime64[D]")
    spans = np.empty(len(ages), dtype=np.int64)
    for i, a in enumerate(ages.tolist()):
        end = _years_before(ref, a)
        start = _years_before(ref, a + 1) + dt.timedelta(days=1)
        starts[i] = np.datetime64(start, "D")
        spans[i] = (end - start).days + 1
    where = np.searchsorted(ages, age)
    offset = pick(bits, 1 << 20) * spans[where] >> 20
    out: npt.NDArray[Any] = starts[where] + offset.astype("timedelta64[D]")
    return out


def _years_before(ref: dt.date, years: int) -> dt.date:
    year = max(ref.year - years, 1)
    try:
        return ref.replace(year=year)
    except ValueError:  # 29 February in a common year
        return ref.replace(year=year, day=28)


def _emails(
    pools: PersonPools,
    female: npt.NDArray[np.bool_],
    first_idx: Any,
    last_idx: Any,
    birth: npt.NDArray[Any],
    age: Any,
    bits: npt.NDArray[np.uint64],
) -> Objects:
    """`handle[suffix]@domain` from the folded names (vectorised over object arrays)."""
    first = _by_sex(pools.folded_first, female, first_idx)
    last = _by_sex(pools.folded_last, female, last_idx)
    first_i = _by_sex(pools.first_initials, female, first_idx)
    last_i = _by_sex(pools.last_initials, female, last_idx)
    pattern = weighted(bits[:, _D_PATTERN], _PATTERNS)
    # first.last, firstlast, flast, first_last, lastf, firstl
    left = np.where(pattern == 4, last, np.where(pattern == 2, first_i, first))
    middle = np.select([pattern == 0, pattern == 3], [_DOT, _UNDERSCORE], _EMPTY)
    right = np.select([pattern == 4, pattern == 5], [first_i, last_i], last)
    suffix = weighted(bits[:, _D_SUFFIX], _SUFFIXES)
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    tail = np.select(
        [suffix == 1, suffix == 2, suffix == 3],
        [_NUMBERS[1 + pick(bits[:, _D_NUMBER], 99)], _YY[year % 100], year.astype(str)],
        _EMPTY,
    ).astype(object)
    domain = email_domains(bits[:, _D_DOMAIN])
    emails: Objects = left + middle + right + tail + _AT + domain
    emails[np.asarray(age) < 18] = None
    return emails


_NUMBERS = np.array([str(i) for i in range(100)], dtype=object)
_YY = np.array([f"{i:02d}" for i in range(100)], dtype=object)
_DOMAIN_NAMES = np.array([d for d, _ in _DOMAINS], dtype=object)
_DOMAIN_WEIGHTS = tuple(w for _, w in _DOMAINS)


def email_domains(bits: npt.NDArray[np.uint64]) -> Objects:
    """A free-mail domain per draw, weighted like the common providers."""
    out: Objects = _DOMAIN_NAMES[weighted(bits, _DOMAIN_WEIGHTS)]
    return out


_DOT, _UNDERSCORE, _EMPTY, _AT = (np.array(x, dtype=object) for x in (".", "_", "", "@"))


def _digits(bits: npt.NDArray[np.uint64], *sizes: int) -> list[npt.NDArray[np.int64]]:
    out = []
    rest = bits >> np.uint64(4)
    for size in sizes:
        out.append((rest % np.uint64(size)).astype(np.int64))
        rest = rest // np.uint64(size)
    return out


def _phones(pools: PersonPools, bits: npt.NDArray[np.uint64], adult: Any) -> list[str | None]:
    if pools.phones is not None:
        values = pools.phones[pick(bits, POOL_SIZE)].tolist()
    else:
        values = us_phone_numbers(bits)
    return [v if ok else None for v, ok in zip(values, adult.tolist(), strict=True)]


def _national_ids(
    pools: PersonPools, params: PersonFromFakerParams, bits: npt.NDArray[np.uint64]
) -> list[str | None]:
    if pools.national_ids is not None:
        return list(pools.national_ids[pick(bits, POOL_SIZE)].tolist())
    if params.faker_locale != "en_US":
        return [None] * len(bits)
    return list[str | None](us_ssns(bits))


def us_phone_numbers(bits: npt.NDArray[np.uint64]) -> list[str]:
    """A US phone number (NXX-NXX-XXXX) per draw."""
    area, area2, exch, exch2, line = _digits(bits, 8, 100, 8, 100, 10000)
    return [
        f"{a + 2}{b:02d}-{c + 2}{d:02d}-{e:04d}"
        for a, b, c, d, e in zip(
            area.tolist(), area2.tolist(), exch.tolist(), exch2.tolist(), line.tolist(), strict=True
        )
    ]


def us_ssns(bits: npt.NDArray[np.uint64]) -> list[str]:
    """A US social security number (AAA-GG-SSSS, never area 000, 666 or 9xx) per draw."""
    area, group, serial = _digits(bits, 898, 99, 9999)
    area = area + 1
    area = area + (area >= 666)  # 666 is never issued
    return [
        f"{a:03d}-{g + 1:02d}-{s + 1:04d}"
        for a, g, s in zip(area.tolist(), group.tolist(), serial.tolist(), strict=True)
    ]


def _uuids(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> list[str]:
    hi = (hi & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)
    lo = (lo & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)
    text = np.stack([hi, lo], axis=1).astype(">u8").tobytes().hex()
    return [
        f"{t[:8]}-{t[8:12]}-{t[12:16]}-{t[16:20]}-{t[20:]}"
        for t in (text[i : i + 32] for i in range(0, len(text), 32))
    ]
