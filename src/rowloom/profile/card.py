"""The dataset card (`README.md`) published with a dataset on the Hugging Face Hub.

Built from the run folder alone: what the config generates (columns, their types and models),
the models used, the row count, a one-line profile summary per column, token usage and the
licence. It never contains API keys, endpoints' credentials or prompt text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

MODEL_COLUMN_TYPES = ("llm_text", "llm_code", "llm_structured", "llm_judge", "embedding", "image")


def size_category(rows: int) -> str:
    """The Hub's `size_categories` bucket for a row count."""
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ]
    for bound, label in bounds:
        if rows < bound:
            return label
    return "10M<n<100M"


def _front_matter(license_id: str, rows: int, pretty_name: str) -> str:
    meta = {
        "license": license_id,
        "pretty_name": pretty_name,
        "size_categories": [size_category(rows)],
        "tags": ["synthetic", "rowloom"],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _column_rows(config: Mapping[str, Any] | None, profile: Mapping[str, Any] | None) -> list[str]:
    columns = {c["name"]: c for c in (config or {}).get("columns", []) if "name" in c}
    profiled = (profile or {}).get("columns", {})
    names = list(profiled) or list(columns)
    rows = ["| column | type | model | profile |", "|---|---|---|---|"]
    for name in names:
        col = columns.get(name, {})
        kind = col.get("column_type") or profiled.get(name, {}).get("column_type") or ""
        model = col.get("model_alias", "") if kind in MODEL_COLUMN_TYPES else ""
        summary = profile_line(profiled.get(name, {}))
        rows.append(f"| `{name}` | {kind} | {model} | {summary} |")
    return rows


def profile_line(column: Mapping[str, Any]) -> str:
    """One short line of a column's profile, for tables."""
    parts: list[str] = []
    if "chars" in column:
        parts.append(f"median {column['chars'].get('median')} chars")
        near = column.get("near_duplicates") or {}
        if column.get("exact_duplicates"):
            parts.append(f"{column['exact_duplicates']} exact duplicates")
        if near.get("fraction"):
            parts.append(f"{100 * near['fraction']:.1f}% near duplicates (sampled)")
    if column.get("parses"):
        rate = column["parses"].get("rate")
        parts.append(f"parses {100 * rate:.0f}%" if rate is not None else "parse not checked")
    if column.get("kind") == "judge":
        for name, score in column.get("scores", {}).items():
            mean = score.get("mean")
            parts.append(f"{name} mean {mean:.2f}" if mean is not None else name)
    if column.get("kind") == "validation" and column.get("pass_rate") is not None:
        parts.append(f"pass rate {100 * column['pass_rate']:.1f}%")
    if column.get("kind") == "embedding":
        parts.append(f"dimension {column.get('dimension')}")
    if column.get("kind") == "number":
        parts.append(f"{column.get('min')} to {column.get('max')}, mean {column.get('mean')}")
    if "configured" in column or column.get("kind") == "category":
        distinct = column.get("configured", column).get("distinct")
        parts.append(f"{distinct} distinct values")
    if column.get("nulls"):
        parts.append(f"{column['nulls']} nulls")
    return "; ".join(str(p) for p in parts).replace("|", "\\|")


def _models_section(config: Mapping[str, Any] | None) -> list[str]:
    models = (config or {}).get("models") or []
    if not models:
        return []
    lines = ["## Models", "", "| alias | model | provider |", "|---|---|---|"]
    lines += [f"| {m.get('alias')} | `{m.get('model')}` | {m.get('provider')} |" for m in models]
    return [*lines, ""]


def _usage_section(usage: Mapping[str, Any] | None) -> list[str]:
    if not usage or not usage.get("by_model"):
        return []
    lines = [
        "## Token usage",
        "",
        "| model | requests | prompt | completion | reasoning |",
        "|---|---|---|---|---|",
    ]
    for alias, u in usage["by_model"].items():
        lines.append(
            f"| {alias} | {u.get('requests', 0):,} | {u.get('prompt_tokens', 0):,} | "
            f"{u.get('completion_tokens', 0):,} | {u.get('reasoning_tokens', 0):,} |"
        )
    return [*lines, ""]


def dataset_card(
    *,
    name: str,
    manifest: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    profile: Mapping[str, Any] | None,
    license_id: str,
    rowloom_version: str,
) -> str:
    """The card's Markdown, with the Hub's YAML metadata block first."""
    rows = int(manifest.get("rows_written") or 0)
    lines = [
        _front_matter(license_id, rows, name),
        f"# {name}",
        "",
        f"A synthetic dataset of {rows:,} rows generated with rowloom {rowloom_version}.",
        "",
        "## Columns",
        "",
        *_column_rows(config, profile),
        "",
        *_models_section(config),
        *_usage_section(manifest.get("token_usage")),
    ]
    dropped = (profile or {}).get("dropped_rows") or {}
    if dropped:
        total = sum(dropped.values())
        reasons = ", ".join(f"{k}: {v}" for k, v in dropped.items())
        lines += ["## Dropped rows", "", f"{total:,} requested rows were dropped ({reasons}).", ""]
    lines += ["## Licence", "", f"`{license_id}`", ""]
    return "\n".join(lines)
