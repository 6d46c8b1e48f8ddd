"""Builders shared by the scheduling tests: groups, tasks, and a clock."""

from __future__ import annotations

import itertools

from rowloom.scheduling.resources import (
    LOCAL,
    SUBMISSION,
    SchedulableTask,
    SchedulerResourceRequest,
    TaskGroupKey,
    TaskGroupSpec,
    stable_task_id,
)
from rowloom.scheduling.task_model import Task

SUBMIT = SchedulerResourceRequest({SUBMISSION: 1})
SUBMIT_LOCAL = SchedulerResourceRequest({SUBMISSION: 1, LOCAL: 1})

_rows = itertools.count()


def group(name: str, weight: int = 1) -> TaskGroupSpec:
    """A local fairness group for column `name`."""
    return TaskGroupSpec(TaskGroupKey(("local", "default"), (name,)), weight)


def task(
    spec: TaskGroupSpec,
    row: int | None = None,
    request: SchedulerResourceRequest = SUBMIT,
    row_group: int = 0,
) -> SchedulableTask:
    """A cell task of `spec`'s column; a fresh row index unless one is given."""
    column = spec.key.output_columns[0]
    index = next(_rows) if row is None else row
    return SchedulableTask(
        stable_task_id(column, row_group, index, "cell"),
        Task(column, row_group, index, "cell"),
        spec,
        request,
    )


def tasks(
    spec: TaskGroupSpec, n: int, request: SchedulerResourceRequest = SUBMIT
) -> list[SchedulableTask]:
    """`n` fresh tasks of one group."""
    return [task(spec, request=request) for _ in range(n)]
