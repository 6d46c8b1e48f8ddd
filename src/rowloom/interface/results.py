"""Run results: the dataset, where it went, and what happened."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rowloom.builder.builder import RunOutputs, RunSummary
from rowloom.builder.storage import decode_json_columns, read_parts

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
    """A finished (or stopped) `create` run: its folder, data, summary and capacity plan."""

    run_dir: Path
    summary: RunSummary
    capacity_plan: dict[str, Any]

    @classmethod
    def from_outputs(cls, outputs: RunOutputs) -> DatasetResult:
        assert outputs.storage is not None
        return cls(outputs.storage.run_dir, outputs.summary, outputs.capacity_plan)

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
    """A preview: rows kept in memory, nothing written."""

    summary: RunSummary
    data: dict[str, list[Any]]
    capacity_plan: dict[str, Any]

    @classmethod
    def from_outputs(cls, outputs: RunOutputs) -> PreviewResult:
        data: dict[str, list[Any]] = {c: [] for c in outputs.output_columns}
        for _, values in sorted(outputs.kept.items()):
            for c in outputs.output_columns:
                data[c].extend(values[c])
        return cls(outputs.summary, data, outputs.capacity_plan)

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.data)

    def output_hash(self) -> str:
        return output_hash(self.data)

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0
