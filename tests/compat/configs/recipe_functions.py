"""The Python functions the Data Designer recipe configs beside this file name
(`generator_function: recipe_functions:writer_editor`). Data Designer writes only a function's
bare name; rowloom needs `module:function`, and finds this module beside the config."""

from __future__ import annotations

import re
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


_OCR_ELEMENT = re.compile(
    r"<x_([\d.]+)><y_([\d.]+)>(.*?)<x_([\d.]+)><y_([\d.]+)><class_([^>]+)>", re.DOTALL
)


@custom_column_generator(
    required_columns=["raw_ocr_output"], side_effect_columns=["transcribed_texts__metadata"]
)
def parse_ocr_output(row: dict[str, Any]) -> dict[str, Any]:
    """VLM recipe 02: the text and the boxes of Nemotron-Parse's `<x_><y_>text<x_><y_><class_>`
    markup (a reply without markup gives no text and no boxes)."""
    texts, boxes = [], []
    for x1, y1, text, x2, y2, label in _OCR_ELEMENT.findall(row["raw_ocr_output"]):
        texts.append(text.strip())
        box = {"x1": float(x1), "y1": float(y1), "x2": float(x2), "y2": float(y2)}
        boxes.append({"bbox": box, "class_label": label})
    row["transcribed_texts"] = "\n".join(texts)
    row["transcribed_texts__metadata"] = boxes
    return row


_JUDGE_WEIGHTS = {
    "Answer Correctness": 0.35,
    "Training Signal Strength": 0.30,
    "Question Quality": 0.15,
    "Visual Grounding": 0.10,
    "Format Compliance": 0.10,
}


@custom_column_generator(required_columns=["qa_quality_judge"])
def compute_weighted_score(row: dict[str, Any]) -> dict[str, Any]:
    """VLM recipe 09: the judge's five rubric scores weighted into one score in [0, 1]."""
    judge = row["qa_quality_judge"]
    raw = sum(float(judge[name]["score"]) * w for name, w in _JUDGE_WEIGHTS.items())
    row["weighted_quality_score"] = round(raw / 5.0, 2)
    return row
