"""Run folders: atomic parquet parts, the manifest, and resume.

Layout of `<artifact_dir>/<name>/`: `data/part-NNNNN.parquet` (one per checkpointed row group),
`manifest.json`, `capacity_plan.json`, `events/`, `report.html`. A part is written to a hidden
temporary name, fsynced and renamed, so a reader never sees a partial part. The manifest is the
source of truth for what is done; it is replaced atomically after each part.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from rowloom.builder.arrow_values import encode_column, json_array
from rowloom.builder.row_groups import RowGroupPlan
from rowloom.errors import ResumeError, RunFolderError
from rowloom.generators.media import IMAGES_DIR
from rowloom.models.usage import UsageTotals, usage_report

MANIFEST_VERSION = 1
JSON_COLUMNS_KEY = b"rowloom.json_columns"
ResumeMode = Literal[False, True, "if_possible"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rowloom")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to `path` through a hidden temporary file, fsync and rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def encode_table(
    columns: Sequence[str],
    values: Mapping[str, Sequence[Any]],
    types: Mapping[str, pa.DataType | None] | None = None,
) -> pa.Table:
    """An arrow table of the given columns: nested values as structs and lists (of the
    column's declared type when given), JSON text only as a fallback, listed in the schema
    metadata for decoding (see `arrow_values`)."""
    arrays: list[pa.Array] = []
    json_cols: list[str] = []
    for name in columns:
        array, is_json = encode_column(values[name], (types or {}).get(name))
        arrays.append(array)
        if is_json:
            json_cols.append(name)
    schema = pa.schema(
        [pa.field(n, a.type) for n, a in zip(columns, arrays, strict=True)],
        metadata={JSON_COLUMNS_KEY: json.dumps(json_cols).encode()},
    )
    return pa.Table.from_arrays(arrays, schema=schema)


def decode_json_columns(table: pa.Table) -> dict[str, list[Any]]:
    """Table columns as Python lists, JSON-encoded columns parsed back."""
    meta = table.schema.metadata or {}
    json_cols = set(json.loads(meta.get(JSON_COLUMNS_KEY, b"[]")))
    out: dict[str, list[Any]] = {}
    for name in table.column_names:
        values = table.column(name).to_pylist()
        if name in json_cols:
            values = [None if v is None else json.loads(v) for v in values]
        out[name] = values
    return out


MAX_ERROR_SAMPLES = 3
"""Sample errors kept per row group (and shown per run)."""


@dataclass(frozen=True, slots=True)
class ErrorSample:
    """Why one row was dropped: the column that failed, the global row (None: its whole row
    group), the reason code and the message (secrets redacted)."""

    column: str
    row: int | None
    reason: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "row": self.row,
            "reason": self.reason,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorSample:
        row = data.get("row")
        return cls(
            str(data.get("column", "")),
            None if row is None else int(row),
            str(data.get("reason", "")),
            str(data.get("message", "")),
        )

    def __str__(self) -> str:
        where = "its row group" if self.row is None else f"row {self.row}"
        text = f"column {self.column!r}, {where}: {self.reason}"
        return f"{text}: {self.message}" if self.message and self.message != self.reason else text


@dataclass
class RowGroupRecord:
    """What the manifest keeps about one finished row group."""

    rows: int
    dropped: dict[str, int] = field(default_factory=dict)
    part: str = ""
    usage: UsageTotals = field(default_factory=UsageTotals)
    """Tokens spent on this row group, by column and model alias."""
    errors: list[ErrorSample] = field(default_factory=list)
    """Why some of its rows were dropped (at most `MAX_ERROR_SAMPLES`)."""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": self.rows, "dropped": self.dropped, "part": self.part}
        if self.usage:
            out["usage"] = self.usage.as_json()
        if self.errors:
            out["errors"] = [e.as_json() for e in self.errors]
        return out


@dataclass
class Manifest:
    """`manifest.json`: what a run is and which row groups are done."""

    config_fingerprint: str
    num_records: int
    buffer_size: int
    output_columns: list[str]
    rowloom_version: str = field(default_factory=_version)
    status: str = "running"
    row_groups: dict[int, RowGroupRecord] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    incomplete_reason: str | None = None
    discarded_usage: UsageTotals = field(default_factory=UsageTotals)
    """Tokens spent on row groups that were never checkpointed (every session so far)."""
    row_group_breaks: list[int] = field(default_factory=list)
    """Sizes the run had when it was extended with a short last row group (`RowGroupPlan`)."""

    def plan(self) -> RowGroupPlan:
        """The run's row groups."""
        return RowGroupPlan(self.num_records, self.buffer_size, tuple(self.row_group_breaks))

    def token_usage(self) -> UsageTotals:
        """Everything spent on this dataset so far: kept row groups plus discarded work."""
        total = UsageTotals()
        for record in self.row_groups.values():
            total.merge(record.usage)
        total.merge(self.discarded_usage)
        return total

    def as_json(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "rowloom_version": self.rowloom_version,
            "config_fingerprint": self.config_fingerprint,
            "num_records": self.num_records,
            "buffer_size": self.buffer_size,
            "row_group_breaks": list(self.row_group_breaks),
            "output_columns": self.output_columns,
            "status": self.status,
            "incomplete_reason": self.incomplete_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "rows_written": sum(r.rows for r in self.row_groups.values()),
            "row_groups": {str(k): v.as_json() for k, v in sorted(self.row_groups.items())},
            "discarded_usage": self.discarded_usage.as_json(),
            "token_usage": usage_report(self.token_usage(), {}),
        }

    def error_samples(self, limit: int = MAX_ERROR_SAMPLES) -> list[ErrorSample]:
        """The first `limit` sample errors over the finished row groups, in row order."""
        out: list[ErrorSample] = []
        for _, rec in sorted(self.row_groups.items()):
            out.extend(rec.errors[: limit - len(out)])
            if len(out) >= limit:
                break
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        return cls(
            config_fingerprint=data["config_fingerprint"],
            num_records=int(data["num_records"]),
            buffer_size=int(data["buffer_size"]),
            output_columns=list(data["output_columns"]),
            rowloom_version=data.get("rowloom_version", "unknown"),
            status=data.get("status", "running"),
            incomplete_reason=data.get("incomplete_reason"),
            created_at=float(data.get("created_at", 0.0)),
            updated_at=float(data.get("updated_at", 0.0)),
            row_groups={
                int(k): RowGroupRecord(
                    int(v["rows"]),
                    dict(v.get("dropped", {})),
                    v["part"],
                    UsageTotals.from_json(v.get("usage")),
                    [ErrorSample.from_json(e) for e in v.get("errors", [])],
                )
                for k, v in data.get("row_groups", {}).items()
            },
            discarded_usage=UsageTotals.from_json(data.get("discarded_usage")),
            row_group_breaks=[int(b) for b in data.get("row_group_breaks", [])],
        )


class RunStorage:
    """One run folder: parts, manifest, events and reports."""

    writes_report = True
    """False for a folder whose parts live elsewhere (a Ray worker's): no profile or report."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.data_dir = run_dir / "data"
        self.events_dir = run_dir / "events"
        self.processors_dir = run_dir / "processors"
        self.media_root = run_dir
        """The folder the dataset's file paths start from (image columns' `images/`)."""
        self.manifest_path = run_dir / "manifest.json"
        self.capacity_plan_path = run_dir / "capacity_plan.json"
        self.summary_path = run_dir / "summary.json"
        self.config_path = run_dir / "config.yaml"
        self.report_path = run_dir / "report.html"
        self.manifest: Manifest | None = None
        self._lock = threading.Lock()  # parts are written from worker threads
        self._saving: Future[None] | None = None
        """The start's saving of config and manifest (None once it is known to be done)."""

    # --- lifecycle ----------------------------------------------------------------------------

    def start(
        self, manifest: Manifest, config: Mapping[str, Any] | None = None, *, settle: bool = True
    ) -> None:
        """Begin a new run in this folder: clear what an earlier start left (parts, events,
        temporaries; nothing else), save the config and the manifest. `RunFolderError` when
        the folder cannot be written.

        A worker thread saves the two files (each written and fsynced: tens of ms a run's
        first requests need not wait for); with `settle=False` this returns before they are
        on disk. `settle()` waits for them, and so does every later write of the manifest,
        so none is overtaken; a failed save is its `RunFolderError`."""
        with self._writing():
            self._reset()
            self.manifest = manifest
            body = self._manifest_body()
        pool = ThreadPoolExecutor(1, thread_name_prefix="rowloom-run-folder")
        self._saving = pool.submit(self._save_start, config, body)
        pool.shutdown(wait=False)  # the thread ends once the saving is done
        if settle:
            self.settle()

    def _save_start(self, config: Mapping[str, Any] | None, manifest_body: bytes) -> None:
        with self._writing():
            self._save_config(config)
            write_atomic(self.manifest_path, manifest_body)

    def settle(self) -> None:
        """Wait until the start's config and manifest are on disk; `RunFolderError` (every
        time) when saving them failed. Returns at once when there is nothing to wait for."""
        saving = self._saving
        if saving is None:
            return
        saving.result()
        self._saving = None

    def resume(self, manifest: Manifest, config: Mapping[str, Any] | None = None) -> set[int]:
        """Continue the run of `manifest` (read from this folder, possibly extended): return the
        row groups whose parts exist; forget the others (their tokens count as discarded)."""
        with self._writing():
            self.manifest = manifest
            self._clean_temporaries()
            done = {
                rg
                for rg, rec in manifest.row_groups.items()
                if (self.data_dir / rec.part).is_file()
            }
            for rg in set(manifest.row_groups) - done:
                manifest.discarded_usage.merge(manifest.row_groups.pop(rg).usage)
            manifest.status = "running"
            manifest.incomplete_reason = None
            if not self.config_path.is_file():
                self._save_config(config)
            self._write_manifest()
            return done

    def move_aside(self, stamp: str) -> Path:
        """Rename this run folder to `NAME.replaced-<stamp>` (kept whole); return the new path."""
        target = self.run_dir.with_name(f"{self.run_dir.name}.replaced-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.run_dir.with_name(f"{self.run_dir.name}.replaced-{stamp}-{n}")
        with self._writing():
            self.run_dir.rename(target)
        return target

    def read_saved_config(self) -> dict[str, Any] | None:
        """The `config.yaml` this run was started with (None when there is none)."""
        try:
            self.settle()
            data = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, RunFolderError):
            return None
        return data if isinstance(data, dict) else None

    def _save_config(self, config: Mapping[str, Any] | None) -> None:
        text = self._config_text(config)
        if text is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.config_path, text.encode("utf-8"))

    @staticmethod
    def _config_text(config: Mapping[str, Any] | None) -> str | None:
        if config is None:
            return None
        try:
            return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
        except yaml.YAMLError:  # e.g. a DataFrame seed source: nothing to save as text
            return None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise RunFolderError(
                f"cannot write the run folder {self.run_dir}: {exc.strerror or exc}"
            ) from None

    def _reset(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        for p in self.data_dir.iterdir():
            if p.is_file():
                p.unlink()
        self._clean_temporaries()
        if self.events_dir.is_dir():
            for p in self.events_dir.iterdir():
                if p.is_file():
                    p.unlink()
        if self.processors_dir.is_dir():
            for p in self.processors_dir.glob("*/*.parquet"):
                p.unlink()

    def _clean_temporaries(self) -> None:
        """Remove hidden temporaries a killed writer left (parts, manifest, JSON artifacts,
        images)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.data_dir, self.run_dir):
            for p in directory.glob(".*.tmp-*"):
                p.unlink(missing_ok=True)
        for p in self.media_root.glob(f"{IMAGES_DIR}/*/.*.tmp-*"):
            p.unlink(missing_ok=True)
        for p in self.processors_dir.glob("*/.*.tmp-*"):
            p.unlink(missing_ok=True)

    def load_manifest(self) -> Manifest | None:
        """The manifest on disk, or None."""
        try:
            return Manifest.from_json(json.loads(self.manifest_path.read_text(encoding="utf-8")))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ResumeError(f"{self.manifest_path} is unreadable: {exc}") from None

    # --- writing ------------------------------------------------------------------------------

    @staticmethod
    def part_name(row_group: int) -> str:
        return f"part-{row_group:05d}.parquet"

    def write_row_group(
        self,
        row_group: int,
        table: pa.Table,
        dropped: Mapping[str, int],
        usage: UsageTotals | None = None,
        errors: Sequence[ErrorSample] = (),
    ) -> Path:
        """Write one row group's part atomically, then record it in the manifest."""
        assert self.manifest is not None, "open() first"
        self.settle()
        path = self.part_path_for(row_group)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue().to_pybytes()
        write_atomic(path, data)
        record = RowGroupRecord(
            table.num_rows,
            dict(dropped),
            path.name,
            usage or UsageTotals(),
            list(errors[:MAX_ERROR_SAMPLES]),
        )
        with self._lock:
            self.manifest.row_groups[row_group] = record
            self.part_written(row_group, path, data, record)
            self._write_manifest()
        return path

    def part_path_for(self, row_group: int) -> Path:
        """Where `write_row_group` writes a row group (a Ray worker writes an attempt)."""
        return self.data_dir / self.part_name(row_group)

    def part_written(self, row_group: int, path: Path, data: bytes, record: RowGroupRecord) -> None:
        """Called (under the lock) after a part is on disk; a Ray worker notes its attempt."""

    def attempt_path(self, row_group: int, attempt: str) -> Path:
        """Where a Ray worker writes one attempt at a row group: a hidden temporary that
        `commit_part` moves into place, and that a resume removes when it never was."""
        return self.data_dir / f".{self.part_name(row_group)}.tmp-attempt-{attempt}"

    def commit_part(
        self,
        row_group: int,
        attempt: Path,
        rows: int,
        dropped: Mapping[str, int],
        usage: UsageTotals | None = None,
        errors: Sequence[ErrorSample] = (),
    ) -> Path:
        """Move a finished attempt into place (atomic rename) and record it in the manifest."""
        assert self.manifest is not None, "open() first"
        self.settle()
        path = self.data_dir / self.part_name(row_group)
        os.replace(attempt, path)
        _fsync_dir(self.data_dir)
        with self._lock:
            self.manifest.row_groups[row_group] = RowGroupRecord(
                rows,
                dict(dropped),
                path.name,
                usage or UsageTotals(),
                list(errors[:MAX_ERROR_SAMPLES]),
            )
            self._write_manifest()
        return path

    def processor_part_path_for(self, processor: str, row_group: int) -> Path:
        """Where `write_processor_part` writes (a Ray worker writes an attempt)."""
        return self.processors_dir / processor / self.part_name(row_group)

    def commit_processor_part(self, processor: str, row_group: int, attempt: Path) -> Path:
        """Move a Ray worker's attempt at a processor output into place (before the row
        group's own part is committed)."""
        path = self.processors_dir / processor / self.part_name(row_group)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(attempt, path)
        _fsync_dir(path.parent)
        return path

    def commit_media(self, relative: str, staged: Path) -> Path:
        """Move a Ray worker's file of a dataset value (an image column's `images/...`) to
        where the value points, in this run folder."""
        path = self.media_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, path)
        return path

    def write_processor_part(self, processor: str, row_group: int, table: pa.Table) -> Path:
        """Write a processor's output for one row group atomically (before the row group's own
        part, so a row group the manifest records always has its processor outputs)."""
        path = self.processor_part_path_for(processor, row_group)
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        write_atomic(path, sink.getvalue().to_pybytes())
        return path

    def finish(
        self, status: str, reason: str | None = None, discarded: UsageTotals | None = None
    ) -> None:
        """Record the run's end state ("complete" or "incomplete") and the usage spent on row
        groups this session did not checkpoint."""
        assert self.manifest is not None
        self.settle()
        with self._lock:
            if discarded:
                self.manifest.discarded_usage.merge(discarded)
            self.manifest.status = status
            self.manifest.incomplete_reason = reason
            self._write_manifest()

    def _write_manifest(self) -> None:
        body = self._manifest_body()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.manifest_path, body)

    def _manifest_body(self) -> bytes:
        assert self.manifest is not None
        self.manifest.updated_at = time.time()
        return (json.dumps(self.manifest.as_json(), indent=2) + "\n").encode()

    def write_json(self, path: Path, data: Any) -> None:
        """Write a JSON artifact atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())

    # --- reading ------------------------------------------------------------------------------

    def part_paths(self) -> list[Path]:
        """Parts of the finished row groups, in row-group order."""
        manifest = self.manifest or self.load_manifest()
        if manifest is None:
            return []
        return [self.data_dir / rec.part for _, rec in sorted(manifest.row_groups.items())]

    def read_table(self) -> pa.Table:
        """All finished rows as one table (JSON columns still encoded)."""
        return read_parts(self.part_paths())


def read_parts(paths: Iterable[Path]) -> pa.Table:
    """Concatenate parts into one table whose schema unifies theirs (a struct gains the
    fields other parts have); a column stored as JSON text in any part is JSON text in all.
    The JSON-column metadata is the union over parts."""
    tables = [pq.read_table(p) for p in paths]
    if not tables:
        return pa.table({})
    json_cols: set[str] = set()
    for t in tables:
        json_cols |= set(json.loads((t.schema.metadata or {}).get(JSON_COLUMNS_KEY, b"[]")))
    unified = [_as_json(t.replace_schema_metadata(None), json_cols) for t in tables]
    try:
        table = pa.concat_tables(unified, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # kinds no promotion joins: JSON text
        kinds: dict[str, set[pa.DataType]] = {}
        for t in unified:
            for f in t.schema:
                kinds.setdefault(f.name, set()).add(f.type)
        json_cols |= {n for n, k in kinds.items() if len(k - {pa.null()}) > 1}
        unified = [_as_json(t, json_cols) for t in unified]
        table = pa.concat_tables(unified, promote_options="permissive")
    return table.replace_schema_metadata({JSON_COLUMNS_KEY: json.dumps(sorted(json_cols)).encode()})


def _as_json(table: pa.Table, json_cols: set[str]) -> pa.Table:
    """`table` with the listed columns as JSON text (columns already text are kept)."""
    for name in json_cols & set(table.column_names):
        if table.schema.field(name).type == pa.string():
            continue
        index = table.column_names.index(name)
        table = table.set_column(index, name, json_array(table.column(name).to_pylist()))
    return table
