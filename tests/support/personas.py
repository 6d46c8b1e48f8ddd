"""A small Nemotron-Personas dataset in Data Designer's schema, for tests.

The real datasets (1-4 GB per locale, NGC download) are not available here. The column names
are Data Designer's (`dataset_based_person_fields.py`: the demographic fields of the en_US
dataset, `ethnic_background`, the persona fields); the types follow what Data Designer's
documentation and its own test data show: ages and street numbers are integers, postcodes
text, the Big Five traits `struct<description, label, t_score>`, lists as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TRAIT = pa.struct(
    [
        pa.field("description", pa.string()),
        pa.field("label", pa.string()),
        pa.field("t_score", pa.int64()),
    ]
)
DEMOGRAPHIC: list[tuple[str, pa.DataType]] = [
    ("uuid", pa.string()),
    ("first_name", pa.string()),
    ("middle_name", pa.string()),
    ("last_name", pa.string()),
    ("sex", pa.string()),
    ("age", pa.int64()),
    ("marital_status", pa.string()),
    ("postcode", pa.string()),
    ("city", pa.string()),
    ("district", pa.string()),
    ("region", pa.string()),
    ("country", pa.string()),
    ("street_name", pa.string()),
    ("street_number", pa.int64()),
    ("unit", pa.string()),
    ("bachelors_field", pa.string()),
    ("education_level", pa.string()),
    ("occupation", pa.string()),
    ("ethnic_background", pa.string()),
]
TEXTS = [
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
]
TRAITS = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]
CITIES = [
    ("Presque Isle", "ME", "Aroostook County", "04769"),
    ("Austin", "TX", "Travis County", "78701"),
    ("Albany", "NY", "Albany County", "12207"),
    ("Fresno", "CA", "Fresno County", "93721"),
]
SCHEMA = pa.schema(
    [
        *(pa.field(n, t) for n, t in DEMOGRAPHIC),
        *(pa.field(n, pa.string()) for n in TEXTS),
        *(pa.field(n, TRAIT) for n in TRAITS),
        pa.field("religion", pa.null()),  # a column all null in this locale: left out
    ]
)


def person_row(i: int) -> dict[str, Any]:
    """Row `i` of the fixture: every 4th person is a minor, every 3rd has no middle name."""
    city, state, county, zipcode = CITIES[i % len(CITIES)]
    first = ("Robert", "Maria", "Chen", "Aisha", "José")[i % 5]
    row: dict[str, Any] = {
        "uuid": f"00000000-0000-4000-8000-{i:012d}",
        "first_name": first,
        "middle_name": None if i % 3 == 0 else "Alan",
        "last_name": ("Williams", "García", "Nguyen", "Okafor")[i % 4],
        "sex": "Male" if i % 2 == 0 else "Female",
        "age": 12 if i % 4 == 3 else 20 + (i * 7) % 60,
        "marital_status": "never_married" if i % 4 == 3 else "married_present",
        "postcode": zipcode,
        "city": city,
        "district": county,
        "region": state,
        "country": "USA",
        "street_name": "Osprey Dr",
        "street_number": 100 + i,
        "unit": "",
        "bachelors_field": None if i % 2 else "stem",
        "education_level": "bachelors" if i % 2 == 0 else "secondary_education",
        "occupation": "customer_service_representative",
        "ethnic_background": ("white", "hispanic", "asian", "black")[i % 4],
        "religion": None,
    }
    row.update({n: f"{first}'s {n.replace('_', ' ')} (row {i})" for n in TEXTS})
    for j, trait in enumerate(TRAITS):
        score = 30 + (i * 11 + j * 17) % 50
        label = "low" if score < 45 else "average" if score < 55 else "high"
        row[trait] = {"description": f"{trait} is {label} for {first}", "label": label,
                      "t_score": score}  # fmt: skip
    return row


def write_persona_dataset(
    assets: Path, locale: str = "en_US", rows: int = 200, row_group_size: int = 64
) -> Path:
    """`<assets>/datasets/<locale>.parquet`, as Data Designer's download leaves it."""
    path = assets / "datasets" / f"{locale}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([person_row(i) for i in range(rows)], schema=SCHEMA)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path
