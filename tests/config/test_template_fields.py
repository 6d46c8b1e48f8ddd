"""What templates read from other columns, checked against the shape each column declares:
person fields, structured schemas (nested, `$defs`, unions, arrays), judge scores, string
methods; unknown shapes and template-local names are not checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from jinja2 import Environment
from tests.interface.cli_support import run_cli

from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigValidationError
from rowloom.config.template_fields import Shape, field_issues

PERSON: Shape = {
    "type": "object",
    "properties": {
        name: {"type": "string"}
        for name in ("first_name", "last_name", "city", "country", "occupation", "sex")
    }
    | {"age": {"type": "integer"}},
    "additionalProperties": False,
}
REVIEW: Shape = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "scores": {"$ref": "#/$defs/Scores"},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
        "author": {"anyOf": [{"$ref": "#/$defs/Author"}, {"type": "null"}]},
        "extras": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
    "$defs": {
        "Scores": {
            "type": "object",
            "properties": {"quality": {"type": "object", "properties": {"score": {}}}},
        },
        "Tag": {"type": "object", "properties": {"label": {"type": "string"}}},
        "Author": {"type": "object", "properties": {"handle": {"type": "string"}}},
    },
}
VERDICT: Shape = {
    "type": "object",
    "properties": {
        "correctness": {
            "type": "object",
            "properties": {"score": {"type": "string"}, "reasoning": {"type": "string"}},
        }
    },
}
SHAPES: dict[str, Shape | None] = {
    "person": PERSON,
    "review": REVIEW,
    "verdict": VERDICT,
    "topic": {"type": "string"},
    "n": {"type": "integer"},
    "seeded": None,
}


def problems(source: str) -> list[str]:
    template = Environment().parse(source)
    return [f"{p.expression}: {p.message}" for p in field_issues(template, lambda n: SHAPES.get(n))]


@pytest.mark.parametrize(
    "source",
    [
        "{{ person.first_name }} {{ person['age'] + 1 }} {{ person.city | upper }}",
        "{{ review.scores.quality.score }} {{ review.tags[0].label }}",
        "{{ review.author.handle }} {{ review.extras.anything }}",
        "{{ verdict.correctness.score }} {{ verdict['correctness'].reasoning }}",
        "{{ topic.upper() }} {{ topic.split(',')[0] }} {{ person.items() | list }}",
        "{{ seeded.whatever.deep }} {{ person[key] }} {{ unknown.thing }}",
        "{% for person in people %}{{ person.anything }}{% endfor %}",
        "{% set topic = person %}{{ topic.first_name }}",
        "{% if n.bit_length() > 3 %}big{% endif %}",
    ],
)
def test_accesses_the_columns_produce_pass(source: str) -> None:
    assert problems(source) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "Hello {{ person.frist_name }}",
            "person.frist_name: it has no field 'frist_name'; did you mean 'first_name'?",
        ),
        (
            "{{ person.state }}",
            "person.state: it has no field 'state' (its fields: age, city, country, "
            "first_name, last_name, occupation, sex)",
        ),
        (
            "{{ review.scores.qualty.score }}",
            "review.scores.qualty: it has no field 'qualty'; did you mean 'quality'?",
        ),
        ("{{ review.tags[0].lable }}", "review.tags[0].lable: it has no field 'lable'"),
        ("{{ review.author.name }}", "review.author.name: it has no field 'name'"),
        ("{{ verdict.correctnes.score }}", "did you mean 'correctness'?"),
        ("{{ topic.nmae }}", "topic.nmae: it is a string, which has no field 'nmae'"),
        ("{{ n.value }}", "n.value: it is an integer, which has no field 'value'"),
    ],
)
def test_a_field_the_column_cannot_have_is_named(source: str, expected: str) -> None:
    found = problems(source)
    assert len(found) == 1 and expected in found[0], found


def test_each_problem_is_reported_once() -> None:
    assert len(problems("{{ person.zip.code }} {{ person.zip }} {{ person['zip'] }}")) == 1


def test_validate_names_a_field_a_person_sampler_does_not_produce(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`{{ customer.stat }}` on a person sampler used to pass validation and then drop every
    row; now `validate` and `preview` stop before any model call, exit 2."""
    config = tmp_path / "people.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "columns": [
                    {"name": "customer", "column_type": "sampler", "sampler_type": "person"},
                    {
                        "name": "greeting",
                        "column_type": "expression",
                        "expr": "Hi {{ customer.first_name }} from {{ customer.stat }}",
                    },
                ]
            }
        )
    )
    for command in ("validate", "preview"):
        result = run_cli(capsys, command, config)
        assert result.code == 2
        assert (
            "columns.greeting.expr: template reads {{ customer.stat }}, but column 'customer' "
            "cannot have it: it has no field 'stat'; did you mean 'state'? [unknown_field]"
        ) in result.err


def test_a_text_expression_of_one_value_can_be_read_into_and_personas_name_their_fields() -> None:
    """DD's tutorial 7 lifts `{{ person.openness }}` into a column and reads
    `{{ openness.description }}`; a Nemotron-Personas person names its fields."""
    person = {"source": "nemotron_personas", "locale": "en_US", "with_synthetic_personas": True}
    columns = [
        {"name": "p", "column_type": "sampler", "sampler_type": "person", "params": person},
        {"name": "openness", "column_type": "expression", "expr": "{{ p.openness }}"},
        {"name": "label", "column_type": "expression", "expr": "x {{ p.openness.label }}"},
        {"name": "a", "column_type": "expression", "expr": "{{ openness.description }}"},
        {"name": "b", "column_type": "expression", "expr": "{{ label.description }}"},
        {"name": "c", "column_type": "expression", "expr": "{{ p.openess }} {{ p.state }}"},
        {"name": "d", "column_type": "expression", "expr": "{{ p.openness.lable }}"},
    ]
    with pytest.raises(ConfigValidationError) as caught:
        DatasetConfig.from_dict({"columns": columns})
    found = {i.location: i.message for i in caught.value.issues}
    assert set(found) == {"columns.b", "columns.c", "columns.d"}, found
    assert "did you mean 'openness'" in found["columns.c"]
    assert "no field 'lable'" in found["columns.d"]
