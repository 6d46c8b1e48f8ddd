"""`profile.json`: what a run generated, per column and by column type.

`profile_run(run_dir)` streams the run's parquet parts once, record batch by record batch,
feeding each column to the profiler its column type calls for (`profile.columns`), and adds
what the manifest knows: rows requested and written, dropped rows by reason, token usage.
It works for any finished, stopped or resumed run, from the folder alone: the column types
come from the run's `config.yaml` (a plain dict is enough; custom functions are not
imported), or from the data's arrow types when a run has no config file.

Why pyarrow compute (with numpy) rather than DuckDB or Polars: pyarrow is already what the
parts are written with, it streams a dataset by record batch in bounded memory, and its
string kernels (lengths, regex counts, trimming) cover the text statistics; the other two
would add a dependency to every install for the same vectorised work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rowloom.builder.storage import RunStorage, write_atomic
from rowloom.profile.columns import (
    CodeProfiler,
    ColumnProfiler,
    EmbeddingProfiler,
    JudgeProfiler,
    SamplerProfiler,
    StructuredProfiler,
    ValidationProfiler,
)
from rowloom.profile.text import TextProfiler
from rowloom.profile.values import ValueProfiler

PROFILE_VERSION = 1
PROFILE_FILE = "profile.json"
BATCH_ROWS = 65_536


def profiler_for(column: Mapping[str, Any], expected_rows: int) -> ColumnProfiler:
    """The profiler a column's type calls for (`column` is its config as a dict)."""
    kind = column.get("column_type")
    if kind == "sampler":
        return SamplerProfiler(_expected_shares(column))
    if kind == "llm_text":
        return TextProfiler(expected_rows)
    if kind == "llm_code":
        return CodeProfiler(str(column.get("code_lang") or "python"), expected_rows)
    if kind == "llm_structured":
        return StructuredProfiler(column.get("output_format"), expected_rows)
    if kind == "llm_judge":
        return JudgeProfiler([str(s["name"]) for s in column.get("scores", [])])
    if kind == "validation":
        return ValidationProfiler()
    if kind == "embedding":
        return EmbeddingProfiler(expected_rows)
    return ValueProfiler()


def _expected_shares(column: Mapping[str, Any]) -> list[tuple[Any, float]] | None:
    params = column.get("params") or {}
    if column.get("sampler_type") != "category" or column.get("conditional_params"):
        return None
    values = list(params.get("values") or [])
    weights = params.get("weights") or [1.0] * len(values)
    total = float(sum(weights))
    if not values or len(weights) != len(values) or total <= 0:
        return None
    return [(v, float(w) / total) for v, w in zip(values, weights, strict=True)]


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no manifest.json)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _parts(run_dir: Path, manifest: Mapping[str, Any]) -> list[Path]:
    groups = sorted(manifest.get("row_groups", {}).items(), key=lambda kv: int(kv[0]))
    return [run_dir / "data" / rec["part"] for _, rec in groups if rec.get("part")]


def profile_run(run_dir: str | Path, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Profile a run folder's dataset (see the module docstring)."""
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    config = config if config is not None else RunStorage(run_dir).read_saved_config()
    by_name = {c["name"]: c for c in (config or {}).get("columns", []) if "name" in c}
    columns = [str(c) for c in manifest.get("output_columns", [])]
    expected = int(manifest.get("rows_written") or 0)
    profilers: dict[str, ColumnProfiler] = {
        name: profiler_for(by_name.get(name, {}), expected) for name in columns
    }
    rows = 0
    nulls = dict.fromkeys(columns, 0)
    for part in _parts(run_dir, manifest):
        parquet = pq.ParquetFile(part)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present):
            rows += batch.num_rows
            for name in present:
                array = _plain(batch.column(name))
                nulls[name] += array.null_count
                profilers[name].add(array)
    usage = manifest.get("token_usage") or {}
    by_column = usage.get("by_column") or {}
    return {
        "profile_version": PROFILE_VERSION,
        "rows": rows,
        "num_records": manifest.get("num_records"),
        "dropped_rows": _dropped(manifest),
        "token_usage": usage or None,
        "columns": {
            name: {
                "column_type": by_name.get(name, {}).get("column_type"),
                "nulls": nulls[name],
                **profilers[name].as_json(),
                **({"token_usage": by_column[name]} if name in by_column else {}),
            }
            for name in columns
        },
    }


def _plain(array: pa.Array) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks()
    if isinstance(array, pa.DictionaryArray):
        return array.dictionary_decode()
    return array


def _dropped(manifest: Mapping[str, Any]) -> dict[str, int]:
    dropped: dict[str, int] = {}
    for rec in manifest.get("row_groups", {}).values():
        for reason, n in (rec.get("dropped") or {}).items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    return dict(sorted(dropped.items()))


def write_profile(run_dir: str | Path, config: Mapping[str, Any] | None = None) -> Path:
    """Profile a run folder and write `profile.json` into it (atomically)."""
    run_dir = Path(run_dir)
    profile = profile_run(run_dir, config)
    path = run_dir / PROFILE_FILE
    text = json.dumps(profile, indent=1, ensure_ascii=False, default=str)
    write_atomic(path, text.encode("utf-8"))
    return path


def read_profile(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's `profile.json`, or None when it has not been profiled."""
    path = Path(run_dir) / PROFILE_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
