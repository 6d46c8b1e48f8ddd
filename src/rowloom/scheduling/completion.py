"""Dependency readiness over a column DAG, per row group: which tasks have all their inputs.

`CompletionTracker` keeps, for every admitted row group, a remaining-dependency counter per
cell and a remaining-row counter per (column, row group), so each call costs time proportional
to what it changes, never a scan of the frontier or of a row group.

Readiness:

- cell task `(C, g, r)`: ready when every upstream column of C is complete for row r (a
  `batch` upstream is complete for r when its batch task for g is complete);
- batch task `(C, g)`: ready when every upstream column of C is complete for every live
  (non-dropped) row of g.

Tasks move `waiting -> ready -> enqueued -> complete`; a ready task is reported by
`ready_frontier()` until `mark_enqueued` acknowledges it. Root tasks (no upstream) become ready
through the same frontier when their row group is admitted. A retry goes back to `ready`
through `requeue`, never straight into the queue. Dropping a row drops every not-yet-complete
cell of that row; batch tasks downstream then run over the remaining rows.

Not thread-safe: the scheduler owns it on one event loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from rowloom.scheduling.resolver import TaskSchedulingResolver
from rowloom.scheduling.resources import SchedulableTask
from rowloom.scheduling.task_model import Task, TaskType

_WAITING = 0
_READY = 1
_ENQUEUED = 2
_COMPLETE = 3
_DROPPED = 4
_STATE_NAMES = ("waiting", "ready", "enqueued", "complete", "dropped")

ALL_ROWS_DROPPED = "all_rows_dropped"
"""Row-group drop reason used when the last live row of a row group is dropped."""


@dataclass(frozen=True, slots=True)
class ColumnNode:
    """One column of the DAG: its upstream columns and its task granularity."""

    name: str
    upstream: tuple[str, ...] = ()
    granularity: TaskType = "cell"

    def __post_init__(self) -> None:
        object.__setattr__(self, "upstream", tuple(dict.fromkeys(self.upstream)))
        if self.granularity not in ("cell", "batch"):
            raise ValueError(f"granularity must be 'cell' or 'batch', got {self.granularity!r}")


class _RowGroup:
    """Mutable readiness state of one row group (internal)."""

    __slots__ = (
        "batch_deps",
        "batch_state",
        "cell_deps",
        "cell_state",
        "drop_reason",
        "dropped_rows",
        "live_rows",
        "num_rows",
        "pending",
        "remaining",
        "row_group",
    )

    def __init__(self, row_group: int, num_rows: int, n_columns: int) -> None:
        self.row_group = row_group
        self.num_rows = num_rows
        self.live_rows = num_rows
        self.cell_state: list[bytearray] = [bytearray()] * n_columns
        self.cell_deps: list[list[int]] = [[]] * n_columns
        self.remaining: list[int] = [0] * n_columns
        self.batch_state: list[int] = [_WAITING] * n_columns
        self.batch_deps: list[int] = [0] * n_columns
        self.pending = 0
        self.dropped_rows: dict[int, str] = {}
        self.drop_reason: str | None = None


class CompletionTracker:
    """Frontier-based readiness for row groups over a column DAG.

    `columns` must be in topological order (every upstream named earlier). `to_schedulable`
    turns a `Task` into its `SchedulableTask`: a callable, or a `TaskSchedulingResolver`
    (its `schedulable` method is used).
    Every mutating call returns the tasks it made ready (for `dependency_ready` events); the
    same tasks are also reported by `ready_frontier()` until acknowledged.
    """

    def __init__(
        self,
        columns: Sequence[ColumnNode],
        to_schedulable: Callable[[Task], SchedulableTask] | TaskSchedulingResolver,
    ) -> None:
        index: dict[str, int] = {}
        for ci, node in enumerate(columns):
            if node.name in index:
                raise ValueError(f"duplicate column {node.name!r}")
            for up in node.upstream:
                if up == node.name:
                    raise ValueError(f"column {node.name!r} depends on itself")
                if up not in index:
                    raise ValueError(
                        f"column {node.name!r}: upstream {up!r} is unknown or not earlier "
                        "in topological order"
                    )
            index[node.name] = ci
        n = len(columns)
        self._columns = tuple(columns)
        self._index = index
        self._is_batch = [node.granularity == "batch" for node in columns]
        self._n_up = [len(node.upstream) for node in columns]
        down_cells: list[list[int]] = [[] for _ in range(n)]
        down_batches: list[list[int]] = [[] for _ in range(n)]
        for ci, node in enumerate(columns):
            for up in node.upstream:
                (down_batches if self._is_batch[ci] else down_cells)[index[up]].append(ci)
        self._down_cells = [tuple(d) for d in down_cells]
        self._down_batches = [tuple(d) for d in down_batches]
        self._cell_columns = tuple(ci for ci in range(n) if not self._is_batch[ci])
        self._batch_columns = tuple(ci for ci in range(n) if self._is_batch[ci])
        self._to_schedulable = (
            to_schedulable.schedulable
            if isinstance(to_schedulable, TaskSchedulingResolver)
            else to_schedulable
        )
        self._groups: dict[int, _RowGroup] = {}
        self._compacted: set[int] = set()
        self._frontier: dict[str, tuple[tuple[int, int, int], SchedulableTask]] = {}
        self._frontier_cache: tuple[SchedulableTask, ...] | None = ()
        self._dropped_row_counts: Counter[str] = Counter()
        self._dropped_group_counts: Counter[str] = Counter()

    # -- row groups -------------------------------------------------------------------------

    def admit_row_group(self, row_group: int, num_rows: int) -> tuple[SchedulableTask, ...]:
        """Start tracking `num_rows` rows of `row_group`; its root tasks become ready."""
        if row_group in self._groups or row_group in self._compacted:
            raise ValueError(f"row group {row_group} was already admitted")
        if row_group < 0 or num_rows < 1:
            raise ValueError(f"need row_group >= 0 and num_rows >= 1, got {row_group}, {num_rows}")
        rg = _RowGroup(row_group, num_rows, len(self._columns))
        self._groups[row_group] = rg
        newly: list[SchedulableTask] = []
        for ci in range(len(self._columns)):
            n_up = self._n_up[ci]
            if self._is_batch[ci]:
                rg.batch_deps[ci] = n_up
                rg.pending += 1
                if n_up == 0:
                    self._ready_batch(rg, ci, newly)
            else:
                rg.cell_state[ci] = bytearray(num_rows)
                rg.cell_deps[ci] = [n_up] * num_rows
                rg.remaining[ci] = num_rows
                rg.pending += num_rows
                if n_up == 0:
                    for r in range(num_rows):
                        self._ready_cell(rg, ci, r, newly)
        return tuple(newly)

    def drop_row_group(self, row_group: int, reason: str) -> None:
        """Drop every not-yet-complete task of `row_group` (e.g. a batch task failed)."""
        rg = self._groups.get(row_group)
        if rg is None:
            if row_group in self._compacted:
                return
            raise KeyError(f"row group {row_group} is not admitted")
        if rg.drop_reason is not None:
            return
        rg.drop_reason = reason
        rg.pending = 0
        self._dropped_group_counts[reason] += 1
        self._frontier_cache = None

    def is_row_group_complete(self, row_group: int) -> bool:
        """True when no task of `row_group` is waiting, ready or enqueued on a live row.

        Tasks of dropped rows that are still running do not count; their later
        `mark_complete` is ignored.
        """
        if row_group in self._compacted:
            return True
        return self._group(row_group).pending == 0

    def compact_row_group(self, row_group: int) -> None:
        """Forget a complete row group (after its checkpoint); later calls about it are no-ops."""
        rg = self._group(row_group)
        if rg.pending:
            raise ValueError(f"row group {row_group} still has {rg.pending} pending tasks")
        del self._groups[row_group]
        self._compacted.add(row_group)
        self._frontier_cache = None

    # -- frontier handoff -------------------------------------------------------------------

    def ready_frontier(self) -> Sequence[SchedulableTask]:
        """Ready tasks not yet acknowledged, ordered by (row group, column order, row index)."""
        if self._frontier_cache is None:
            live: list[tuple[tuple[int, int, int], SchedulableTask]] = []
            stale: list[str] = []
            for task_id, entry in self._frontier.items():
                if self._state_at(entry[0]) == _READY:
                    live.append(entry)
                else:
                    stale.append(task_id)
            for task_id in stale:
                del self._frontier[task_id]
            live.sort(key=lambda entry: entry[0])
            self._frontier_cache = tuple(item for _, item in live)
        return self._frontier_cache

    def mark_enqueued(self, task_ids: Iterable[str]) -> int:
        """Acknowledge tasks the queue accepted; unknown or already acknowledged ids are ignored.

        Returns how many tasks moved from ready to enqueued.
        """
        moved = 0
        for task_id in task_ids:
            entry = self._frontier.pop(task_id, None)
            if entry is None:
                continue
            self._frontier_cache = None
            key = entry[0]
            if self._state_at(key) == _READY:
                self._set_state(key, _ENQUEUED)
                moved += 1
        return moved

    def requeue(self, task: Task) -> bool:
        """Put an enqueued (dispatched) task back into the frontier for a retry.

        Returns False when its row or row group was dropped (nothing to retry) or it is
        already waiting in the frontier. Call it only after the old lease was released.
        """
        rg = self._live(task.row_group)
        if rg is None:
            return False
        key = self._key(task)
        state = self._state_at(key)
        if state in (_DROPPED, _READY):
            return False
        if state != _ENQUEUED:
            raise ValueError(f"cannot requeue {task}: it is {_STATE_NAMES[state]}")
        self._set_state(key, _READY)
        self._add_to_frontier(key, task)
        return True

    # -- outcomes ---------------------------------------------------------------------------

    def mark_complete(self, task: Task) -> tuple[SchedulableTask, ...]:
        """Record a successful task; returns the tasks this made ready.

        Completing a task of a dropped row, a dropped row group or a compacted row group is a
        no-op. Completing a task that is not enqueued raises ValueError.
        """
        rg = self._live(task.row_group)
        if rg is None:
            return ()
        key = self._key(task)
        state = self._state_at(key)
        if state == _DROPPED:
            return ()
        if state != _ENQUEUED:
            raise ValueError(f"cannot complete {task}: it is {_STATE_NAMES[state]}")
        ci = key[1]
        newly: list[SchedulableTask] = []
        rg.pending -= 1
        if self._is_batch[ci]:
            rg.batch_state[ci] = _COMPLETE
            for d in self._down_cells[ci]:
                states, deps = rg.cell_state[d], rg.cell_deps[d]
                for r in range(rg.num_rows):
                    if states[r] == _WAITING:
                        deps[r] -= 1
                        if deps[r] == 0:
                            self._ready_cell(rg, d, r, newly)
            self._column_done(rg, ci, newly)
        else:
            r = key[2]
            rg.cell_state[ci][r] = _COMPLETE
            for d in self._down_cells[ci]:
                deps = rg.cell_deps[d]
                deps[r] -= 1
                if deps[r] == 0 and rg.cell_state[d][r] == _WAITING:
                    self._ready_cell(rg, d, r, newly)
            rg.remaining[ci] -= 1
            if rg.remaining[ci] == 0:
                self._column_done(rg, ci, newly)
        return tuple(newly)

    def drop_row(self, row_group: int, row_index: int, reason: str) -> tuple[SchedulableTask, ...]:
        """Drop a failed row: every not-yet-complete cell of it is dropped.

        Batch tasks that were waiting only for this row become ready (returned). Dropping the
        last live row drops the row group with reason `all_rows_dropped`.
        """
        rg = self._live(row_group)
        if rg is None or row_index in rg.dropped_rows:
            return ()
        if not 0 <= row_index < rg.num_rows:
            raise IndexError(f"row {row_index} is outside row group {row_group}")
        rg.dropped_rows[row_index] = reason
        rg.live_rows -= 1
        self._dropped_row_counts[reason] += 1
        newly: list[SchedulableTask] = []
        for ci in self._cell_columns:
            states = rg.cell_state[ci]
            state = states[row_index]
            if state in (_COMPLETE, _DROPPED):
                continue
            states[row_index] = _DROPPED
            rg.pending -= 1
            if state == _READY:
                self._frontier_cache = None
            rg.remaining[ci] -= 1
            if rg.remaining[ci] == 0:
                self._column_done(rg, ci, newly)
        if rg.live_rows == 0:
            self.drop_row_group(row_group, ALL_ROWS_DROPPED)
            return ()
        return tuple(newly)

    # -- queries ----------------------------------------------------------------------------

    def is_dropped(self, task: Task) -> bool:
        """True when the task's row or row group was dropped (or its row group compacted)."""
        rg = self._live(task.row_group)
        return rg is None or self._state_at(self._key(task)) == _DROPPED

    def pending_tasks(self, row_group: int) -> int:
        """Tasks of `row_group` on live rows that are waiting, ready or enqueued."""
        if row_group in self._compacted:
            return 0
        return self._group(row_group).pending

    def live_row_indices(self, row_group: int) -> list[int]:
        """Row indices of `row_group` that are not dropped (what a batch task runs over)."""
        rg = self._group(row_group)
        if rg.drop_reason is not None:
            return []
        return [r for r in range(rg.num_rows) if r not in rg.dropped_rows]

    def dropped_rows(self, row_group: int) -> Mapping[int, str]:
        """Dropped rows of `row_group` with their reasons."""
        return MappingProxyType(self._group(row_group).dropped_rows)

    def row_group_drop_reason(self, row_group: int) -> str | None:
        """Why the whole row group was dropped, or None."""
        return self._group(row_group).drop_reason

    def dropped_row_counts(self) -> Mapping[str, int]:
        """Rows dropped so far in this run, by reason (survives compaction)."""
        return dict(self._dropped_row_counts)

    def dropped_row_group_counts(self) -> Mapping[str, int]:
        """Row groups dropped so far in this run, by reason (survives compaction)."""
        return dict(self._dropped_group_counts)

    def row_groups(self) -> tuple[int, ...]:
        """Admitted row groups not yet compacted, ascending."""
        return tuple(sorted(self._groups))

    @property
    def columns(self) -> tuple[ColumnNode, ...]:
        """The column DAG, in topological order."""
        return self._columns

    # -- internals --------------------------------------------------------------------------

    def _group(self, row_group: int) -> _RowGroup:
        try:
            return self._groups[row_group]
        except KeyError:
            raise KeyError(f"row group {row_group} is not admitted (or was compacted)") from None

    def _live(self, row_group: int) -> _RowGroup | None:
        rg = self._groups.get(row_group)
        if rg is None:
            if row_group in self._compacted:
                return None
            raise KeyError(f"row group {row_group} is not admitted")
        return rg if rg.drop_reason is None else None

    def _key(self, task: Task) -> tuple[int, int, int]:
        ci = self._index.get(task.column)
        if ci is None:
            raise KeyError(f"unknown column {task.column!r}")
        if self._is_batch[ci] != (task.task_type == "batch"):
            raise ValueError(f"{task} does not match the granularity of column {task.column!r}")
        row = -1 if task.row_index is None else task.row_index
        if row >= self._groups[task.row_group].num_rows:
            raise IndexError(f"{task} is outside its row group")
        return (task.row_group, ci, row)

    def _state_at(self, key: tuple[int, int, int]) -> int:
        rg = self._groups.get(key[0])
        if rg is None or rg.drop_reason is not None:
            return _DROPPED
        _g, ci, r = key
        return rg.batch_state[ci] if r < 0 else rg.cell_state[ci][r]

    def _set_state(self, key: tuple[int, int, int], state: int) -> None:
        rg = self._groups[key[0]]
        if key[2] < 0:
            rg.batch_state[key[1]] = state
        else:
            rg.cell_state[key[1]][key[2]] = state

    def _ready_cell(self, rg: _RowGroup, ci: int, r: int, newly: list[SchedulableTask]) -> None:
        rg.cell_state[ci][r] = _READY
        newly.append(self._add_to_frontier((rg.row_group, ci, r), None))

    def _ready_batch(self, rg: _RowGroup, ci: int, newly: list[SchedulableTask]) -> None:
        rg.batch_state[ci] = _READY
        newly.append(self._add_to_frontier((rg.row_group, ci, -1), None))

    def _add_to_frontier(self, key: tuple[int, int, int], task: Task | None) -> SchedulableTask:
        if task is None:
            g, ci, r = key
            name = self._columns[ci].name
            task = Task(name, g, None, "batch") if r < 0 else Task(name, g, r, "cell")
        item = self._to_schedulable(task)
        self._frontier[item.task_id] = (key, item)
        self._frontier_cache = None
        return item

    def _column_done(self, rg: _RowGroup, ci: int, newly: list[SchedulableTask]) -> None:
        """Column `ci` is complete for every live row of `rg`: release downstream batches."""
        for b in self._down_batches[ci]:
            rg.batch_deps[b] -= 1
            if rg.batch_deps[b] == 0 and rg.batch_state[b] == _WAITING:
                self._ready_batch(rg, b, newly)
