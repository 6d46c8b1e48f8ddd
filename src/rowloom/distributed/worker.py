"""What one Ray worker does with a batch of row groups (no Ray here: the actor wraps it).

A worker runs today's async engine (`DatasetBuilder`) on the row groups it is handed, with its
request admission under the fleet shares its `ShareLink` keeps. It never touches the run's
manifest: `AttemptStorage` writes each finished row group to an attempt file in the run's
`data/` folder (atomically) and keeps the worker's own events, capacity plan and manifest in
`workers/<worker>/batch-<n>/`; the batch returns one `PartResult` per group (id, attempt, path,
rows, checksum) for the driver to commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rowloom.builder.builder import DatasetBuilder
from rowloom.builder.storage import (
    Manifest,
    RowGroupRecord,
    RunStorage,
)
from rowloom.clock import SystemClock
from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RunConfig
from rowloom.distributed.dispatch import PartResult
from rowloom.distributed.link import SendReports, ShareLink

SHARES_ENV = "ROWLOOM_RAY_SHARES"
"""`independent` turns the fleet's shared limits off: every worker runs its own adaptive
limits (a benchmark baseline, not public configuration)."""


def shares_enabled() -> bool:
    """False when `ROWLOOM_RAY_SHARES=independent` asks for the baseline."""
    return os.environ.get(SHARES_ENV, "fleet").strip() != "independent"


class AttemptStorage(RunStorage):
    """A worker's side of the run folder (see the module docstring)."""

    writes_report = False

    def __init__(self, run_dir: Path, worker: str, batch: int) -> None:
        super().__init__(run_dir / "workers" / worker / f"batch-{batch}")
        self.data_dir = run_dir / "data"
        self.media_root = run_dir  # image files go where the dataset's paths point
        self.worker = worker
        self.label = f"{worker}-b{batch}"
        self.results: list[PartResult] = []

    def start(self, manifest: Manifest, config: Mapping[str, Any] | None = None) -> None:
        """A fresh worker manifest for this batch; the run's own folder is left alone."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = manifest
        self._write_manifest()

    def part_path_for(self, row_group: int) -> Path:
        """This batch's attempt file for the group (the driver commits it)."""
        return self.attempt_path(row_group, self.label)

    def part_written(self, row_group: int, path: Path, data: bytes, record: RowGroupRecord) -> None:
        """Note the attempt for the driver: id, attempt, path, rows, checksum."""
        self.results.append(
            PartResult(
                row_group=row_group,
                attempt=self.label,
                worker=self.worker,
                path=str(path),
                rows=record.rows,
                checksum=hashlib.sha256(data).hexdigest(),
                dropped=dict(record.dropped),
                usage=record.usage.as_json(),
                errors=[e.as_json() for e in record.errors],
            )
        )


class FleetWorker:
    """One worker: its share link and the batches it runs (see the module docstring)."""

    def __init__(
        self,
        worker: str,
        config: DatasetConfig,
        run_config: RunConfig,
        num_records: int,
        run_dir: Path,
        send: SendReports,
        keys: Mapping[str, int],
        *,
        shared: bool = True,
        breaks: tuple[int, ...] = (),
    ) -> None:
        self.worker = worker
        self.shared = shared
        self._breaks = breaks
        self._config = config
        self._run_config = run_config
        self._num_records = num_records
        self._run_dir = run_dir
        self.link = ShareLink(worker, send, keys, clock=SystemClock())
        self._link_task: asyncio.Task[None] | None = None

    async def run_batch(self, batch: int, row_groups: list[int]) -> dict[str, Any]:
        """Run these row groups; their attempt results, the batch summary and share changes."""
        if self._link_task is None and self.shared:
            self._link_task = asyncio.ensure_future(self.link.run())
        storage = AttemptStorage(self._run_dir, self.worker, batch)
        builder = DatasetBuilder(
            self._config,
            run_config=self._run_config,
            engine="async",
            on_admission=self.link.attach if self.shared else None,
            storage_factory=lambda _run_dir: storage,
            row_group_breaks=self._breaks,
        )
        try:
            outputs = await builder.build(
                self._num_records,
                run_dir=storage.run_dir,
                name=storage.label,
                row_groups=row_groups,
            )
        finally:
            self.link.poke()  # idle until the next batch: give the shares back now
        history = list(self.link.history.changes)
        self.link.history.changes.clear()
        return {
            "results": storage.results,
            "summary": outputs.summary.to_dict(),
            "shares": history,
            "reports": self.link.history.reports,
        }

    async def close(self) -> None:
        """Stop the share link."""
        if self._link_task is not None:
            self._link_task.cancel()
            await asyncio.gather(self._link_task, return_exceptions=True)
            self._link_task = None
