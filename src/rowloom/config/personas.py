"""NVIDIA's Nemotron-Personas datasets: where they live, what a sampled person holds.

A `person` sampler with `source: nemotron_personas` draws people from the locale's dataset,
a parquet file that Data Designer users download once (`data-designer download personas
--locale en_US`, which needs NVIDIA's NGC command-line tool and an NGC API key) into Data
Designer's managed-assets folder: `$DATA_DESIGNER_MANAGED_ASSETS_PATH/datasets/<locale>.parquet`,
by default `$DATA_DESIGNER_HOME/managed-assets/...`, i.e. `~/.data-designer/managed-assets/...`.
rowloom reads the same file in the same place and never downloads it.

The field lists are Data Designer's (0.9.7): the demographic fields a dataset may hold, the
fields derived per person (birth date, e-mail, phone, national id), and the persona fields
added by `with_synthetic_personas`. A locale's dataset holds a subset of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PERSONA_LOCALES: tuple[str, ...] = (
    "en_GB",
    "de_DE",
    "en_US",
    "en_IN",
    "en_SG",
    "fr_FR",
    "hi_Deva_IN",
    "hi_Latn_IN",
    "ja_JP",
    "ko_KR",
    "pt_BR",
)
"""Locales with a Nemotron-Personas dataset."""
REQUIRED_FIELDS = ("first_name", "last_name", "age")
"""Columns every dataset must have (with `locale`, which is added per person)."""
DEMOGRAPHIC_FIELDS: tuple[str, ...] = (
    "uuid",
    "first_name",
    "middle_name",
    "last_name",
    "sex",
    "age",
    "marital_status",
    "postcode",
    "city",
    "district",
    "region",
    "country",
    "street_name",
    "street_number",
    "unit",
    "bachelors_field",
    "education_level",
    "occupation",
    "ethnic_background",
    "industry",
    "preferred_english_name",
    "first_name_heritage",
    "name_heritage",
    "is_first_gen_immigrant",
    "household_type",
    "monthly_income_eur",
    "area",
    "blood_pressure_status",
    "blood_sugar_status",
    "bmi_status",
    "drinking_status",
    "economic_activity_status",
    "family_type",
    "housing_tenure",
    "housing_type",
    "income_bracket",
    "military_status",
    "smoking_status",
    "waist_status",
    "ethnicity",
    "country_of_birth",
    "disability",
    "migration_background",
    "employment_status",
    "job_position",
    "occupation_kldb",
    "last_occupation",
    "last_occupation_kldb",
    "kreis_code",
    "nationality",
    "race",
    "education_degree",
    "first_language",
    "second_language",
    "third_language",
    "zone",
    "religion",
)
"""Dataset columns a sampled person keeps (in this order), when the locale's dataset has them."""
DERIVED_FIELDS = ("locale", "birth_date", "phone_number", "email_address", "national_id")
"""Fields computed per person: birth date from the age, e-mail for adults, US phone numbers
and social security numbers (None elsewhere)."""
PERSONA_FIELDS: tuple[str, ...] = (
    "persona",
    "detailed_persona",
    "professional_persona",
    "career_goals_and_ambitions",
    "cultural_background",
    "arts_persona",
    "culinary_persona",
    "finance_persona",
    "healthcare_persona",
    "sports_persona",
    "travel_persona",
    "hobbies_and_interests",
    "hobbies_and_interests_list",
    "skills_and_expertise",
    "skills_and_expertise_list",
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
    "aspects",
    "digital_skill",
    "family_persona",
    "religious_persona",
    "religious_background",
    "linguistic_persona",
    "linguistic_background",
)
"""Dataset columns added by `with_synthetic_personas` (in this order), when present."""
BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
"""Personality traits, each a struct of `t_score`, `label` and `description`."""
SELECTABLE_DATASET_FIELDS = frozenset({*DEMOGRAPHIC_FIELDS, "state", *PERSONA_FIELDS})
"""Fields `select_field_values` may filter on (`state` is `region` in the en_US dataset)."""


def state_named_region(locale: str) -> bool:
    """True where a person's `region` is called `state` (en_US, as Data Designer does)."""
    return locale == "en_US"


def managed_assets_dir() -> Path:
    """Data Designer's managed-assets folder: `$DATA_DESIGNER_MANAGED_ASSETS_PATH`, else
    `$DATA_DESIGNER_HOME/managed-assets`, else `~/.data-designer/managed-assets`."""
    explicit = os.environ.get("DATA_DESIGNER_MANAGED_ASSETS_PATH")
    if explicit:
        return Path(explicit)
    return data_designer_home() / "managed-assets"


def data_designer_home() -> Path:
    """Data Designer's settings folder (`$DATA_DESIGNER_HOME`, else `~/.data-designer`)."""
    return Path(os.environ.get("DATA_DESIGNER_HOME") or Path.home() / ".data-designer")


def persona_dataset_path(locale: str) -> Path:
    """Where the locale's Nemotron-Personas dataset is read from."""
    return managed_assets_dir() / "datasets" / f"{locale}.parquet"


def missing_dataset_message(locale: str) -> str:
    """Why a missing dataset stops a run, and how to get it."""
    return (
        f"the Nemotron-Personas dataset for {locale} is not at {persona_dataset_path(locale)}; "
        f"download it as Data Designer users do (`data-designer download personas --locale "
        f"{locale}`, which needs NVIDIA's NGC CLI and `ngc config set`), or put the file "
        f"elsewhere and set DATA_DESIGNER_MANAGED_ASSETS_PATH to the folder holding "
        f"datasets/{locale}.parquet; `sampler_type: person_from_faker` needs no download"
    )


def persona_shape(locale: str, with_synthetic_personas: bool) -> dict[str, Any]:
    """The fields a person drawn from the locale's dataset may have. Their types depend on the
    dataset file, so they are left open (the Big Five traits are known to be structs)."""
    region = "state" if state_named_region(locale) else "region"
    names = [region if n == "region" else n for n in DEMOGRAPHIC_FIELDS]
    names += [n for n in DERIVED_FIELDS if n not in names]
    props: dict[str, Any] = {name: {} for name in names}
    if with_synthetic_personas:
        trait = {
            "type": ["object", "null"],
            "properties": {"t_score": {}, "label": {}, "description": {}},
            "additionalProperties": False,
        }
        props.update({n: (dict(trait) if n in BIG_FIVE else {}) for n in PERSONA_FIELDS})
    return {"type": "object", "properties": props, "additionalProperties": False}
