"""Person samplers: every declared field, consistent derived fields, params, locales, and
values fixed by (seed, column, global row) alone."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

import jsonschema
import pytest

from rowloom.config import SamplerColumnConfig
from rowloom.config.samplers import PERSON_FIELD_NAMES, person_shape
from rowloom.generators import BatchInput
from rowloom.generators.samplers import SamplerGenerator


def people(kind: str, params: dict[str, Any], rows: range = range(400), seed: int = 5) -> list[Any]:
    gen = SamplerGenerator(SamplerColumnConfig(name="p", sampler_type=kind, params=params))  # type: ignore[arg-type]
    return gen.generate_batch(BatchInput(seed, 0, list(rows), {}))


@pytest.mark.parametrize("kind", ["person", "person_from_faker"])
def test_every_declared_field_with_its_type(kind: str) -> None:
    validator = jsonschema.Draft202012Validator(person_shape())
    for person in people(kind, {}):
        assert tuple(person) == PERSON_FIELD_NAMES
        validator.validate(person)


def test_us_people_are_consistent() -> None:
    ref = dt.date(2030, 6, 15)
    group = people("person", {"age_range": [16, 70], "reference_date": "2030-06-15"}, range(2000))
    for p in group:
        born = dt.date.fromisoformat(p["birth_date"])
        age = ref.year - born.year - ((ref.month, ref.day) < (born.month, born.day))
        assert age == p["age"] and 16 <= p["age"] <= 70
        assert re.fullmatch(r"[A-Z]{2}", p["state"]) and p["state"] == p["region"]
        assert re.fullmatch(r"\d{5}", p["zipcode"]) and p["zipcode"] == p["postcode"]
        assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", p["ssn"]) and p["ssn"] == p["national_id"]
        assert p["county"].endswith(" County") and p["country"] == "United States"
        assert p["middle_name"] and p["sex"] in ("Male", "Female")
        if p["age"] < 18:
            assert p["email_address"] is None and p["phone_number"] is None
        else:
            assert re.fullmatch(r"[a-z0-9._]+@[a-z]+\.(com|net)", p["email_address"])
            assert re.fullmatch(r"[2-9]\d\d-[2-9]\d\d-\d{4}", p["phone_number"])
        if p["education_level"] not in ("bachelors", "graduate", "doctorate"):
            assert p["bachelors_field"] == "no_degree"
    sexes = Counter(p["sex"] for p in group)
    assert abs(sexes["Female"] - 1000) < 120
    assert len({p["last_name"] for p in group}) > 200  # pools, not a handful of names
    assert len({p["uuid"] for p in group}) == 2000


def test_faker_flavour_matches_data_designer() -> None:
    for p in people("person_from_faker", {"locale": "en_US"}, range(50)):
        assert p["middle_name"] is None
        assert len(p["state"]) > 2  # full state names, as Faker writes them


def test_params_fix_or_bound_fields() -> None:
    group = people(
        "person",
        {
            "sex": "female",
            "city": ["Springfield", "Shelbyville"],
            "age_range": [30, 31],
            "select_field_values": {"state": ["NY", "CA"], "education_level": ["doctorate"]},
        },
    )
    assert {p["sex"] for p in group} == {"Female"}
    assert {p["city"] for p in group} == {"Springfield", "Shelbyville"}
    assert {p["age"] for p in group} == {30, 31}
    assert {p["state"] for p in group} == {"NY", "CA"} == {p["region"] for p in group}
    assert {p["education_level"] for p in group} == {"doctorate"}
    assert all(p["bachelors_field"] != "no_degree" for p in group)


@pytest.mark.parametrize(
    ("locale", "country"), [("ja_JP", "Japan"), ("de_DE", "Germany"), ("hi_Deva_IN", "India")]
)
def test_locales(locale: str, country: str) -> None:
    group = people("person", {"locale": locale}, range(50))
    assert {p["locale"] for p in group} == {locale}
    assert {p["country"] for p in group} == {country}
    assert all(p["first_name"] and p["last_name"] and p["city"] for p in group)
    assert all(p["email_address"] and "@" in p["email_address"] for p in group)


def test_people_depend_only_on_seed_column_and_row() -> None:
    whole = people("person", {}, range(100, 300))
    split = people("person", {}, range(100, 170)) + people("person", {}, range(170, 300))
    assert split == whole
    assert people("person", {}, range(100, 300), seed=6) != whole
