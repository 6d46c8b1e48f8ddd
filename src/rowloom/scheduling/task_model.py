"""What a unit of work is (`Task`) and what happened to one execution of it (`TaskTrace`).

A `cell` task produces one column value for one row; a `batch` task produces one column for a
whole row group (`row_index` is None). Tasks are plain values: equal tasks are the same work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

TaskType: TypeAlias = Literal["cell", "batch"]

TaskStatus: TypeAlias = Literal[
    "pending",
    "dispatched",
    "running",
    "succeeded",
    "retryable_failed",
    "non_retryable_failed",
    "cancelled",
    "skipped",
]
"""Lifecycle of one execution: `pending -> dispatched -> running -> <terminal>`.

Terminal statuses: `succeeded`, `retryable_failed` (re-enters the frontier as a new execution),
`non_retryable_failed` (its row or row group is dropped), `cancelled`, `skipped` (its row was
dropped before it ran).
"""

TERMINAL_STATUSES: frozenset[TaskStatus] = frozenset(
    {"succeeded", "retryable_failed", "non_retryable_failed", "cancelled", "skipped"}
)


@dataclass(frozen=True, slots=True)
class Task:
    """One column of one row (`cell`) or of a whole row group (`batch`).

    Guarantees: a `cell` task has a non-negative `row_index`; a `batch` task has `row_index`
    None; `row_group` is non-negative.
    """

    column: str
    row_group: int
    row_index: int | None
    task_type: TaskType

    def __post_init__(self) -> None:
        if self.row_group < 0:
            raise ValueError(f"row_group must be >= 0, got {self.row_group}")
        if self.task_type == "cell":
            if self.row_index is None or self.row_index < 0:
                raise ValueError(f"a cell task needs a row_index >= 0, got {self.row_index}")
        elif self.task_type == "batch":
            if self.row_index is not None:
                raise ValueError("a batch task covers a whole row group: row_index must be None")
        else:
            raise ValueError(f"task_type must be 'cell' or 'batch', got {self.task_type!r}")

    @classmethod
    def cell(cls, column: str, row_group: int, row_index: int) -> Task:
        """The task producing `column` for one row."""
        return cls(column, row_group, row_index, "cell")

    @classmethod
    def batch(cls, column: str, row_group: int) -> Task:
        """The task producing `column` for every live row of a row group at once."""
        return cls(column, row_group, None, "batch")


def new_task_execution_id() -> str:
    """A fresh, process-unique id for one execution (attempt) of a task."""
    return uuid.uuid4().hex[:20]


@dataclass(slots=True)
class TaskTrace:
    """Mutable record of one execution of a task, owned by the worker running it.

    Timestamps are monotonic seconds from the scheduler's clock. A retry is a new execution:
    a new `TaskTrace` with a new `task_execution_id` and `attempt + 1`.
    """

    task: Task
    task_execution_id: str
    attempt: int = 1
    dispatched_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    status: TaskStatus = "pending"
    error_reason: str | None = None

    @classmethod
    def new(cls, task: Task, attempt: int = 1) -> TaskTrace:
        """A pending trace with a fresh execution id."""
        return cls(task=task, task_execution_id=new_task_execution_id(), attempt=attempt)

    @property
    def is_terminal(self) -> bool:
        """True once the execution has ended (any terminal status)."""
        return self.status in TERMINAL_STATUSES

    def mark_dispatched(self, at: float) -> None:
        """The task lease exists and a worker is being spawned."""
        self._require_not_terminal()
        self.dispatched_at = at
        self.status = "dispatched"

    def mark_started(self, at: float) -> None:
        """The worker began running the generator."""
        self._require_not_terminal()
        self.started_at = at
        self.status = "running"

    def mark_finished(self, at: float, status: TaskStatus, error_reason: str | None = None) -> None:
        """Record the terminal outcome; a trace ends exactly once."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"{status!r} is not a terminal status")
        self._require_not_terminal()
        self.completed_at = at
        self.status = status
        self.error_reason = error_reason

    def as_json(self) -> dict[str, Any]:
        """This trace as a plain JSON object."""
        return {
            "column": self.task.column,
            "row_group": self.task.row_group,
            "row_index": self.task.row_index,
            "task_type": self.task.task_type,
            "task_execution_id": self.task_execution_id,
            "attempt": self.attempt,
            "dispatched_at": self.dispatched_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "status": self.status,
            "error_reason": self.error_reason,
        }

    def _require_not_terminal(self) -> None:
        if self.status in TERMINAL_STATUSES:
            raise ValueError(f"execution {self.task_execution_id} already ended ({self.status})")
