"""Dispatch throughput of AsyncTaskScheduler on local cells (no model calls).

    .venv/bin/python scripts/dispatch_throughput.py --cells 100000

Drives the real tracker, fair queue, task admission and scheduler with a host whose tasks
complete immediately, so the figure is the coordinator's own cost per task. Prints tasks/s
with event sinks off and with an in-memory sink on.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping
from typing import Any

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


class _Local:
    def get_scheduling_metadata(self) -> SchedulingMetadata:
        return SchedulingMetadata.local()


class InstantHost:
    def __init__(self, rows: int) -> None:
        self.rows = rows

    def open_row_group(self, row_group: int) -> int:
        return self.rows

    async def run_task(self, task: Task) -> None:
        return None

    async def checkpoint_row_group(self, row_group: int, dropped: Mapping[int, str]) -> int:
        return self.rows

    def drop_row(self, row_group: int, row_index: int, reason: str) -> None:
        pass

    def discard_row_group(self, row_group: int) -> None:
        pass


async def run(cells: int, rows: int, columns: int, events: bool) -> tuple[float, int]:
    nodes = [ColumnNode(f"c{i}", (f"c{i - 1}",) if i else (), "cell") for i in range(columns)]
    resolver = TaskSchedulingResolver()
    for node in nodes:
        resolver.resolve(node.name, _Local())
    clock = SystemClock()
    sink: InMemoryEventSink[Any] | None = InMemoryEventSink() if events else None
    scheduler = AsyncTaskScheduler(
        host=InstantHost(rows),
        tracker=CompletionTracker(nodes, resolver.schedulable),
        queue=FairTaskQueue(),
        admission=TaskAdmissionController(
            TaskAdmissionConfig(64, {LOCAL: 8}, BoundedBorrowPolicyConfig()), clock
        ),
        events=SchedulerEventEmitter(sink, clock.monotonic),
        correlation=RuntimeCorrelationProvider(),
        clock=clock,
        config=SchedulerConfig(max_concurrent_row_groups=3),
        run_id="bench",
    )
    groups = cells // (rows * columns)
    started = time.perf_counter()
    outcome = await scheduler.run(range(groups))
    elapsed = time.perf_counter() - started
    return elapsed, outcome.tasks_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1000, help="rows per row group")
    parser.add_argument("--columns", type=int, default=2, help="chained local cell columns")
    args = parser.parse_args()
    for events in (False, True):
        elapsed, tasks = asyncio.run(run(args.cells, args.rows, args.columns, events))
        print(
            f"events={'on ' if events else 'off'} tasks={tasks} time={elapsed:.2f}s "
            f"throughput={tasks / elapsed:,.0f} tasks/s ({1e6 * elapsed / tasks:.1f} us/task)"
        )


if __name__ == "__main__":
    main()
