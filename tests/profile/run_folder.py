"""Hand-made run folders with known data, for exact profile and export assertions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


def make_run(
    run_dir: Path,
    data: Mapping[str, Sequence[Any]],
    config_columns: Sequence[Mapping[str, Any]] | None = None,
    *,
    parts: int = 2,
    dropped: Mapping[str, int] | None = None,
) -> Path:
    """Write `data` as `parts` parquet parts plus a manifest (and `config.yaml` when
    `config_columns` is given), the way a finished run folder looks."""
    (run_dir / "data").mkdir(parents=True)
    table = pa.table({name: list(values) for name, values in data.items()})
    n = table.num_rows
    size = -(-n // parts)
    groups: dict[str, Any] = {}
    for g in range(parts):
        chunk = table.slice(g * size, size)
        name = f"part-{g:05d}.parquet"
        pq.write_table(chunk, run_dir / "data" / name)
        groups[str(g)] = {
            "rows": chunk.num_rows,
            "dropped": dict(dropped or {}) if g == 0 else {},
            "part": name,
        }
    manifest = {
        "manifest_version": 1,
        "num_records": n + sum((dropped or {}).values()),
        "buffer_size": size,
        "output_columns": list(data),
        "status": "complete",
        "rows_written": n,
        "row_groups": groups,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if config_columns is not None:
        config = {"columns": [dict(c) for c in config_columns]}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return run_dir
