"""`dispatch_throughput`: the coordinator's own cost per task, end to end through the scheduler.

`cells` local cells (row groups of `rows` rows x `columns` chained cell columns, each column
depending on the one before) go through the real `AsyncTaskScheduler`, `CompletionTracker`,
`FairTaskQueue` and `TaskAdmissionController` with a host whose tasks complete at once, so no
model call, generator or storage cost is in the figure: what is left is dependency tracking,
ready ordering, task admission, worker spawning and checkpoint bookkeeping. Each iteration runs
once with event sinks off and once with an in-memory sink on (`events` knob), so the figure
also shows what building the events costs. Unlike `queue_admission_micro` (one data-structure
cycle, timed per operation), this is whole dispatch: tasks per second of wall time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rowloom.bench.machine import Measurement, measure
from rowloom.bench.scenario import (
    Gate,
    IterationContext,
    IterationResult,
    Knob,
    OracleCheck,
    Scenario,
    knob_int,
    knob_str,
    scaled_warmup,
    without_requests,
    without_timeline,
)
from rowloom.clock import SystemClock
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.observability.correlation import RuntimeCorrelationProvider
from rowloom.observability.events import SchedulerEventEmitter
from rowloom.observability.sinks import InMemoryEventSink
from rowloom.scheduler import AsyncTaskScheduler, SchedulerConfig
from rowloom.scheduling import (
    LOCAL,
    BoundedBorrowPolicyConfig,
    ColumnNode,
    CompletionTracker,
    FairTaskQueue,
    Task,
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskSchedulingResolver,
)

SUBMISSION_CAPACITY = 64
LOCAL_SLOTS = 8
EVENT_MODES = ("off", "on")


class _Local:
    def get_scheduling_metadata(self) -> SchedulingMetadata:
        return SchedulingMetadata.local()


class InstantHost:
    """A task host whose row groups hold `rows` rows and whose tasks finish at once."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def open_row_group(self, row_group: int) -> int:
        return self.rows

    async def run_task(self, task: Task) -> None:
        return None

    async def checkpoint_row_group(self, row_group: int, dropped: Mapping[int, str]) -> int:
        return self.rows

    def drop_row(self, row_group: int, row_index: int, reason: str) -> None:
        return None

    def discard_row_group(self, row_group: int) -> None:
        return None


async def dispatch(cells: int, rows: int, columns: int, *, events: bool) -> dict[str, float]:
    """Run `cells` instant cells through the scheduler; tasks run, wall and CPU, leases left."""
    nodes = [ColumnNode(f"c{i}", (f"c{i - 1}",) if i else (), "cell") for i in range(columns)]
    resolver = TaskSchedulingResolver()
    for node in nodes:
        resolver.resolve(node.name, _Local())
    clock = SystemClock()
    sink: InMemoryEventSink[Any] | None = InMemoryEventSink() if events else None
    admission = TaskAdmissionController(
        TaskAdmissionConfig(SUBMISSION_CAPACITY, {LOCAL: LOCAL_SLOTS}, BoundedBorrowPolicyConfig()),
        clock,
    )
    scheduler = AsyncTaskScheduler(
        host=InstantHost(rows),
        tracker=CompletionTracker(nodes, resolver.schedulable),
        queue=FairTaskQueue(),
        admission=admission,
        events=SchedulerEventEmitter(sink, clock.monotonic),
        correlation=RuntimeCorrelationProvider(),
        clock=clock,
        config=SchedulerConfig(max_concurrent_row_groups=3),
        run_id="bench-dispatch",
    )
    groups = max(1, cells // (rows * columns))
    with measure() as m:
        outcome = await scheduler.run(range(groups))
    tasks = outcome.tasks_run
    return {
        "tasks_run": float(tasks),
        "tasks_per_second": tasks / m.wall_time_seconds,
        "us_per_task": 1e6 * m.wall_time_seconds / tasks,
        "cpu_us_per_task": 1e6 * m.cpu_seconds / tasks,
        "wall_seconds": m.wall_time_seconds,
        "cpu_seconds": m.cpu_seconds,
        "peak_rss_bytes": float(m.peak_rss_bytes),
        "events": float(len(sink.events) if sink is not None else 0),
        "active_leases": float(admission.active_leases),
    }


class DispatchThroughput(Scenario):
    """Whole-dispatch tasks/s of the scheduler on instant local cells, events off and on."""

    id = "dispatch_throughput"
    shape = (
        "100k local cells (row groups of 1,000 rows x 2 chained cell columns) through the real "
        "scheduler, tracker, fair queue and task admission; tasks finish at once"
    )
    shows = "tasks/s and us/task of the coordinator itself, event sinks off vs an in-memory sink"
    default_records = 0
    uses_providers = False
    knobs = (
        Knob("cells", 100_000, "cells per run (rounded down to whole row groups)"),
        Knob("rows", 1000, "rows per row group"),
        Knob("columns", 2, "chained local cell columns"),
        Knob("events", ",".join(EVENT_MODES), "event sink modes to run (off, on)", "str"),
    )
    gate = Gate(
        "cpu_us_per_task", 0.10, "dispatch: CPU per task within 10% of baseline (wall is load)"
    )
    headline = (
        "tasks_per_second@*",
        "us_per_task@*",
        "cpu_us_per_task@*",
        "wall_time_seconds",
        "cpu_seconds",
        "peak_rss_bytes",
    )
    compare_metrics = ("tasks_per_second@*", "us_per_task@*")

    def warmup_context(self, ctx: IterationContext) -> IterationContext:
        """A warm-up dispatches a tenth of the cells."""
        return scaled_warmup(ctx, "cells")

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        modes = [m for m in knob_str(ctx.knobs, "events").split(",") if m]
        unknown = set(modes) - set(EVENT_MODES)
        if unknown:
            raise ValueError(f"unknown event modes {sorted(unknown)}; known: off, on")
        metrics: dict[str, float] = {}
        total = Measurement()
        leases = 0.0
        for mode in modes:
            figures = await dispatch(
                knob_int(ctx.knobs, "cells"),
                knob_int(ctx.knobs, "rows"),
                knob_int(ctx.knobs, "columns"),
                events=mode == "on",
            )
            leases += figures.pop("active_leases")
            for name, value in figures.items():
                metrics[f"{name}@events_{mode}"] = value
            total.wall_time_seconds += figures["wall_seconds"]
            total.cpu_seconds += figures["cpu_seconds"]
            total.peak_rss_bytes = max(total.peak_rss_bytes, int(figures["peak_rss_bytes"]))
        metrics["wall_time_seconds"] = total.wall_time_seconds
        metrics["cpu_seconds"] = total.cpu_seconds
        metrics["peak_rss_bytes"] = float(total.peak_rss_bytes)
        return IterationResult(
            measurement=total,
            metrics=metrics,
            details={"submission_capacity": SUBMISSION_CAPACITY, "local_slots": LOCAL_SLOTS},
            final_task_snapshot={"active_leases": int(leases), "leased": {}},
            final_request_snapshot=without_requests("no request admission in this scenario"),
            timeline_sampling=without_timeline("the events, when on, go to an in-memory sink"),
        )

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        return OracleCheck("none", reason="no dataset: the tasks generate no values")
