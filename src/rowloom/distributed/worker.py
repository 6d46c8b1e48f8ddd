"""What one Ray worker does with the row groups it is handed (no Ray here: the actor wraps it).

A worker wires today's async engine (`DatasetBuilder`) ONCE, when it starts, and keeps it for
the whole run: its scheduler runs fed (`AsyncTaskScheduler.run(fed=True)`), and every batch
the driver hands in is fed into it, so a batch starts at once and the next batch's row groups
fill the current one's tail. Its request admission stays under the fleet shares its
`ShareLink` keeps. The worker never touches the run's manifest: `AttemptStorage` writes each
finished row group to an attempt file in the run's `data/` folder (atomically; its processors'
outputs likewise in `processors/<name>/`; its image files stay in its own folder until the
driver moves them into place with the group) and keeps the
worker's own events, capacity plan and manifest in `workers/<worker>/`; a batch returns one
`PartResult` per group (id, attempt, path, rows, checksum) for the driver to commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from rowloom.builder.builder import DatasetBuilder
from rowloom.builder.storage import (
    ErrorSample,
    Manifest,
    RowGroupRecord,
    RunStorage,
)
from rowloom.builder.wiring import WiredRun
from rowloom.clock import SystemClock
from rowloom.config.columns import ImageColumnConfig
from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RunConfig
from rowloom.distributed.dispatch import PartResult
from rowloom.distributed.link import SendReports, ShareLink
from rowloom.generators.media import IMAGES_DIR
from rowloom.models.usage import UsageTotals
from rowloom.scheduler import AsyncTaskScheduler

SHARES_ENV = "ROWLOOM_RAY_SHARES"
"""`independent` turns the fleet's shared limits off: every worker runs its own adaptive
limits (a benchmark baseline, not public configuration)."""


def shares_enabled() -> bool:
    """False when `ROWLOOM_RAY_SHARES=independent` asks for the baseline."""
    return os.environ.get(SHARES_ENV, "fleet").strip() != "independent"


class AttemptStorage(RunStorage):
    """A worker's side of the run folder (see the module docstring).

    `expect(label, row_groups)` names the attempt of each group of a batch and returns the
    futures its `PartResult`s resolve.
    """

    writes_report = False

    def __init__(self, run_dir: Path, worker: str, file_columns: Sequence[str] = ()) -> None:
        super().__init__(run_dir / "workers" / worker)
        self.data_dir = run_dir / "data"
        # image files stay in the worker's folder until the driver commits their row group:
        # two attempts at a group never write (or discard) each other's files
        self.file_columns = tuple(file_columns)
        self.worker = worker
        self.run_processors_dir = run_dir / "processors"
        self._labels: dict[int, str] = {}
        self._waiting: dict[int, asyncio.Future[PartResult]] = {}
        self._processor_parts: dict[int, dict[str, str]] = {}
        self._media: dict[int, dict[str, str]] = {}

    def start(
        self, manifest: Manifest, config: Mapping[str, Any] | None = None, *, settle: bool = True
    ) -> None:
        """A fresh worker manifest, written at once; the run's own folder is left alone."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = manifest
        self._write_manifest()

    def expect(self, label: str, row_groups: list[int]) -> list[asyncio.Future[PartResult]]:
        """Futures of the attempts `label` makes at `row_groups` (resolved as each is written)."""
        loop = asyncio.get_running_loop()
        futures = []
        for rg in row_groups:
            self._labels[rg] = label
            self._waiting[rg] = future = loop.create_future()
            futures.append(future)
        return futures

    def part_path_for(self, row_group: int) -> Path:
        """The attempt file of the group's batch (the driver commits it)."""
        return self.attempt_path(row_group, self._labels[row_group])

    def processor_part_path_for(self, processor: str, row_group: int) -> Path:
        """The attempt at a processor's output, in the run's `processors/<name>/` (a hidden
        temporary the driver commits with the part, and that a resume removes)."""
        name = f".{self.part_name(row_group)}.tmp-attempt-{self._labels[row_group]}"
        path = self.run_processors_dir / processor / name
        self._processor_parts.setdefault(row_group, {})[processor] = str(path)
        return path

    def write_row_group(
        self,
        row_group: int,
        table: pa.Table,
        dropped: Mapping[str, int],
        usage: UsageTotals | None = None,
        errors: Sequence[ErrorSample] = (),
    ) -> Path:
        """Note the worker's files the group's values point at, then write its attempt."""
        self._media[row_group] = self._files_of(table)
        return super().write_row_group(row_group, table, dropped, usage, errors)

    def _files_of(self, table: pa.Table) -> dict[str, str]:
        """Values of the file columns that are files of this worker: value -> file."""
        files: dict[str, str] = {}
        for column in self.file_columns:
            if column not in table.column_names:
                continue
            for value in table.column(column).to_pylist():
                if isinstance(value, str) and value.startswith(f"{IMAGES_DIR}/"):
                    path = self.media_root / value
                    if ".." not in Path(value).parts and path.is_file():
                        files[value] = str(path)
        return files

    def part_written(self, row_group: int, path: Path, data: bytes, record: RowGroupRecord) -> None:
        """Hand the attempt to its batch: id, attempt, path, rows, checksum, processor
        outputs."""
        result = PartResult(
            row_group=row_group,
            attempt=self._labels.pop(row_group),
            worker=self.worker,
            path=str(path),
            rows=record.rows,
            checksum=hashlib.sha256(data).hexdigest(),
            dropped=dict(record.dropped),
            usage=record.usage.as_json(),
            errors=[e.as_json() for e in record.errors],
            processor_parts=self._processor_parts.pop(row_group, {}),
            media=self._media.pop(row_group, {}),
        )
        future = self._waiting.pop(row_group)
        # written in a thread (the host's checkpoint): resolve on the worker's loop
        future.get_loop().call_soon_threadsafe(_resolve, future, result)


def _resolve(future: asyncio.Future[PartResult], result: PartResult) -> None:
    if not future.done():
        future.set_result(result)


class FleetWorker:
    """One worker: its share link and its one engine (see the module docstring)."""

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
        self._num_records = num_records
        images = [c.name for c in config.columns if isinstance(c, ImageColumnConfig)]
        self._storage = AttemptStorage(run_dir, worker, images)
        self.link = ShareLink(worker, send, keys, clock=SystemClock())
        self._builder = DatasetBuilder(
            config,
            run_config=run_config,
            engine="async",
            on_admission=self.link.attach if shared else None,
            storage_factory=lambda _run_dir: self._storage,
            row_group_breaks=breaks,
        )
        self._run: WiredRun | None = None
        self._engine: asyncio.Task[Any] | None = None
        self._link_task: asyncio.Task[None] | None = None
        self._last_requests: dict[str, Any] = {}
        self._fed = 0

    def start(self) -> None:
        """Wire the engine and start it (idle until fed); start reporting. Idempotent."""
        if self._run is not None:
            return
        run = self._builder.wire(
            self._num_records, run_dir=self._storage.run_dir, name=self.worker, row_groups=[]
        )
        scheduler = run.engine
        assert isinstance(scheduler, AsyncTaskScheduler)
        self._run = run
        if self.shared:
            self._link_task = asyncio.ensure_future(self.link.run())
        run.started_at = time.monotonic()
        self._engine = asyncio.ensure_future(scheduler.run([], fed=True))

    async def run_batch(self, batch: int, row_groups: list[int]) -> dict[str, Any]:
        """Feed these row groups to the engine; their attempt results and share changes."""
        self.start()
        assert self._run is not None and self._engine is not None
        futures = self._storage.expect(f"{self.worker}-b{batch}", row_groups)
        scheduler = self._run.engine
        assert isinstance(scheduler, AsyncTaskScheduler)
        scheduler.feed(row_groups)
        self._fed += len(row_groups)
        results = asyncio.gather(*futures)
        await asyncio.wait({results, self._engine}, return_when=asyncio.FIRST_COMPLETED)
        if not results.done():  # the engine stopped first (aborted, or an error)
            results.cancel()
            self._engine.result()
            raise RuntimeError("the worker's engine stopped before its row groups were written")
        return {
            "results": results.result(),
            "shares": self._take_history(),
            "requests": self._requests(),
        }

    async def close(self) -> dict[str, Any]:
        """Stop the engine (nothing more is fed) and the link; the last share changes.

        The worker's engine finalises: its capacity plan, events and manifest stay in
        `workers/<worker>/`.
        """
        run, engine = self._run, self._engine
        if run is not None and engine is not None:
            scheduler = run.engine
            assert isinstance(scheduler, AsyncTaskScheduler)
            scheduler.close_feed()
            error: BaseException | None = None
            try:
                await engine
            except Exception as exc:  # recorded in the worker's own manifest
                error = exc
            self._requests()
            run.summary.row_groups_total = self._fed  # the worker's share of the run
            await self._builder.finalise(run, error)
            self._run = self._engine = None
        if self._link_task is not None:
            self.link.stop()
            self._link_task.cancel()
            await asyncio.gather(self._link_task, return_exceptions=True)
            self._link_task = None
        return {"shares": self._take_history(), "requests": self._requests()}

    def _requests(self) -> dict[str, Any]:
        """The worker's request counters so far (cumulative: the driver keeps the last)."""
        if self._run is None:
            return self._last_requests
        executor = self._run.requests.executor
        self._last_requests = {
            "attempts": executor.stats.attempts,
            "by_outcome": dict(executor.stats.by_outcome or {}),
            "stragglers_cancelled": executor.stragglers_cancelled,
        }
        return self._last_requests

    def _take_history(self) -> list[dict[str, object]]:
        history = list(self.link.history.changes)
        self.link.history.changes.clear()
        return history
