"""`CorrelatedRuntimeView`: both event streams joined into one timeline per task execution.

It answers which layer limited a run (dependency readiness, ready ordering, task admission,
request admission, provider cooldown, provider execution or downstream completion) and derives
the benchmark metrics. Built at once from each stream's Arrow table (`observability.eventlog`
form) by column operations (`view_build`), from event objects, their JSON dicts, or a run
folder. Per-execution timelines are kept as columns; `TaskTimeline` objects are built on first
access. Pure apart from the `from_run_dir` reader.

Join rules: request events carry the task execution id in `captured_correlation`;
`dependency_ready` and `ready_enqueued` carry only a task id and attach to the next execution
of that task. A task with several request attempts keeps its first wait start, lease and
provider start, its last provider completion and lease release, and an attempt count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from rowloom.observability.eventlog import events_to_table
from rowloom.observability.eventread import read_events
from rowloom.observability.series import StepSeries
from rowloom.observability.view_build import VIEW_COLUMNS, ViewParts, build_view
from rowloom.observability.view_model import (
    LAYERS,
    TIMELINE_FIELDS,
    DerivedMetrics,
    Distribution,
    LayerWaitBreakdown,
    ResourceTimeline,
    TaskTimeline,
)
from rowloom.observability.view_timelines import TimelineColumns

__all__ = [
    "LAYERS",
    "TIMELINE_FIELDS",
    "CorrelatedRuntimeView",
    "DerivedMetrics",
    "Distribution",
    "LayerWaitBreakdown",
    "ResourceTimeline",
    "TaskTimeline",
]


@dataclass(frozen=True, slots=True)
class CorrelatedRuntimeView:
    """Both streams of one run joined per task execution, plus run-level series for reports.

    Guarantees: `timelines` holds one `TaskTimeline` per task execution id seen in either
    stream, in first-seen order (scheduler stream first); `breakdown` sums wait seconds per
    layer over executions and attempts; `sequence_violations` counts events whose sequence did
    not increase in their stream (0 for a well-formed run).
    """

    columns: TimelineColumns = field(repr=False, compare=False)
    breakdown: LayerWaitBreakdown
    resources: Mapping[str, ResourceTimeline]
    origin: float
    first_at: float | None
    last_at: float | None
    job_started_at: float | None
    job_completed_at: float | None
    job_spans: tuple[tuple[float, float | None], ...]
    event_counts: Mapping[str, Mapping[str, int]]
    sequence_violations: Mapping[str, int]
    attempts_by_outcome: Mapping[str, int]
    hidden_scheduler_resource_waiters: int
    ready_idle_gap_seconds: float
    max_ready_idle_gap_seconds: float
    task_lease_seconds: float
    queued_tasks: StepSeries
    task_leases: StepSeries
    rows_written: StepSeries
    limit_changes: tuple[tuple[float, str, str, Any, Any], ...]
    rate_limit_cascades: tuple[tuple[float, str], ...]
    submission_capacity: int | None = None

    # --- construction --------------------------------------------------------------------------

    @classmethod
    def from_tables(
        cls,
        scheduler: pa.Table,
        requests: pa.Table,
        *,
        submission_capacity: int | None = None,
    ) -> CorrelatedRuntimeView:
        """Join two stream tables in the `observability.eventlog` schema."""
        return cls._of(build_view(scheduler, requests), submission_capacity)

    @classmethod
    def from_events(
        cls,
        scheduler_events: Iterable[Any],
        request_events: Iterable[Any],
        *,
        submission_capacity: int | None = None,
    ) -> CorrelatedRuntimeView:
        """Join event objects (anything with `as_json()`) or their JSON dicts."""
        return cls.from_tables(
            events_to_table("scheduler", scheduler_events),
            events_to_table("requests", request_events),
            submission_capacity=submission_capacity,
        )

    @classmethod
    def from_run_dir(
        cls, run_dir: str | Path, *, submission_capacity: int | None = None
    ) -> CorrelatedRuntimeView:
        """Join the recorded streams of a run folder (`events/`).

        Missing streams count as empty; a segment cut short by a killed run gives its complete
        batches. The submission capacity defaults to the one in the folder's
        `capacity_plan.json`.
        """
        run_dir = Path(run_dir)
        if submission_capacity is None:
            submission_capacity = _plan_submission_capacity(run_dir / "capacity_plan.json")
        return cls.from_tables(
            read_events(run_dir, "scheduler", VIEW_COLUMNS["scheduler"]),
            read_events(run_dir, "requests", VIEW_COLUMNS["requests"]),
            submission_capacity=submission_capacity,
        )

    @classmethod
    def _of(cls, p: ViewParts, submission_capacity: int | None) -> CorrelatedRuntimeView:
        layers = p.timelines.layer_seconds()
        layers["request_admission"] = p.layer_request
        layers["provider_cooldown"] = p.layer_cooldown
        layers["provider_execution"] = p.layer_provider
        return cls(
            columns=p.timelines,
            breakdown=LayerWaitBreakdown({layer: layers[layer] for layer in LAYERS}),
            resources=p.resources,
            origin=p.origin,
            first_at=p.first_at,
            last_at=p.last_at,
            job_started_at=p.job_started_at,
            job_completed_at=p.job_completed_at,
            job_spans=tuple(p.job_spans),
            event_counts=p.event_counts,
            sequence_violations=p.sequence_violations,
            attempts_by_outcome=p.attempts_by_outcome,
            hidden_scheduler_resource_waiters=p.hidden_waiters,
            ready_idle_gap_seconds=p.idle_gap_total,
            max_ready_idle_gap_seconds=p.idle_gap_max,
            task_lease_seconds=p.lease_integral,
            queued_tasks=p.queued,
            task_leases=p.leased,
            rows_written=p.rows,
            limit_changes=tuple(p.limit_changes),
            rate_limit_cascades=tuple(p.rate_limit_cascades),
            submission_capacity=submission_capacity,
        )

    # --- answers -------------------------------------------------------------------------------

    @property
    def timelines(self) -> tuple[TaskTimeline, ...]:
        """One `TaskTimeline` per task execution, in first-seen order."""
        return self.columns.timelines()

    def limiting_layer(self) -> str | None:
        """The layer with the most wait seconds (see `LAYERS`), or None for an empty run."""
        return self.breakdown.limiting_layer()

    def timeline(self, task_execution_id: str) -> TaskTimeline | None:
        """One execution's timeline, or None."""
        return self.columns.find(task_execution_id)

    @property
    def wall_seconds(self) -> float:
        """The summed spans of the run's scheduler jobs (a resumed run's attempts, without the
        time between them), else the span of all events."""
        if self.job_spans:
            last = self.last_at if self.last_at is not None else 0.0
            spans = ((s, end if end is not None else last) for s, end in self.job_spans)
            return sum(max(0.0, end - s) for s, end in spans)
        start, end = self.first_at, self.last_at
        return 0.0 if start is None or end is None else max(0.0, end - start)

    def derived_metrics(self, *, submission_capacity: int | None = None) -> DerivedMetrics:
        """The benchmark harness's derived metrics for this run (see `DerivedMetrics`)."""
        capacity = submission_capacity or self.submission_capacity
        wall = self.wall_seconds
        integral = self.task_lease_seconds / capacity if capacity else None
        attempts = sum(self.attempts_by_outcome.values())
        return DerivedMetrics(
            ready_queue_wait=Distribution.of(
                self.columns.waits("selected_at", "ready_enqueued_at")
            ),
            task_admission_wait=Distribution.of(
                self.columns.waits("task_lease_acquired_at", "selected_at")
            ),
            ready_idle_gap_seconds=self.ready_idle_gap_seconds,
            max_ready_idle_gap_seconds=self.max_ready_idle_gap_seconds,
            active_capacity_integral=integral,
            mean_active_capacity=integral / wall if integral is not None and wall > 0 else None,
            hidden_scheduler_resource_waiters=self.hidden_scheduler_resource_waiters,
            request_attempts=attempts,
            request_attempts_by_outcome=dict(sorted(self.attempts_by_outcome.items())),
            rate_limited_fraction=(
                self.attempts_by_outcome.get("rate_limited", 0) / attempts if attempts else 0.0
            ),
            wall_seconds=wall,
        )


def _plan_submission_capacity(path: Path) -> int | None:
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        value = plan["configured"]["submission_capacity"]["value"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) else None
