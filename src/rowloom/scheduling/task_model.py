"""What a unit of work is: a `Task`.

A `cell` task produces one column value for one row; a `batch` task produces one column for a
whole row group (`row_index` is None). Tasks are plain values: equal tasks are the same work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

TaskType: TypeAlias = Literal["cell", "batch"]


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
