from __future__ import annotations

import pytest

from rowloom.scheduling.task_model import Task


def test_cell_and_batch_tasks_are_values() -> None:
    assert Task.cell("a", 0, 3) == Task("a", 0, 3, "cell")
    assert Task.batch("s", 2) == Task("s", 2, None, "batch")
    assert len({Task.cell("a", 0, 3), Task.cell("a", 0, 3), Task.batch("a", 0)}) == 2


@pytest.mark.parametrize(
    ("row_index", "task_type"),
    [(None, "cell"), (-1, "cell"), (0, "batch"), (0, "row")],
)
def test_task_rejects_inconsistent_shapes(row_index: int | None, task_type: str) -> None:
    with pytest.raises(ValueError):
        Task("a", 0, row_index, task_type)  # type: ignore[arg-type]


def test_negative_row_group_is_rejected() -> None:
    with pytest.raises(ValueError):
        Task.cell("a", -1, 0)
