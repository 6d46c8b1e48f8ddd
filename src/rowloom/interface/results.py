"""Run results: the dataset, where it went, and what happened."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rowloom.builder.outputs import RunOutputs, RunSummary
from rowloom.builder.storage import ErrorSample, RunStorage, decode_json_columns, read_parts
from rowloom.errors import RunFolderError
from rowloom.interface.preview_view import HTML_ROWS, records_html, show_record
from rowloom.profile import read_profile
from rowloom.profile.export import ExportFormat, ExportSpec, export_run
from rowloom.profile.hub import PushResult, push_run

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def output_hash(columns: Mapping[str, Sequence[Any]]) -> str:
    """A hash of generated values and row order (not timing): the engines' equality check."""
    h = hashlib.sha256()
    names = list(columns)
    h.update(json.dumps(names).encode())
    n = len(next(iter(columns.values()))) if columns else 0
    for i in range(n):
        row = [columns[c][i] for c in names]
        h.update(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass
class DatasetResult:
    """A finished (or stopped) `create` run: its folder, data, summary and capacity plan.

    `DatasetResult.open(run_dir)` opens a run folder written earlier.
    """

    run_dir: Path
    summary: RunSummary
    capacity_plan: dict[str, Any] = field(repr=False)
    _next_record: int = field(default=0, init=False, repr=False)

    @classmethod
    def from_outputs(cls, outputs: RunOutputs) -> DatasetResult:
        assert outputs.storage is not None
        return cls(outputs.storage.run_dir, outputs.summary, outputs.capacity_plan)

    @classmethod
    def open(cls, run_dir: str | Path) -> DatasetResult:
        """The run in `run_dir` (a folder `create` wrote); raises `RunFolderError` if none."""
        storage = RunStorage(Path(run_dir))
        manifest = storage.load_manifest()
        if manifest is None:
            raise RunFolderError(f"{run_dir} is not a run folder (it has no manifest.json)")
        saved = _read_json(storage.summary_path)
        summary = RunSummary.from_dict(saved) if saved else RunSummary(Path(run_dir).name, "", 0)
        summary.num_records = manifest.num_records
        summary.rows_written = sum(r.rows for r in manifest.row_groups.values())
        summary.row_groups_done = len(manifest.row_groups)
        summary.status = manifest.status
        summary.stop_reason = manifest.incomplete_reason
        summary.error_samples = manifest.error_samples()
        dropped: dict[str, int] = {}
        for rec in manifest.row_groups.values():
            for reason, n in rec.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
        summary.dropped_rows = dropped
        return cls(Path(run_dir), summary, _read_json(storage.capacity_plan_path) or {})

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def manifest_path(self) -> Path:
        return self.run_dir / "manifest.json"

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def capacity_plan_path(self) -> Path:
        return self.run_dir / "capacity_plan.json"

    @property
    def events_dir(self) -> Path:
        return self.run_dir / "events"

    def part_paths(self) -> list[Path]:
        """The parquet parts of finished row groups, in order."""
        manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return [
            self.data_dir / rec["part"]
            for _, rec in sorted(manifest["row_groups"].items(), key=lambda kv: int(kv[0]))
        ]

    def to_arrow(self) -> pa.Table:
        """All finished rows as an arrow table (structured values as JSON text)."""
        return read_parts(self.part_paths())

    def columns(self) -> dict[str, list[Any]]:
        """All finished rows as Python lists per column (structured values decoded)."""
        return decode_json_columns(self.to_arrow())

    def to_pandas(self) -> pd.DataFrame:
        """All finished rows as a DataFrame (structured values decoded to dicts)."""
        import pandas as pd

        return pd.DataFrame(self.columns())

    def output_hash(self) -> str:
        """See `output_hash`."""
        return output_hash(self.columns())

    def _parts_with_rows(self) -> list[tuple[Path, int]]:
        manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        groups = sorted(manifest["row_groups"].items(), key=lambda kv: int(kv[0]))
        return [(self.data_dir / rec["part"], int(rec["rows"])) for _, rec in groups]

    def head(self, n: int = 10) -> dict[str, list[Any]]:
        """The first `n` rows, reading only the parts that hold them."""
        parts: list[Path] = []
        rows = 0
        for part, count in self._parts_with_rows():
            if rows >= n:
                break
            parts.append(part)
            rows += count
        return decode_json_columns(read_parts(parts).slice(0, n)) if parts else {}

    def record(self, index: int) -> dict[str, Any]:
        """Row `index` (0-based), reading only the part that holds it."""
        start = 0
        for part, count in self._parts_with_rows():
            if start <= index < start + count:
                values = decode_json_columns(read_parts([part]).slice(index - start, 1))
                return {c: v[0] for c, v in values.items()}
            start += count
        raise IndexError(f"record {index} is out of range: the dataset has {start} rows")

    @property
    def profile(self) -> dict[str, Any] | None:
        """The run's dataset profile (`profile.json`), if it was written."""
        return read_profile(self.run_dir)

    def export(
        self,
        path: str | Path,
        format: ExportFormat = "jsonl",
        *,
        columns: Sequence[str] | None = None,
        side_columns: bool = True,
        max_rows_per_file: int | None = None,
        overwrite: bool = False,
    ) -> list[Path]:
        """Write the dataset as JSONL, CSV or parquet (streamed; sharded when
        `max_rows_per_file` is set); returns the files written."""
        spec = ExportSpec(
            self.run_dir,
            Path(path),
            format,
            columns=columns,
            side_columns=side_columns,
            max_rows_per_file=max_rows_per_file,
            overwrite=overwrite,
        )
        return export_run(spec)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        token: str | None = None,
        license_id: str = "other",
    ) -> PushResult:
        """Upload the dataset with a generated card to a Hugging Face dataset repo."""
        return push_run(self.run_dir, repo_id, private=private, token=token, license_id=license_id)

    def display_sample_record(self, index: int | None = None) -> None:
        """Show one record as a card (HTML in a notebook); with no index, the next one."""
        i = self._next_record if index is None else index
        show_record(self.record(i), f"record {i} of {len(self)}")
        self._next_record = (i + 1) % max(1, len(self))

    def _repr_html_(self) -> str:
        head = f"<b>{escape(self.run_dir.name)}</b>: {escape(summary_text(self.summary))}"
        return f"<div>{head}{records_html(self.head(HTML_ROWS), total=len(self))}</div>"

    def processor_names(self) -> list[str]:
        """Processors that wrote an output table (`processors/<name>/`)."""
        folder = self.run_dir / "processors"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def processor_arrow(self, name: str) -> pa.Table:
        """A processor's output table over the finished row groups, as arrow."""
        folder = self.run_dir / "processors" / name
        if not folder.is_dir():
            raise KeyError(f"no output of processor {name!r}; have {self.processor_names()}")
        return read_parts([folder / p.name for p in self.part_paths()])

    def processor_output(self, name: str) -> pd.DataFrame:
        """A processor's output table (e.g. a `schema_transform`) as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(decode_json_columns(self.processor_arrow(name)))

    def __len__(self) -> int:
        return self.summary.rows_written


@dataclass
class PreviewResult:
    """A preview: rows kept in memory (nothing written) and why any row was dropped."""

    summary: RunSummary
    data: dict[str, list[Any]] = field(repr=False)
    capacity_plan: dict[str, Any] = field(repr=False)
    errors: list[ErrorSample] = field(default_factory=list)
    """One entry per dropped row: the column that failed, the row, reason and message."""
    _next_record: int = field(default=0, init=False, repr=False)
    processor_outputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    """Each processor's output rows (e.g. a `schema_transform`), by processor name."""

    @classmethod
    def from_outputs(cls, outputs: RunOutputs) -> PreviewResult:
        data: dict[str, list[Any]] = {c: [] for c in outputs.output_columns}
        for _, values in sorted(outputs.kept.items()):
            for c in outputs.output_columns:
                data[c].extend(values[c])
        errors = [e for _, errs in sorted(outputs.kept_errors.items()) for e in errs]
        processors = dict(outputs.processor_rows)
        return cls(outputs.summary, data, outputs.capacity_plan, errors, processors)

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.data)

    def output_hash(self) -> str:
        return output_hash(self.data)

    def record(self, index: int) -> dict[str, Any]:
        """Row `index` (0-based)."""
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} is out of range: the preview has {len(self)} rows")
        return {c: v[index] for c, v in self.data.items()}

    def display_sample_record(self, index: int | None = None) -> None:
        """Show one record as a card (HTML in a notebook); with no index, the next one."""
        i = self._next_record if index is None else index
        show_record(self.record(i), f"record {i} of {len(self)}")
        self._next_record = (i + 1) % max(1, len(self))

    def _repr_html_(self) -> str:
        head = f"<b>preview</b>: {escape(summary_text(self.summary))}"
        return f"<div>{head}{records_html(self.data)}</div>"

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0


def summary_text(summary: RunSummary) -> str:
    """One line: status, rows written of requested, requests, wall time."""
    return (
        f"{summary.status}, {summary.rows_written} of {summary.num_records} rows, "
        f"{summary.request_attempts} model requests, {summary.wall_seconds:.1f} s"
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
