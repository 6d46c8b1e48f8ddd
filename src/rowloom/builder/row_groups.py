"""Row groups: `buffer_size` rows each, the unit of checkpointing and resume."""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rowloom.generators.base import BatchInput

MAX_DEFAULT_BUFFER_SIZE = 1000
"""The default row-group size of a large run (the reference engine's default)."""
MIN_DEFAULT_BUFFER_SIZE = 50
"""The default row-group size of a small run (a tiny run is one row group)."""
CHECKPOINTS = 10
"""Row groups a run aims for when `buffer_size` is not set."""


def default_buffer_size(num_records: int, concurrency: int) -> int:
    """Rows per row group when the config sets none: about `CHECKPOINTS` checkpoints per run,
    but at least `MIN_DEFAULT_BUFFER_SIZE` rows and `concurrency` rows (the models' summed
    `max_parallel_requests`, so every request slot can be busy), at most
    `MAX_DEFAULT_BUFFER_SIZE`."""
    per_checkpoint = -(-num_records // CHECKPOINTS)
    floor = max(MIN_DEFAULT_BUFFER_SIZE, concurrency)
    return min(MAX_DEFAULT_BUFFER_SIZE, max(per_checkpoint, floor))


@dataclass(frozen=True, slots=True)
class RowGroupPlan:
    """How `num_records` rows split into row groups of `buffer_size`.

    `breaks` are the sizes a run had before it was extended while its last row group was
    short: that row group stays as it was written, and the new rows start new row groups.
    Each stretch between breaks splits into `buffer_size` row groups (the last may be short).
    """

    num_records: int
    buffer_size: int
    breaks: tuple[int, ...] = ()
    _offsets: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if self.num_records < 1:
            raise ValueError("num_records must be at least 1")
        if self.buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        bounds = (0, *self.breaks, self.num_records)
        if any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"breaks must rise strictly between 0 and {self.num_records}")
        starts = (
            start for a, b in itertools.pairwise(bounds) for start in range(a, b, self.buffer_size)
        )
        object.__setattr__(self, "_offsets", (*starts, self.num_records))

    @property
    def count(self) -> int:
        """Number of row groups."""
        return len(self._offsets) - 1

    def size(self, row_group: int) -> int:
        """Rows in one row group (the last of each stretch may be short)."""
        return self._offsets[row_group + 1] - self._offsets[row_group]

    def offset(self, row_group: int) -> int:
        """Global index of the row group's first row."""
        return self._offsets[row_group]

    def extended(self, num_records: int) -> RowGroupPlan:
        """This plan grown to `num_records` rows: every row group so far keeps its rows (a
        short last one becomes a break), new rows go into new row groups."""
        if num_records <= self.num_records:
            raise ValueError("an extension must add rows")
        last = self.count - 1
        breaks = self.breaks
        if self.size(last) < self.buffer_size:
            breaks = (*breaks, self.num_records)
        return RowGroupPlan(num_records, self.buffer_size, breaks)


@dataclass(slots=True)
class RowGroupBuffer:
    """The values of one row group while it is being generated, plus its dropped rows."""

    row_group: int
    offset: int
    size: int
    values: dict[str, list[Any]] = field(default_factory=dict)
    dropped: dict[int, str] = field(default_factory=dict)
    failures: dict[int | None, tuple[str, str, str]] = field(default_factory=dict)
    """The last failure per row (None: the whole row group): column, reason, message."""
    skipped: dict[int, builtins.set[str]] = field(default_factory=dict)
    cells_done: list[int] = field(default_factory=list)
    """Columns finished per row (for progress); a row is finished at `-1`."""

    def column(self, name: str) -> list[Any]:
        """The value list of a column (created on first use)."""
        col = self.values.get(name)
        if col is None:
            col = self.values[name] = [None] * self.size
        return col

    def set(self, name: str, row_index: int, value: Any) -> None:
        """Store one cell."""
        self.column(name)[row_index] = value

    def row(self, row_index: int, columns: Sequence[str]) -> dict[str, Any]:
        """One row's values of `columns`."""
        return {c: self.column(c)[row_index] for c in columns}

    def live_rows(self) -> list[int]:
        """Row indices (within the group) that are not dropped, in order."""
        if not self.dropped:
            return list(range(self.size))
        return [i for i in range(self.size) if i not in self.dropped]

    def batch_input(self, columns: Sequence[str], seed: int, rows: Sequence[int]) -> BatchInput:
        """The upstream values of `rows` (row indices within the group), for a whole-row-group
        task."""
        whole = len(rows) == self.size  # rows are distinct indices of this group, in order
        cols: Mapping[str, list[Any]] = {
            c: list(col) if whole else [col[i] for i in rows]
            for c, col in ((c, self.column(c)) for c in columns)
        }
        return BatchInput(
            seed=seed,
            row_group=self.row_group,
            global_rows=[self.offset + i for i in rows],
            columns=cols,
        )

    def complete(self, rows: Iterable[int], columns: int) -> int:
        """Count one more finished column for `rows`; return how many rows are now finished
        (all `columns` done)."""
        done = self.cells_done or self._start_progress()
        finished = 0
        for row in rows:
            if done[row] >= 0:
                done[row] += 1
                if done[row] >= columns:
                    done[row] = -1
                    finished += 1
        return finished

    def finish(self, rows: Iterable[int]) -> int:
        """Mark `rows` finished (dropped, or written); return how many were not already."""
        done = self.cells_done or self._start_progress()
        finished = 0
        for row in rows:
            if done[row] >= 0:
                done[row] = -1
                finished += 1
        return finished

    def _start_progress(self) -> list[int]:
        self.cells_done = [0] * self.size
        return self.cells_done

    def note_failure(self, row_index: int | None, column: str, reason: str, message: str) -> None:
        """Remember why a task failed for a row (or the whole group), to explain a drop."""
        self.failures[row_index] = (column, reason, message)

    def failure_of(self, row_index: int) -> tuple[str, str, str] | None:
        """The failure noted for a row, else for its whole row group."""
        return self.failures.get(row_index) or self.failures.get(None)

    def skipped_in(self, row_index: int) -> frozenset[str] | builtins.set[str]:
        """Columns skipped so far in one row."""
        return self.skipped.get(row_index) or frozenset()

    def mark_skipped(self, row_index: int, columns: Sequence[str]) -> None:
        """Record that `columns` were skipped in a row (their dependants may skip too)."""
        self.skipped.setdefault(row_index, set()).update(columns)

    def drop(self, row_index: int, reason: str) -> None:
        """Mark a row dropped (first reason wins)."""
        self.dropped.setdefault(row_index, reason)
