"""The Python functions the Data Designer recipe configs beside this file name
(`generator_function: recipe_functions:writer_editor`). Data Designer writes only a function's
bare name; rowloom needs `module:function`, and finds this module beside the config."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rowloom import custom_column_generator


@custom_column_generator(
    required_columns=["topic"],
    side_effect_columns=["draft", "critique"],
    model_aliases=["writer", "editor"],
)
def writer_editor(row: dict[str, Any], generator_params: None, models: dict[str, Any]) -> dict:
    """Data Designer's multi-turn custom column example: draft, critique, revise."""
    draft, _ = models["writer"].generate(prompt=f"Write a short paragraph about '{row['topic']}'")
    critique, _ = models["editor"].generate(prompt=f"Critique this paragraph: {draft}")
    revised, _ = models["writer"].generate(
        prompt=f"Revise based on: {critique}\n\nOriginal: {draft}"
    )
    row["final_text"] = revised
    row["draft"] = draft
    row["critique"] = critique
    return row


@custom_column_generator(required_columns=["answer"], side_effect_columns=["answer_too_short"])
def answer_words(df: pd.DataFrame, generator_params: dict[str, Any]) -> pd.DataFrame:
    """A full-column function with params: the answer's word count and whether it is short."""
    counts = df["answer"].str.split().str.len()
    df["answer_words"] = counts
    df["answer_too_short"] = counts < int(generator_params["min_words"])
    return df


def check_answers(df: pd.DataFrame) -> pd.DataFrame:
    """Data Designer's local callable validator shape: `is_valid` plus metadata per row."""
    result = pd.DataFrame()
    result["is_valid"] = df["answer_words"] >= 3
    result["error_message"] = result["is_valid"].map(lambda ok: "" if ok else "answer too short")
    return result
