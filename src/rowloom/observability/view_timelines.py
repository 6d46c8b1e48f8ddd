"""Per-execution timelines as columns: one array per `TaskTimeline` field.

The view keeps these columns and builds `TaskTimeline` objects only when asked (a run has
one per task execution); the layer breakdown and the derived waits read the columns.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Final

import numpy as np
import pyarrow as pa

from rowloom.observability.view_columns import BoolArray, FloatArray
from rowloom.observability.view_model import TIMELINE_FIELDS, TaskTimeline

TIME_FIELDS: Final[tuple[str, ...]] = (*TIMELINE_FIELDS, "finished_at")
SUM_FIELDS: Final[tuple[str, ...]] = (
    "queue_blocked_seconds",
    "request_wait_seconds",
    "cooldown_wait_seconds",
    "provider_seconds",
    "backoff_seconds",
)
OBJECT_FIELDS: Final[tuple[str, ...]] = ("task_id", "row_group", "column", "outcome")


class TimelineColumns:
    """The timelines of a run's task executions (in first-seen order) as columns."""

    def __init__(self, ids: pa.Array) -> None:
        self._ids = ids
        self.size = n = len(ids)
        self.floats: dict[str, FloatArray] = {name: np.full(n, np.nan) for name in TIME_FIELDS}
        self.floats.update({name: np.zeros(n) for name in SUM_FIELDS})
        self._objects: dict[str, tuple[pa.Array | pa.ChunkedArray, BoolArray]] = {}
        self.attempts = np.zeros(n, dtype=np.int64)
        self._built: tuple[TaskTimeline, ...] | None = None
        self._index: dict[str, int] | None = None

    def set_objects(self, name: str, values: pa.Array | pa.ChunkedArray, where: BoolArray) -> None:
        """An object field: `values` for the executions in `where` (in order), else None."""
        self._objects[name] = (values, where)

    def objects(self, name: str) -> list[Any]:
        """An object field's values, one per execution."""
        out: list[Any] = [None] * self.size
        if name in self._objects:
            values, where = self._objects[name]
            for i, v in zip(np.flatnonzero(where).tolist(), values.to_pylist(), strict=True):
                out[i] = v
        return out

    @property
    def ids(self) -> list[str]:
        return self._ids.to_pylist()  # type: ignore[no-any-return]

    def timelines(self) -> tuple[TaskTimeline, ...]:
        """One `TaskTimeline` per execution (built once)."""
        if self._built is None:
            times = [_optional(self.floats[name]) for name in TIMELINE_FIELDS]
            columns = [
                self.ids,
                self.objects("task_id"),
                self.objects("row_group"),
                self.objects("column"),
                *times,
                self.attempts.tolist(),
                self.objects("outcome"),
                _optional(self.floats["finished_at"]),
                *(self.floats[name].tolist() for name in SUM_FIELDS),
            ]
            self._built = tuple(itertools.starmap(TaskTimeline, zip(*columns, strict=True)))
        return self._built

    def find(self, task_execution_id: str) -> TaskTimeline | None:
        """One execution's timeline, or None."""
        if self._index is None:
            self._index = {ex: i for i, ex in enumerate(self.ids)}
        i = self._index.get(task_execution_id)
        return None if i is None else self.timelines()[i]

    def waits(self, later: str, earlier: str) -> list[float]:
        """`later - earlier` for every execution that has both steps."""
        a, b = self.floats[later], self.floats[earlier]
        both = ~np.isnan(a) & ~np.isnan(b)
        return (a[both] - b[both]).tolist()  # type: ignore[no-any-return]

    def layer_seconds(self) -> dict[str, float]:
        """The scheduler-side layers' seconds summed over executions (see `LAYERS`)."""
        f = self.floats
        dep, enq, sel = f["dependency_ready_at"], f["ready_enqueued_at"], f["selected_at"]
        readiness = _nansum(np.maximum(0.0, enq - dep))
        queued = np.maximum(0.0, sel - enq)
        blocked = np.minimum(queued, f["queue_blocked_seconds"])
        admission = _nansum(blocked) + _nansum(np.maximum(0.0, f["task_lease_acquired_at"] - sel))
        ends = np.vstack((f["task_lease_released_at"], f["task_completed_at"], f["finished_at"]))
        has_end = ~np.all(np.isnan(ends), axis=0)
        end = np.full(self.size, np.nan)
        end[has_end] = np.nanmax(ends[:, has_end], axis=0)
        inside = sum(f[name] for name in SUM_FIELDS[1:])
        downstream = np.maximum(0.0, end - f["worker_spawned_at"] - inside)
        return {
            "dependency_readiness": readiness,
            "ready_ordering": _nansum(queued - blocked),
            "task_admission": admission,
            "downstream_completion": _nansum(downstream),
        }


def _optional(values: FloatArray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def _nansum(values: FloatArray) -> float:
    return float(np.nansum(values))
