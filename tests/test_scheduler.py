"""AsyncTaskScheduler: correctness against the sequential oracle, fault injection, liveness.

Fault tests drive the scheduler with a fake host whose tasks fail, retry, or get cancelled at
random await points, and then check the invariants that matter to users: no lease left, every
task completed or counted as dropped with a reason, and no worker before its lease.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rowloom.clock import SystemClock
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.errors import NonRetryableTaskError, RetryableTaskError, RunAbortedError
from rowloom.observability.correlation import RuntimeCorrelationProvider
from rowloom.observability.events import SchedulerAdmissionEvent, SchedulerEventEmitter
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


class _Meta:
    def __init__(self, metadata: SchedulingMetadata) -> None:
        self.metadata = metadata

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        return self.metadata


class FakeHost:
    """Runs tasks by awaiting a few loop turns; faults are drawn from a seeded RNG."""

    def __init__(
        self,
        rows: int,
        *,
        seed: int = 0,
        retryable: float = 0.0,
        non_retryable: float = 0.0,
        programming: float = 0.0,
        max_yields: int = 3,
        fail_batches: bool = True,
    ) -> None:
        self.rows = rows
        self.fail_batches = fail_batches
        self.rng = random.Random(seed)
        self.retryable = retryable
        self.non_retryable = non_retryable
        self.programming = programming
        self.max_yields = max_yields
        self.completed: Counter[Task] = Counter()
        self.checkpoints: dict[int, dict[int, str]] = {}
        self.discarded: list[int] = []
        self.open: set[int] = set()
        self.running = 0
        self.max_running = 0

    def open_row_group(self, row_group: int) -> int:
        self.open.add(row_group)
        return self.rows

    async def run_task(self, task: Task) -> None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            for _ in range(self.rng.randint(0, self.max_yields)):
                await asyncio.sleep(0)
            draw = self.rng.random() if task.task_type == "cell" or self.fail_batches else 1.0
            if draw < self.programming:
                raise ZeroDivisionError("bug in a generator")
            if draw < self.programming + self.non_retryable:
                raise NonRetryableTaskError("bad_cell")
            if draw < self.programming + self.non_retryable + self.retryable:
                raise RetryableTaskError("flaky")
            self.completed[task] += 1
        finally:
            self.running -= 1

    async def checkpoint_row_group(self, row_group: int, dropped: Mapping[int, str]) -> int:
        await asyncio.sleep(0)
        self.checkpoints[row_group] = dict(dropped)
        self.open.discard(row_group)
        return self.rows - len(dropped)

    def drop_row(self, row_group: int, row_index: int, reason: str) -> None:
        pass

    def discard_row_group(self, row_group: int) -> None:
        self.discarded.append(row_group)
        self.open.discard(row_group)


COLUMNS = [
    ColumnNode("seed", (), "batch"),
    ColumnNode("a", ("seed",), "cell"),
    ColumnNode("b", ("a",), "cell"),
    ColumnNode("c", ("seed",), "cell"),
    ColumnNode("summary", ("b", "c"), "batch"),
]
META = {
    "seed": SchedulingMetadata.local(),
    "a": SchedulingMetadata("model", ("model", "p", "m1", "chat"), 4),
    "b": SchedulingMetadata("model", ("model", "p", "m2", "chat"), 2),
    "c": SchedulingMetadata("model", ("model", "p", "m1", "chat"), 4),
    "summary": SchedulingMetadata.local(),
}


def build(
    host: FakeHost,
    *,
    columns: list[ColumnNode] = COLUMNS,
    meta: dict[str, SchedulingMetadata] = META,
    capacity: int = 6,
    max_groups: int = 2,
    salvage: int = 2,
    breaker: float = 1.0,
) -> tuple[AsyncTaskScheduler, TaskAdmissionController, InMemoryEventSink[Any]]:
    resolver = TaskSchedulingResolver()
    for node in columns:
        resolver.resolve(node.name, _Meta(meta[node.name]))
    sink: InMemoryEventSink[Any] = InMemoryEventSink()
    clock = SystemClock()
    admission = TaskAdmissionController(
        TaskAdmissionConfig(capacity, {LOCAL: 2}, BoundedBorrowPolicyConfig()), clock
    )
    scheduler = AsyncTaskScheduler(
        host=host,
        tracker=CompletionTracker(columns, resolver.schedulable),
        queue=FairTaskQueue(),
        admission=admission,
        events=SchedulerEventEmitter(sink, clock.monotonic),
        correlation=RuntimeCorrelationProvider(),
        clock=clock,
        config=SchedulerConfig(max_groups, salvage, breaker, 50),
        run_id="test",
    )
    return scheduler, admission, sink


def assert_no_leases(admission: TaskAdmissionController) -> None:
    view = admission.view()
    assert admission.active_leases == 0
    assert all(v == 0 for v in view.leased.values()), view.leased


def assert_lease_before_worker(events: list[SchedulerAdmissionEvent]) -> None:
    """Invariant 1 from the event stream: every worker_spawned follows its lease."""
    leased: set[str] = set()
    released: Counter[str] = Counter()
    spawned = 0
    for e in events:
        if e.event_kind == "task_lease_acquired":
            assert e.task_lease_id is not None
            leased.add(e.task_lease_id)
        elif e.event_kind == "worker_spawned":
            spawned += 1
            assert e.task_lease_id in leased, "worker spawned before its lease"
        elif e.event_kind == "task_lease_released":
            assert e.task_lease_id is not None
            released[e.task_lease_id] += 1
    assert all(n == 1 for n in released.values()), "a lease was released twice"
    assert set(released) == leased, "a lease was never released"
    assert spawned == len(leased) or spawned == len(leased) - sum(
        1 for e in events if e.event_kind in ("stale_selection", "worker_spawn_failed")
    )


async def test_every_task_runs_once_in_dependency_order() -> None:
    host = FakeHost(rows=7)
    scheduler, admission, sink = build(host, max_groups=2)
    outcome = await scheduler.run(range(5))
    assert sorted(outcome.completed_row_groups) == list(range(5))
    expected = (
        {Task("seed", rg, None, "batch") for rg in range(5)}
        | {Task("summary", rg, None, "batch") for rg in range(5)}
        | {Task(c, rg, r, "cell") for c in "abc" for rg in range(5) for r in range(7)}
    )
    assert set(host.completed) == expected
    assert all(n == 1 for n in host.completed.values())
    assert_no_leases(admission)
    assert_lease_before_worker(sink.events)
    assert outcome.max_row_groups_in_flight <= 2
    assert host.max_running <= 6


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    retryable=st.floats(0, 0.3),
    non_retryable=st.floats(0, 0.2),
    capacity=st.integers(1, 8),
    max_groups=st.integers(1, 3),
)
def test_faults_leave_no_lease_and_account_for_every_row(
    seed: int, retryable: float, non_retryable: float, capacity: int, max_groups: int
) -> None:
    host = FakeHost(rows=5, seed=seed, retryable=retryable, non_retryable=non_retryable)
    scheduler, admission, sink = build(host, capacity=capacity, max_groups=max_groups)
    outcome = asyncio.run(scheduler.run(range(4)))
    assert sorted(outcome.completed_row_groups) == [0, 1, 2, 3]
    assert_no_leases(admission)
    assert_lease_before_worker(sink.events)
    for rg, dropped in host.checkpoints.items():
        for row in range(5):
            cells = [Task(c, rg, row, "cell") for c in "abc"]
            complete = all(host.completed[t] == 1 for t in cells)
            # a row is either fully generated or dropped with a reason, never silently lost
            assert complete or row in dropped, (rg, row)
            if row in dropped:
                assert dropped[row] in ("bad_cell", "flaky")
    assert sum(outcome.dropped_rows.values()) == sum(len(d) for d in host.checkpoints.values())
    kinds = Counter(e.event_kind for e in sink.events)
    if kinds["retry_deferred"]:
        assert kinds["salvage_redispatched"] + kinds["non_retryable_dropped"] > 0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cancel_after=st.integers(0, 60))
def test_cancellation_at_any_point_releases_every_lease(seed: int, cancel_after: int) -> None:
    host = FakeHost(rows=6, seed=seed, retryable=0.1)

    async def main() -> tuple[TaskAdmissionController, list[Any], Any]:
        scheduler, admission, sink = build(host)
        run = asyncio.ensure_future(scheduler.run(range(6)))
        for _ in range(cancel_after):
            await asyncio.sleep(0)
            if run.done():
                break
        run.cancel()
        results = await asyncio.gather(run, return_exceptions=True)
        return admission, sink.events, (results[0], scheduler.outcome)

    admission, events, (result, outcome) = asyncio.run(main())
    assert_no_leases(admission)
    assert_lease_before_worker(events)
    assert host.open == set(), "every unfinished row group is discarded, none left open"
    if not events:
        return  # cancelled before the run started: nothing to account for
    if isinstance(result, asyncio.CancelledError):
        assert outcome.stop_reason == "cancelled"
        assert set(outcome.incomplete_row_groups).isdisjoint(outcome.completed_row_groups)
        assert set(outcome.incomplete_row_groups) | set(outcome.completed_row_groups) == set(
            range(6)
        )
    assert events[-1].event_kind == "scheduler_job_completed"


async def test_programming_error_stops_the_run_with_the_original_exception() -> None:
    host = FakeHost(rows=4, seed=3, programming=0.2)
    scheduler, admission, sink = build(host)
    with pytest.raises(ZeroDivisionError) as info:
        await scheduler.run(range(3))
    assert any("while generating column" in note for note in info.value.__notes__)
    assert_no_leases(admission)
    assert_lease_before_worker(sink.events)


async def test_breaker_stops_a_run_that_fails_everywhere() -> None:
    host = FakeHost(rows=30, seed=1, non_retryable=1.0, fail_batches=False)
    scheduler, admission, _ = build(host, breaker=0.5)
    with pytest.raises(RunAbortedError, match=r"error-rate breaker tripped.*bad_cell"):
        await scheduler.run(range(10))
    assert_no_leases(admission)
    assert len(scheduler.outcome.completed_row_groups) < 10


async def test_retryable_failures_are_salvaged_then_dropped() -> None:
    host = FakeHost(rows=3, seed=0, retryable=1.0)
    scheduler, admission, sink = build(host, salvage=2)
    outcome = await scheduler.run([0])
    # the batch root fails three times (1 + 2 salvage rounds), then the row group is dropped
    assert outcome.dropped_rows == Counter({"flaky": 3})
    kinds = Counter(sink.kinds())
    assert kinds["retry_deferred"] == 2 and kinds["salvage_redispatched"] == 2
    assert_no_leases(admission)


async def test_spawn_failure_releases_the_lease_and_stops() -> None:
    host = FakeHost(rows=2)
    scheduler, admission, sink = build(host)
    calls = 0

    def spawn(coro: Any) -> asyncio.Task[None]:
        nonlocal calls
        calls += 1
        if calls == 3:
            coro.close()
            raise RuntimeError("cannot start a worker")
        return asyncio.ensure_future(coro)

    scheduler._spawn = spawn
    with pytest.raises(RuntimeError, match="cannot start a worker"):
        await scheduler.run(range(2))
    assert "worker_spawn_failed" in sink.kinds()
    assert_no_leases(admission)


async def test_heavy_root_does_not_starve_ready_downstream() -> None:
    """A slow from-scratch root column with many rows must not hold every task slot while a
    ready downstream column waits: under bounded borrow, a downstream task is dispatched
    within one slot's turnover of becoming ready."""
    gate: dict[Task, asyncio.Event] = {}
    four_waiting = asyncio.Event()
    down_done = asyncio.Event()
    release_all = False

    class Host(FakeHost):
        async def run_task(self, task: Task) -> None:
            if task.column == "root" and not release_all:
                event = gate.setdefault(task, asyncio.Event())
                if len(gate) == 4:
                    four_waiting.set()
                await event.wait()
            self.completed[task] += 1
            if task.column == "down":
                down_done.set()

    columns = [ColumnNode("root", (), "cell"), ColumnNode("down", ("root",), "cell")]
    meta = {
        "root": SchedulingMetadata("model", ("model", "p", "slow", "chat"), 1),
        "down": SchedulingMetadata("model", ("model", "p", "fast", "chat"), 1),
    }
    host = Host(rows=40)
    scheduler, admission, _ = build(host, columns=columns, meta=meta, capacity=4, max_groups=1)
    run = asyncio.ensure_future(scheduler.run([0]))
    await four_waiting.wait()  # the root borrows the idle capacity while nothing else is ready
    assert admission.view().leased["submission"] == 4
    # finish one root cell: its downstream cell becomes ready and must take the freed slot
    first = next(iter(gate))
    gate[first].set()
    await down_done.wait()
    downs = [t for t in host.completed if t.column == "down"]
    assert downs == [Task("down", 0, first.row_index, "cell")]
    assert not all(e.is_set() for e in gate.values()), "downstream ran while roots still held"
    release_all = True
    for event in gate.values():
        event.set()
    await run
    assert_no_leases(admission)
    assert len(host.completed) == 80
