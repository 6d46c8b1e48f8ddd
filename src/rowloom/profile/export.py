"""Export a run's dataset as JSONL, CSV or parquet, streaming part by part.

Only one record batch is in memory at a time, so a dataset of any size exports in bounded
memory. Parts written by different row groups may differ in type (a column null in one part,
a struct in another, JSON text in runs from before nested storage): the export unifies their
schemas first and casts every batch to it. CSV has no nested types, so struct and list values
are written there as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ExportFormat = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv", "parquet")
SIDE_COLUMN_MARKERS = ("__reasoning_content", "__trace")
JSON_COLUMNS_KEY = b"rowloom.json_columns"
BATCH_ROWS = 16_384


class ExportError(ValueError):
    """A bad export request: unknown format or columns, existing output, not a run folder."""


@dataclass(frozen=True)
class ExportSpec:
    """What to export and where."""

    run_dir: Path
    out: Path
    format: ExportFormat
    columns: Sequence[str] | None = None
    side_columns: bool = True
    max_rows_per_file: int | None = None
    overwrite: bool = False


def is_side_column(name: str) -> bool:
    """Reasoning and trace columns written beside an LLM column."""
    return any(name.endswith(marker) for marker in SIDE_COLUMN_MARKERS)


def _manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise ExportError(f"{run_dir} is not a run folder (no manifest.json)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def part_paths(run_dir: Path) -> list[Path]:
    """The run's finished parts in row-group order."""
    groups = _manifest(run_dir).get("row_groups", {})
    ordered = sorted(groups.items(), key=lambda kv: int(kv[0]))
    return [run_dir / "data" / rec["part"] for _, rec in ordered if rec.get("part")]


def _selected(spec: ExportSpec, available: Sequence[str]) -> list[str]:
    if spec.columns:
        unknown = [c for c in spec.columns if c not in available]
        if unknown:
            raise ExportError(
                f"unknown column(s) {', '.join(unknown)}; the dataset has {', '.join(available)}"
            )
        return list(spec.columns)
    return [c for c in available if spec.side_columns or not is_side_column(c)]


def _unified_schema(parts: Sequence[Path]) -> tuple[pa.Schema, set[str]]:
    schemas = [pq.read_schema(p) for p in parts]
    json_columns: set[str] = set()
    for schema in schemas:
        json_columns |= set(json.loads((schema.metadata or {}).get(JSON_COLUMNS_KEY, b"[]")))
    plain = [s.remove_metadata() for s in schemas]
    return pa.unify_schemas(plain, promote_options="permissive"), json_columns


def _batches(parts: Sequence[Path], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for part in parts:
        parquet = pq.ParquetFile(part)
        names = [f.name for f in schema if f.name in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=names):
            arrays = []
            for field in schema:
                if field.name in batch.schema.names:
                    arrays.append(batch.column(field.name).cast(field.type))
                else:
                    arrays.append(pa.nulls(batch.num_rows, field.type))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def export_run(spec: ExportSpec) -> list[Path]:
    """Write the export; returns the files written (several when sharded)."""
    if spec.format not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, not {spec.format!r}")
    if spec.max_rows_per_file is not None and spec.max_rows_per_file < 1:
        raise ExportError("max_rows_per_file must be at least 1")
    parts = part_paths(spec.run_dir)
    available = [str(c) for c in _manifest(spec.run_dir).get("output_columns", [])]
    columns = _selected(spec, available)
    if parts:
        full, json_columns = _unified_schema(parts)
        schema = pa.schema([full.field(c) if c in full.names else (c, pa.null()) for c in columns])
    else:
        schema, json_columns = pa.schema([(c, pa.null()) for c in columns]), set()
    writer = _ShardedWriter(spec, schema, json_columns & set(columns))
    try:
        for batch in _batches(parts, schema):
            writer.write(batch)
    finally:
        writer.close()
    return writer.paths


class _ShardedWriter:
    """Writes batches to one file, or to numbered shards of at most N rows each."""

    def __init__(self, spec: ExportSpec, schema: pa.Schema, json_columns: set[str]) -> None:
        self._spec = spec
        self._schema = schema
        self._json = json_columns
        self._file: _FormatWriter | None = None
        self._rows_in_file = 0
        self.paths: list[Path] = []
        if spec.max_rows_per_file is None:
            self._open(spec.out)

    def _open(self, path: Path) -> None:
        if path.exists() and not self._spec.overwrite:
            raise ExportError(f"{path} exists; pass --overwrite to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _FormatWriter(path, self._spec.format, self._schema, self._json)
        self._rows_in_file = 0
        self.paths.append(path)

    def _shard_path(self) -> Path:
        out = self._spec.out
        return out.with_name(f"{out.stem}-{len(self.paths):05d}{out.suffix}")

    def write(self, batch: pa.RecordBatch) -> None:
        limit = self._spec.max_rows_per_file
        offset = 0
        while offset < batch.num_rows:
            if limit is not None and (self._file is None or self._rows_in_file >= limit):
                if self._file is not None:
                    self._file.close()
                self._open(self._shard_path())
            assert self._file is not None
            take = batch.num_rows - offset
            if limit is not None:
                take = min(take, limit - self._rows_in_file)
            self._file.write(batch.slice(offset, take))
            self._rows_in_file += take
            offset += take

    def close(self) -> None:
        if self._file is None and not self.paths:
            self._open(self._shard_path() if self._spec.max_rows_per_file else self._spec.out)
        if self._file is not None:
            self._file.close()
            self._file = None


class _FormatWriter:
    """One output file in one format."""

    def __init__(
        self, path: Path, fmt: ExportFormat, schema: pa.Schema, json_columns: set[str]
    ) -> None:
        self._fmt = fmt
        self._json = json_columns
        self._handle: Any = None
        self._writer: Any = None
        if fmt == "jsonl":
            self._handle = path.open("wb")
        elif fmt == "parquet":
            self._writer = pq.ParquetWriter(path, _decoded_schema(schema, json_columns))
        else:
            self._writer = pacsv.CSVWriter(path, _csv_schema(schema))

    def write(self, batch: pa.RecordBatch) -> None:
        if self._fmt == "jsonl":
            for row in batch.to_pylist():
                for name in self._json:
                    if row.get(name) is not None:
                        row[name] = orjson.loads(row[name])
                self._handle.write(orjson.dumps(row, default=str) + b"\n")
        elif self._fmt == "parquet":
            self._writer.write_batch(batch)
        else:
            self._writer.write_batch(_csv_batch(batch))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._writer is not None:
            self._writer.close()


def _decoded_schema(schema: pa.Schema, json_columns: set[str]) -> pa.Schema:
    # parquet keeps JSON-text columns as text; say so in the metadata, as the run's parts do
    if not json_columns:
        return schema
    return schema.with_metadata({JSON_COLUMNS_KEY: json.dumps(sorted(json_columns)).encode()})


def _is_nested(t: pa.DataType) -> bool:
    return bool(pa.types.is_nested(t))


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.string()) if _is_nested(f.type) else f for f in schema])


def _csv_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if _is_nested(field.type):
            text = [None if v is None else orjson.dumps(v).decode() for v in column.to_pylist()]
            arrays.append(pa.array(text, pa.string()))
        else:
            arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=_csv_schema(batch.schema))
