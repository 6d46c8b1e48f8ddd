"""`person` with `source: nemotron_personas`: people drawn from the locale's Nemotron-Personas
dataset (a small stand-in in Data Designer's schema, written by the test)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.support.personas import person_row, write_persona_dataset

from rowloom.builder.arrow_values import arrow_type_for_shape, encode_column
from rowloom.config.columns import SamplerColumnConfig
from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigValidationError
from rowloom.config.personas import DEMOGRAPHIC_FIELDS, PERSONA_FIELDS
from rowloom.generators.base import BatchInput
from rowloom.generators.samplers import SamplerGenerator

ROWS = 200


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "managed-assets"
    write_persona_dataset(folder, rows=ROWS)
    monkeypatch.setenv("DATA_DESIGNER_MANAGED_ASSETS_PATH", str(folder))
    return folder


def column(**params: Any) -> SamplerColumnConfig:
    return SamplerColumnConfig(
        name="person",
        sampler_type="person",
        params={"source": "nemotron_personas", "locale": "en_US", **params},
    )


def people(rows: Any, seed: int = 3, **params: Any) -> list[dict[str, Any]]:
    gen = SamplerGenerator(column(**params))
    return gen.generate_batch(BatchInput(seed, 0, list(rows), {}))


def source_row(person: dict[str, Any]) -> dict[str, Any]:
    return person_row(int(person["uuid"].rsplit("-", 1)[1]))


def test_a_person_is_a_dataset_row_with_every_field_data_designer_exposes(assets: Path) -> None:
    drawn = people(range(300), with_synthetic_personas=True)
    demographic = [f for f in DEMOGRAPHIC_FIELDS if f in person_row(0) and f != "religion"]
    expected = {*demographic, "locale", "birth_date", "phone_number", "email_address"}
    expected |= {"national_id", "state", *(f for f in PERSONA_FIELDS if f in person_row(0))}
    expected -= {"region"}  # en_US calls it state; religion is all null in the dataset
    for person in drawn:
        assert set(person) == expected
        row = source_row(person)
        for name in expected - {"locale", "birth_date", "phone_number", "email_address"}:
            want = row["region"] if name == "state" else row.get(name, person[name])
            if name != "national_id":
                assert person[name] == want, name
        assert person["openness"]["t_score"] == row["openness"]["t_score"]
        assert person["locale"] == "en_US"
    assert len({p["uuid"] for p in drawn}) > ROWS // 2  # spread over the dataset


def test_persona_fields_only_with_synthetic_personas(assets: Path) -> None:
    for person in people(range(50)):
        assert not set(person) & set(PERSONA_FIELDS)
        assert person["ethnic_background"]


def test_derived_fields_follow_data_designer(assets: Path) -> None:
    ref = dt.date(2026, 1, 1)
    for person in people(range(400)):
        born = dt.date.fromisoformat(person["birth_date"])
        age = ref.year - born.year - ((ref.month, ref.day) < (born.month, born.day))
        assert age == person["age"]
        adult = person["age"] >= 18
        assert (person["email_address"] is not None) == adult
        assert (person["phone_number"] is not None) == adult
        assert person["national_id"] is not None  # en_US, a state: a social security number
        if adult:
            assert person["email_address"].split("@")[1] in {
                "gmail.com", "yahoo.com", "icloud.com", "outlook.com", "hotmail.com",
                "aol.com", "protonmail.com", "comcast.net", "gmx.com",
            }  # fmt: skip


def test_filters_select_people_as_data_designer_does(assets: Path) -> None:
    chosen = people(
        range(300),
        sex="Female",
        city=["Austin", "Albany"],
        age_range=[20, 50],
        select_field_values={"state": ["TX", "NY"], "ethnic_background": ["hispanic", "black"]},
    )
    for person in chosen:
        assert person["sex"] == "Female"
        assert person["city"] in ("Austin", "Albany")
        assert 20 <= person["age"] <= 50
        assert person["state"] in ("TX", "NY")
    matching = [
        person_row(i)
        for i in range(ROWS)
        if person_row(i)["sex"] == "Female" and person_row(i)["city"] in ("Austin", "Albany")
        and 20 <= person_row(i)["age"] <= 50
    ]  # fmt: skip
    assert {p["uuid"] for p in chosen} == {r["uuid"] for r in matching}


def test_a_person_depends_on_seed_column_and_row_only(assets: Path) -> None:
    whole = people(range(100, 300))
    split = people(range(100, 170)) + people(range(170, 300))
    assert whole == split
    assert people(range(100, 300), seed=4) != whole


def test_the_stored_column_has_the_dataset_types(assets: Path) -> None:
    gen = SamplerGenerator(column(with_synthetic_personas=True))
    kind = arrow_type_for_shape(gen.output_shape())
    assert kind is not None
    assert kind.field("age").type == pa.int64()
    assert kind.field("openness").type == pa.struct(
        [("description", pa.string()), ("label", pa.string()), ("t_score", pa.int64())]
    )
    values = gen.generate_batch(BatchInput(1, 0, list(range(64)), {}))
    array, as_json = encode_column(values, kind)
    assert not as_json and array.type == kind


def test_a_missing_dataset_is_a_typed_error_naming_path_and_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DESIGNER_MANAGED_ASSETS_PATH", str(tmp_path / "nowhere"))
    config = DatasetConfig(columns=[column(locale="ja_JP")])
    with pytest.raises(ConfigValidationError) as caught:
        config.check_environment()
    text = str(caught.value)
    assert "missing_person_dataset" in text
    assert str(tmp_path / "nowhere" / "datasets" / "ja_JP.parquet") in text
    assert "data-designer download personas --locale ja_JP" in text
    with pytest.raises(ConfigValidationError, match="person_dataset"):
        SamplerGenerator(column(locale="ja_JP"))


def test_the_default_place_is_data_designers_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATA_DESIGNER_MANAGED_ASSETS_PATH", raising=False)
    monkeypatch.setenv("DATA_DESIGNER_HOME", str(tmp_path / "dd"))
    write_persona_dataset(tmp_path / "dd" / "managed-assets", rows=10)
    DatasetConfig(columns=[column()]).check_environment()
    assert len(people(range(5))) == 5


def test_filters_nobody_meets_are_a_typed_error(assets: Path) -> None:
    with pytest.raises(ConfigValidationError, match=r"no person .* has"):
        SamplerGenerator(column(city="Nome", sex="Male"))
    with pytest.raises(ConfigValidationError, match="has no column"):
        SamplerGenerator(column(select_field_values={"race": ["a"]}))


def test_params_refused_by_name() -> None:
    for params, message in (
        ({"locale": "fr_CA"}, "no Nemotron-Personas dataset for locale 'fr_CA'"),
        ({"select_field_values": {"opennes": ["x"]}}, "did you mean 'openness'"),
    ):
        config = {"columns": [column(**params).model_dump()]}
        with pytest.raises(ConfigValidationError, match=message):
            DatasetConfig.from_dict(config)
