"""Data Designer configs for features the reference's public recipes use in other ways
(conditional params, skips, custom columns, validators, processors; prompts abridged),
serialized as Data Designer writes them. `write_all` regenerates those `configs/*.yaml`; the
tests read the committed files.

The other configs in `configs/` are the public tutorials and recipes themselves, written by
Data Designer 0.9.7's own `DataDesignerConfigBuilder.write_config` from their `build_config`
(text_to_sql, text_to_python, enterprise_text_to_sql, multi_turn_chat, tutorial_2/3, and
the two shared samples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from tests.compat.dd_shapes import (
    chat_model,
    code_validation,
    config,
    custom,
    drop_columns,
    dump,
    expression,
    llm,
    local_validation,
    sampler,
    schema_transform,
)

_ALIAS = "openai-text"


class Product(BaseModel):
    name: str = Field(description="The name of the product")
    description: str = Field(description="A description of the product")
    price: float = Field(description="The price of the product", ge=10, le=1000, decimal_places=2)


class ProductReview(BaseModel):
    rating: int = Field(description="The rating of the product", ge=1, le=5)
    customer_mood: Literal["irritated", "mad", "happy", "neutral", "excited"] = Field(
        description="The mood of the customer"
    )
    review: str = Field(description="A review of the product")


_NEMOTRON = chat_model(
    "nemotron-nano-v3",
    "nvidia/nemotron-3-nano-30b-a3b",
    "nvidia",
    extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    max_tokens=2048,
    temperature=1.0,
    top_p=1.0,
)


def structured_outputs() -> dict[str, Any]:
    """Tutorial 2: structured outputs, Jinja expressions, conditional params, skip."""
    alias = "nemotron-nano-v3"
    return config(
        [
            sampler("customer", "person_from_faker", drop=True),
            sampler("product_category", "category", values=["Electronics", "Books"]),
            sampler(
                "product_subcategory",
                "subcategory",
                category="product_category",
                values={"Electronics": ["Laptops", "Cameras"], "Books": ["Fiction", "Classics"]},
            ),
            sampler("target_age_range", "category", values=["18-25", "25-35", "35-50", "65+"]),
            sampler(
                "review_style",
                "category",
                conditional={"target_age_range == '18-25'": {"values": ["rambling"]}},
                values=["rambling", "brief", "detailed", "structured with bullet points"],
                weights=[1, 2, 2, 1],
            ),
            expression("customer_name", "{{ customer.first_name }} {{ customer.last_name }}"),
            expression("customer_age", "{{ customer.age }}"),
            llm(
                "structured",
                "product",
                "Create a product in the '{{ product_category }}' category, related to "
                "'{{ product_subcategory }}', for customers aged {{ target_age_range }}.",
                alias,
                output_format=Product.model_json_schema(),
            ),
            llm(
                "structured",
                "customer_review",
                "Review {{ product.name }} ({{ product.price }}) as {{ customer_name }} from "
                "{{ customer.city }}, {{ customer.state }}, in a '{{ review_style }}' style."
                "{% if target_age_range == '18-25' %}Be informal.{% else %}Be formal.{% endif %}",
                alias,
                output_format=ProductReview.model_json_schema(),
            ),
            llm(
                "text",
                "complaint_analysis",
                "Why is this customer unhappy? {{ customer_review.review }} "
                "({{ customer_review.rating }}/5, {{ customer_review.customer_mood }})",
                alias,
                skip={"value": None, "when": "{{ customer_review.rating > 2 }}"},
            ),
            llm(
                "text",
                "review_summary",
                "Summarize: {{ customer_review.review }}"
                "{% if complaint_analysis %} Analysis: {{ complaint_analysis }}{% endif %}",
                alias,
                propagate_skip=False,
            ),
        ],
        model_configs=[_NEMOTRON],
    )


def seeding() -> dict[str, Any]:
    """Tutorial 3: a seed file, Faker people (birth_date), uppercase short UUIDs with a
    prefix, datetime and timedelta samplers."""
    alias = "nemotron-nano-v3"
    return config(
        [
            sampler("patient_sampler", "person_from_faker"),
            sampler("doctor_sampler", "person_from_faker"),
            sampler("patient_id", "uuid", prefix="PT-", short_form=True, uppercase=True),
            expression("first_name", "{{ patient_sampler.first_name }}"),
            expression("last_name", "{{ patient_sampler.last_name }}"),
            expression("dob", "{{ patient_sampler.birth_date }}"),
            sampler("symptom_onset_date", "datetime", start="2024-01-01", end="2024-12-31"),
            sampler(
                "date_of_visit",
                "timedelta",
                dt_max=30,
                dt_min=1,
                reference_column_name="symptom_onset_date",
            ),
            expression("physician", "Dr. {{ doctor_sampler.last_name }}"),
            llm(
                "text",
                "physician_notes",
                "You saw {{ first_name }} {{ last_name }} (born {{ dob }}), struggling with "
                "{{ diagnosis }} since {{ symptom_onset_date }}; today is {{ date_of_visit }}.\n"
                "{{ patient_summary }}\nWrite notes as Dr. {{ doctor_sampler.first_name }} "
                "{{ doctor_sampler.last_name }}.",
                alias,
            ),
        ],
        model_configs=[_NEMOTRON],
        seed_config={
            "sampling_strategy": "ordered",
            "selection_strategy": None,
            "source": {"path": "gretelai_symptom_to_diagnosis.csv", "seed_type": "local"},
        },
    )


_VALIDATOR_SCHEMA = {  # Data Designer's validators page, local callable example
    "type": "object",
    "properties": {
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "is_valid": {"type": ["boolean", "null"]},
                    "error_message": {"type": "string"},
                },
                "required": ["is_valid"],
            },
        }
    },
}


def sft_chat_format() -> dict[str, Any]:
    """Q&A pairs turned into chat-format SFT records (the processors page's `chat_format`
    example): a full-column custom column with `generator_params`, a local callable validator
    with an `output_schema`, `drop_columns` (its columns marked `drop`, as Data Designer's
    builder does) and `schema_transform` into `messages`."""
    return config(
        [
            sampler("topic", "category", values=["Cooking", "Travel", "Personal Finance"]),
            sampler("difficulty", "category", values=["beginner", "expert"], drop=True),
            llm(
                "text",
                "question",
                "Write one {{ difficulty }}-level question a user might ask about {{ topic }}.",
                _ALIAS,
            ),
            llm(
                "text",
                "answer",
                "Answer this {{ topic }} question helpfully:\n{{ question }}",
                _ALIAS,
                system_prompt="You are a concise, friendly assistant.",
            ),
            custom(
                "answer_words",
                "recipe_functions:answer_words",
                strategy="full_column",
                generator_params={"min_words": 5},
            ),
            local_validation(
                "answer_check",
                ["answer", "answer_words"],
                "recipe_functions:check_answers",
                output_schema=_VALIDATOR_SCHEMA,
                batch_size=20,
            ),
        ],
        processors=[
            drop_columns("cleanup", ["difficulty"]),
            schema_transform(
                "chat_format",
                {
                    "messages": [
                        {"role": "user", "content": "{{ question }}"},
                        {"role": "assistant", "content": "{{ answer }}"},
                    ],
                    "metadata": "{{ topic | upper }}",
                },
            ),
        ],
    )


def writer_editor_sft() -> dict[str, Any]:
    """The custom-columns page's multi-turn example (a writer and an editor model through
    `models[...]`, side-effect columns `draft`/`critique`), a Python snippet checked by the
    code validator, and prompt/completion SFT records from `schema_transform`."""
    writer = chat_model("writer", "openai/gpt-oss-120b", "nvidia", temperature=0.8)
    editor = chat_model("editor", "nvidia/nemotron-3-nano-30b-a3b", "nvidia", temperature=0.2)
    return config(
        [
            sampler("topic", "category", values=["tide pools", "city bikes", "sourdough"]),
            custom("final_text", "recipe_functions:writer_editor"),
            llm(
                "code",
                "word_counter",
                "Write a Python function that returns the five most common words of a text "
                "like this one:\n{{ final_text }}",
                "writer",
                code_lang="python",
            ),
            code_validation("word_counter_check", "word_counter", "python"),
        ],
        model_configs=[writer, editor],
        processors=[
            drop_columns("scratch", ["draft", "critique"]),
            schema_transform(
                "sft",
                {
                    "prompt": "Write a short paragraph about {{ topic }}.",
                    "completion": "{{ final_text }}",
                    "rejected": "{{ draft }}",
                    "code": {
                        "source": "{{ word_counter }}",
                        "valid": "{{ word_counter_check.is_valid }}",
                    },
                },
            ),
        ],
    )


RECIPES = {
    "structured_outputs": structured_outputs,
    "seeding": seeding,
    "sft_chat_format": sft_chat_format,
    "writer_editor_sft": writer_editor_sft,
}


def write_all(folder: Path) -> None:
    """Write every recipe config into `folder`."""
    for name, build in RECIPES.items():
        dump(build(), folder / f"{name}.yaml")
