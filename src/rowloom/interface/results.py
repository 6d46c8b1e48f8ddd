"""Run results: the dataset, where it went, and what happened."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rowloom.builder.builder import RunOutputs, RunSummary
from rowloom.builder.storage import ErrorSample, RunStorage, decode_json_columns, read_parts
from rowloom.errors import RunFolderError

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

    @classmethod
    def from_outputs(cls, outputs: RunOutputs) -> PreviewResult:
        data: dict[str, list[Any]] = {c: [] for c in outputs.output_columns}
        for _, values in sorted(outputs.kept.items()):
            for c in outputs.output_columns:
                data[c].extend(values[c])
        errors = [e for _, errs in sorted(outputs.kept_errors.items()) for e in errs]
        return cls(outputs.summary, data, outputs.capacity_plan, errors)

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.data)

    def output_hash(self) -> str:
        return output_hash(self.data)

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
