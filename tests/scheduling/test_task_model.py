from __future__ import annotations

import pytest

from rowloom.scheduling.task_model import Task, TaskTrace


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


def test_trace_records_one_execution_and_ends_once() -> None:
    trace = TaskTrace.new(Task.cell("a", 0, 1), attempt=2)
    assert trace.status == "pending" and trace.attempt == 2
    trace.mark_dispatched(10.0)
    trace.mark_started(10.5)
    trace.mark_finished(12.0, "retryable_failed", "rate_limited")
    assert trace.is_terminal
    assert trace.as_json()["error_reason"] == "rate_limited"
    assert (trace.dispatched_at, trace.started_at, trace.completed_at) == (10.0, 10.5, 12.0)
    with pytest.raises(ValueError):
        trace.mark_finished(13.0, "succeeded")
    with pytest.raises(ValueError):
        trace.mark_started(13.0)


def test_trace_needs_a_terminal_status_to_finish() -> None:
    trace = TaskTrace.new(Task.batch("s", 0))
    with pytest.raises(ValueError):
        trace.mark_finished(1.0, "running")


def test_execution_ids_are_unique() -> None:
    task = Task.cell("a", 0, 0)
    ids = {TaskTrace.new(task).task_execution_id for _ in range(200)}
    assert len(ids) == 200
