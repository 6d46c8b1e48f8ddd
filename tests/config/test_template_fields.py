"""What templates read from other columns, checked against the shape each column declares:
person fields, structured schemas (nested, `$defs`, unions, arrays), judge scores, string
methods; unknown shapes and template-local names are not checked."""

from __future__ import annotations

import pytest
from jinja2 import Environment

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
            "person.frist_name: it has no field 'frist_name' (its fields: age, city, country, "
            "first_name, last_name, occupation, sex); did you mean 'first_name'?",
        ),
        ("{{ person.state }}", "person.state: it has no field 'state'"),
        (
            "{{ review.scores.qualty.score }}",
            "review.scores.qualty: it has no field 'qualty' (its fields: quality); "
            "did you mean 'quality'?",
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
