"""The driver's bookkeeping of row groups over workers (no Ray here).

The driver hands out batches of row groups; a worker writes each finished group as an attempt
file and returns a `PartResult`. The first completion of a group is committed (the driver
alone writes the manifest: `commit_attempt`); any later attempt at the same group is removed
(`remove_attempt`). A batch whose
worker died goes back to the queue for its groups not committed yet, so nothing is lost or
duplicated.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rowloom.builder.row_groups import MAX_DEFAULT_BUFFER_SIZE
from rowloom.builder.storage import ErrorSample, RunStorage
from rowloom.models.usage import UsageTotals


@dataclass(frozen=True, slots=True)
class PartResult:
    """One finished attempt at a row group, as a worker reports it."""

    row_group: int
    attempt: str
    worker: str
    path: str
    rows: int
    checksum: str
    dropped: dict[str, int] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    processor_parts: dict[str, str] = field(default_factory=dict)
    """Each processor's attempt at its output for the group (committed before the part)."""
    media: dict[str, str] = field(default_factory=dict)
    """The attempt's files of the group's values (image columns): the value (a path relative
    to the run folder) -> the file in the worker's folder (moved into place before the part)."""


ROW_GROUPS_PER_WORKER = 4
"""A config without `buffer_size` gets about this many row groups per worker (so every
worker has work, and the last ones finish close together)."""


def fleet_buffer_size(num_records: int, workers: int) -> int:
    """Rows per row group of a Ray run whose config sets no `buffer_size`."""
    per_group = -(-num_records // (ROW_GROUPS_PER_WORKER * max(1, workers)))
    return max(1, min(MAX_DEFAULT_BUFFER_SIZE, per_group))


def commit_attempt(storage: RunStorage, result: PartResult) -> bool:
    """Commit a finished attempt: the files its rows point at, its processors' outputs, then
    its part (the manifest records it last). False, with nothing moved, when the part fails
    its checksum or a file is missing."""
    path = Path(result.path)
    outputs = {name: Path(p) for name, p in result.processor_parts.items()}
    media = {value: Path(p) for value, p in result.media.items()}
    staged = [*outputs.values(), *media.values()]
    if not path.is_file() or file_checksum(path) != result.checksum:
        return False
    if not all(p.is_file() for p in staged):
        return False
    for value, file in media.items():
        storage.commit_media(value, file)
    for name, output in outputs.items():
        storage.commit_processor_part(name, result.row_group, output)
    storage.commit_part(
        result.row_group,
        path,
        result.rows,
        result.dropped,
        UsageTotals.from_json(result.usage),
        [ErrorSample.from_json(e) for e in result.errors],
    )
    return True


def remove_attempt(result: PartResult) -> None:
    """Remove an attempt that is not committed: its part, processor outputs and files."""
    for path in (result.path, *result.processor_parts.values(), *result.media.values()):
        Path(path).unlink(missing_ok=True)


def file_checksum(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(slots=True)
class Batch:
    """Row groups handed to one worker in one call."""

    number: int
    row_groups: list[int]
    worker: str

    def attempt(self, row_group: int) -> str:
        return f"{self.worker}-b{self.number}-rg{row_group}"


class RowGroupDispatcher:
    """Which row groups are queued, running, committed; attempts numbered per dispatch."""

    def __init__(self, pending: Iterable[int], batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("a batch holds at least one row group")
        self._queue: deque[int] = deque(sorted(set(pending)))
        self._batch_size = batch_size
        self._committed: set[int] = set()
        self._running: dict[int, Batch] = {}
        self._numbers = 0
        self.requeued = 0
        self.duplicates = 0

    @property
    def finished(self) -> bool:
        """Nothing queued and nothing running."""
        return not self._queue and not self._running

    @property
    def committed(self) -> frozenset[int]:
        return frozenset(self._committed)

    def next_batch(self, worker: str) -> Batch | None:
        """The next queued row groups for `worker` (None: nothing queued)."""
        groups: list[int] = []
        while self._queue and len(groups) < self._batch_size:
            rg = self._queue.popleft()
            if rg not in self._committed:
                groups.append(rg)
        if not groups:
            return None
        self._numbers += 1
        batch = Batch(self._numbers, groups, worker)
        self._running[batch.number] = batch
        return batch

    def complete(
        self, batch: Batch, results: Iterable[PartResult]
    ) -> tuple[list[PartResult], list[PartResult]]:
        """A batch came back: (first completions to commit, later attempts to remove).

        Row groups of the batch without a result go back to the queue.
        """
        self._running.pop(batch.number, None)
        commit: list[PartResult] = []
        extra: list[PartResult] = []
        seen: set[int] = set()
        for result in results:
            seen.add(result.row_group)
            if result.row_group in self._committed or result.row_group not in batch.row_groups:
                extra.append(result)
                self.duplicates += 1
                continue
            self._committed.add(result.row_group)
            commit.append(result)
        self._requeue(rg for rg in batch.row_groups if rg not in seen)
        return commit, extra

    def reject(self, result: PartResult) -> None:
        """A result that failed its check (missing file, checksum): its group runs again."""
        self._committed.discard(result.row_group)
        self._requeue([result.row_group])

    def fail(self, batch: Batch) -> None:
        """The batch's worker died: every group of it not committed runs again."""
        self._running.pop(batch.number, None)
        self._requeue(batch.row_groups)

    def _requeue(self, groups: Iterable[int]) -> None:
        """Put groups back at the front of the queue, in order (they are the oldest work)."""
        back = [rg for rg in groups if rg not in self._committed and rg not in self._queue]
        self._queue.extendleft(reversed(back))
        self.requeued += len(back)
