"""Small seeds for Data Designer's long-document VLM recipes (02-09), written by the tests.

Recipe 01 renders PDF pages to PNG and writes three seeds whose `png_images_base64` column is
a JSON array of base64 PNGs: one page per row (`seed_per_page`), a window of pages
(`seed_windowed`), a whole document (`seed_whole_document`). Recipes 03, 05 and 09 read the
output of the recipe before (02, 04, and any of 05-08). These files have the same columns with
a few tiny pages each, so the recipe configs in `configs/` run with `--simulate`:

    python tests/compat/vlm_seeds.py FOLDER
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rowloom.simulation.media import simulated_png

DOCUMENTS = 3
PAGES = 4


def page_png(doc: int, page: int) -> bytes:
    """The PNG of one page (a small deterministic image)."""
    return simulated_png(doc, "page", f"document {doc} page {page}", size=8)


def _pages(doc: int, pages: range) -> str:
    return json.dumps([base64.b64encode(page_png(doc, p)).decode("ascii") for p in pages])


def _document(doc: int) -> dict[str, Any]:
    return {
        "id": f"<urn:uuid:doc-{doc}>",
        "url": f"https://example.com/report-{doc}.pdf",
        "date": "2024-05-01",
        "total_pages": PAGES,
    }


def seeds() -> dict[str, list[dict[str, Any]]]:
    """Each seed file's rows by file stem."""
    per_page = [
        {**_document(d), "page_number": p, "png_images_base64": _pages(d, range(p, p + 1))}
        for d in range(DOCUMENTS)
        for p in range(PAGES)
    ]
    windowed = [
        {**_document(d), "start_page": s, "end_page": s + 2, "window_size": 2,
         "png_images_base64": _pages(d, range(s, s + 2))}
        for d in range(DOCUMENTS)
        for s in range(0, PAGES, 2)
    ]  # fmt: skip
    whole = [{**_document(d), "png_images_base64": _pages(d, range(PAGES))} for d in range(3)]
    ocr = [
        {**row, "transcribed_texts": f"Table 1. Revenue by region, page {row['page_number']}",
         "transcribed_texts__metadata": [{"bbox": {"x1": 0.1, "y1": 0.1, "x2": 0.9, "y2": 0.2},
                                          "class_label": "Table"}]}
        for row in per_page
    ]  # fmt: skip
    classified = [
        {**row, "page_classification": {
            "contains_reasoning_content": True, "primary_categories": ["TABULAR"],
            "subcategories": ["SIMPLE_TABLE"], "reasoning_complexity_score": 5,
            "justification": "A revenue table."}}
        for row in per_page
    ]  # fmt: skip
    qa = [
        {**row, "question_type": "short answer", "question": "Which region grew most?",
         "answer": "North"}
        for row in per_page
    ]  # fmt: skip
    return {
        "seed_per_page": per_page,
        "seed_windowed": windowed,
        "seed_whole_document": whole,
        "nemotron_parse_ocr": ocr,
        "page_classification": classified,
        "single_page_qa": qa,
    }


def write_seeds(folder: Path) -> None:
    """Write every seed as `<stem>.parquet` into `folder`."""
    for stem, rows in seeds().items():
        pq.write_table(pa.Table.from_pylist(rows), folder / f"{stem}.parquet")


if __name__ == "__main__":
    write_seeds(Path(sys.argv[1]))
