"""Every scheduler and request event kind in the spec appears on some path.

Most kinds come from real runs through `Designer` against the simulated provider (failures,
salvage, drops, rate-limit cascades and recovery, cancellation). The rest need faults that a
healthy engine never produces (a denied acquire after an eligible selection, a stale commit, a
failing spawn, a duplicate release) or controller features the run path does not use (queue-wait
timeouts, non-blocking acquire, clamps); those are driven at unit level through the real
scheduler and the real request controller, and are listed in `UNIT_LEVEL_ONLY` so a regression
in the real paths is still caught.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import obs_support as s
import pytest
from tests.models.clients import clients_support
from tests.support.waiting import NotifyingSink, Progress

from rowloom.clock import ManualClock, SystemClock
from rowloom.config.run import StragglerConfig
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestAdmissionError,
    RequestAdmissionItem,
    RequestReleaseOutcome,
    RequestReleaseOutcomeKind,
    RequestResourceKey,
)
from rowloom.models.request_admission.shares import ShareGrant
from rowloom.models.resources import ProviderModelKey
from rowloom.observability.correlation import RuntimeCorrelationProvider
from rowloom.observability.events import (
    REQUEST_EVENT_KINDS,
    SCHEDULER_EVENT_KINDS,
    RequestEventEmitter,
    SchedulerEventEmitter,
)
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
from rowloom.scheduling.task_admission import TaskAdmissionDenied

NO_EMITTER = {"request_pressure_advisory_skipped"}
"""Kinds no code path emits yet (the provider-aware task policy will)."""

UNIT_LEVEL_ONLY = {
    # scheduler faults a healthy engine does not produce
    "admission_denied",
    "stale_selection",
    "worker_spawn_failed",
    "release_diagnostic",
    # needs a queued group over its share while the other queued groups lack a local slot
    "group_capped",
    # controller features the executor does not use (no queue-wait timeout, no try_acquire,
    # no clamp changes, one release per lease)
    "request_wait_timeout",
    "request_acquire_denied",
    "request_effective_cap_changed",
    "request_release_diagnostic",
    # needs a request far beyond its model's p99 (tests/models/clients/test_stragglers.py)
    "model_request_straggler_cancelled",
    # the default AIMD settles below the last 429 ceiling, so a short run may never pass it
    "request_soft_ceiling_recovered",
    "request_fully_recovered",
    # only a Ray worker's controller has fleet shares
    "request_share_changed",
}
"""Kinds that only fault injection or unit-level drives produce reliably today."""

SRC = Path(__file__).parents[2] / "src" / "rowloom"


# --- real runs ----------------------------------------------------------------------------------


async def _real_run_kinds(tmp: Path) -> tuple[set[str], set[str]]:
    s.reset_seen()
    sched: set[str] = set()
    req: set[str] = set()
    cols = [
        {
            "name": "key",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": [f"k{i}" for i in range(10)]},
        },
        {
            "name": "out",
            "column_type": "custom",
            "function": s.flaky_then_ok,
            "required_columns": ["key"],
            "model_aliases": ["writer"],
        },
        {
            "name": "text",
            "column_type": "llm_text",
            "model_alias": "judge",
            "prompt": "Rate {{ key }}.",
        },
    ]
    judge = [
        {"alias": "judge", "model": "sim-judge", "provider": "sim", "max_parallel_requests": 2}
    ]
    failures = await s.create(
        tmp,
        s.sim_config(
            columns=cols,
            extra_models=judge,
            run={"buffer_size": 20, "max_concurrent_row_groups": 2},
        ),
        60,
        "failures",
    )
    assert failures.summary.dropped_rows.get("custom_refused", 0) > 0
    bursts = await s.create(
        tmp,
        s.sim_config(
            capacity=4,
            retry_after_s=0.1,
            latency_ms=5,
            columns=[
                {
                    "name": "b",
                    "column_type": "custom",
                    "function": s.bursts,
                    "model_aliases": ["writer"],
                }
            ],
            run={"request_admission": {"successes_until_increase": 2}},
        ),
        1,
        "bursts",
    )
    for result in (failures, bursts):
        a, b = s.kinds(result.run_dir)
        sched |= a
        req |= b
    sched_c, req_c = await _cancelled_run_kinds(tmp)
    return sched | sched_c, req | req_c


async def _cancelled_run_kinds(tmp: Path) -> tuple[set[str], set[str]]:
    """Cancel a run while request waiters are queued: `cancelled`, `request_wait_cancelled`."""
    from rowloom.builder.outputs import RunMonitor
    from rowloom.interface.designer import Designer

    config = s.sim_config(
        capacity=1,
        latency_ms=200,
        max_parallel=1,
        columns=[
            {
                "name": "slow",
                "column_type": "custom",
                "function": s.slow_forever,
                "model_aliases": ["writer"],
            }
        ],
    )
    monitor = RunMonitor()
    s.reset_started()
    run = asyncio.ensure_future(Designer(tmp).acreate(config, 4, "cancelled", monitor=monitor))
    await s.started_event().wait()
    await s.settle()
    assert monitor.admission is not None and monitor.admission.waiters_total() > 0
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    return s.kinds(tmp / "cancelled")


# --- unit-level drives --------------------------------------------------------------------------


class _Meta:
    def __init__(self, metadata: SchedulingMetadata) -> None:
        self.metadata = metadata

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        return self.metadata


class _Host:
    """Runs each task for a few loop turns."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def open_row_group(self, row_group: int) -> int:
        return self.rows

    async def run_task(self, task: Task) -> None:
        for _ in range(3 if task.task_type == "batch" else 1):
            await asyncio.sleep(0)

    async def checkpoint_row_group(self, row_group: int, dropped: Mapping[int, str]) -> int:
        return self.rows - len(dropped)

    def drop_row(self, row_group: int, row_index: int, reason: str) -> None:
        pass

    def discard_row_group(self, row_group: int) -> None:
        pass


class _FaultyAdmission:
    """The real controller, except: the first acquire is denied and the third release is
    answered by a duplicate release of the same lease (capacity still comes back once)."""

    def __init__(self, inner: TaskAdmissionController) -> None:
        self.inner = inner
        self.denied = False
        self.releases = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def try_acquire(self, item: Any, view: Any) -> Any:
        if not self.denied:
            self.denied = True
            return TaskAdmissionDenied(item, "policy_denied", None, None)
        return self.inner.try_acquire(item, view)

    def release(self, lease: Any) -> Any:
        result = self.inner.release(lease)
        self.releases += 1
        if self.releases == 3:
            return self.inner.release(lease)
        return result


class _StaleOnceQueue(FairTaskQueue):
    """A fair queue whose first commit is stale."""

    stale = False

    def commit(self, selection: Any) -> Any:
        if not self.stale:
            self.stale = True
            return None
        return super().commit(selection)


def _scheduler(
    *, admission: Any, queue: FairTaskQueue, spawn: Any = None
) -> tuple[AsyncTaskScheduler, InMemoryEventSink[Any]]:
    columns = [ColumnNode("loc", (), "batch"), ColumnNode("m", (), "cell")]
    meta = {
        "loc": SchedulingMetadata.local(),
        "m": SchedulingMetadata("model", ("model", "p", "m1", "chat"), 1),
    }
    resolver = TaskSchedulingResolver()
    for node in columns:
        resolver.resolve(node.name, _Meta(meta[node.name]))
    sink: InMemoryEventSink[Any] = InMemoryEventSink()
    clock = SystemClock()
    scheduler = AsyncTaskScheduler(
        host=_Host(30),
        tracker=CompletionTracker(columns, resolver.schedulable),
        queue=queue,
        admission=admission,
        events=SchedulerEventEmitter(sink, clock.monotonic),
        correlation=RuntimeCorrelationProvider(),
        clock=clock,
        config=SchedulerConfig(3, 2, 1.0, 50),
        run_id="unit",
        spawn=spawn,
    )
    return scheduler, sink


def _controller() -> TaskAdmissionController:
    return TaskAdmissionController(
        TaskAdmissionConfig(4, {LOCAL: 1}, BoundedBorrowPolicyConfig()), SystemClock()
    )


async def _scheduler_fault_kinds() -> set[str]:
    found: set[str] = set()
    admission = _FaultyAdmission(_controller())
    scheduler, sink = _scheduler(admission=admission, queue=_StaleOnceQueue())
    await scheduler.run(range(3))
    found |= set(sink.kinds())
    assert admission.inner.active_leases == 0

    _, sink = await _spawn_failure_run()
    return found | set(sink.kinds())


async def _spawn_failure_run() -> tuple[TaskAdmissionController, InMemoryEventSink[Any]]:
    """The second spawn fails: `worker_spawn_failed`, and the run stops with that error."""
    calls = 0

    def failing_spawn(coro: Any) -> asyncio.Task[None]:
        nonlocal calls
        calls += 1
        if calls == 2:
            coro.close()
            raise RuntimeError("no more workers")
        return asyncio.ensure_future(coro)

    controller = _controller()
    scheduler, sink = _scheduler(admission=controller, queue=FairTaskQueue(), spawn=failing_spawn)
    with pytest.raises(RuntimeError, match="no more workers"):
        await scheduler.run(range(1))
    return controller, sink


def test_spawn_failure_leaves_no_task_lease() -> None:
    controller, _ = asyncio.run(_spawn_failure_run())
    assert controller.active_leases == 0


async def _request_controller_kinds() -> set[str]:
    """Non-blocking denial, queue-wait timeout, duplicate release, clamp change, and an AIMD
    recovery past the last 429 ceiling back to the maximum (plain AIMD rule, manual clock)."""
    pm = ProviderModelKey("p", "m")
    resource = RequestResourceKey.of("p", "m", "chat")
    progress = Progress()
    sink = NotifyingSink(progress)
    clock = ManualClock()
    controller = AdaptiveRequestAdmissionController(
        RequestAdmissionConfig(
            static_caps={pm: 8},
            resources=(resource,),
            successes_until_increase=1,
            default_limit_rule="aimd_v1",
        ),
        clock=clock,
        events=RequestEventEmitter(sink, clock.monotonic),
    )

    def item(timeout: float | None = None) -> RequestAdmissionItem:
        return RequestAdmissionItem.for_resource(resource, timeout=timeout)

    ok = RequestReleaseOutcome.of(RequestReleaseOutcomeKind.SUCCESS)
    limited = RequestReleaseOutcome.rate_limited(1.0, status_code=429)
    for width in (8, 6):  # two cascades: 8 -> 6 (ceiling 8), then 6 -> 4 (ceiling 6)
        leases = [controller.acquire_sync(item()) for _ in range(width)]
        controller.release(leases[0], limited)
        for lease in leases[1:]:
            controller.release(lease, ok)
        clock.advance(2.0)
    full = [controller.acquire_sync(item()) for _ in range(4)]
    controller.try_acquire(item())  # denied: at the limit
    waiter = progress.spawn(controller.acquire_async(item(timeout=1.0)))
    await progress.wait_until(lambda: controller.waiters_total() == 1, what="a queued waiter")
    clock.advance(2.0)  # the queue-wait timeout passes
    with pytest.raises(RequestAdmissionError):
        await waiter
    controller.release(full[0], ok)
    controller.release(full[0], ok)  # duplicate
    for lease in full[1:]:
        controller.release(lease, ok)
    for _ in range(8):  # sequential successes: 5, 6, 7 (past the ceiling), 8 (fully recovered)
        controller.release(controller.acquire_sync(item()), ok)
    controller.set_max_limit_clamp(resource, 2)
    key = resource.as_key_str()
    controller.attach_shares({key: 8})
    controller.set_shares({key: ShareGrant(3, 1)})  # a Ray worker's share
    controller.shutdown()
    assert controller.in_flight_total() == 0
    return set(sink.kinds())


async def _executor_kinds() -> set[str]:
    """A straggler: an attempt hanging far beyond its model's p99 is cancelled and retried."""
    clock, executor, _, sink = clients_support.setup(
        {4}, StragglerConfig(min_seconds=2, min_samples=3)
    )
    for _ in range(4):
        await clients_support.drive(clock, clients_support.call(executor))
    return set(sink.kinds())


def _unemitted_kinds() -> set[str]:
    """Kinds whose string appears nowhere in the source outside the kind list (no emitter)."""
    texts = [
        p.read_text(encoding="utf-8")
        for p in SRC.rglob("*.py")
        if p.name != "events.py" and "observability/view" not in str(p)
    ]
    return {
        kind
        for kind in (*SCHEDULER_EVENT_KINDS, *REQUEST_EVENT_KINDS)
        if not any(re.search(rf"[\"']{kind}[\"']", t) for t in texts)
    }


def test_every_event_kind_appears(tmp_path: Path) -> None:
    async def main() -> tuple[set[str], set[str], set[str], set[str]]:
        real_sched, real_req = await _real_run_kinds(tmp_path)
        return (
            real_sched,
            real_req,
            await _scheduler_fault_kinds(),
            (await _request_controller_kinds()) | (await _executor_kinds()),
        )

    real_sched, real_req, unit_sched, unit_req = asyncio.run(main())
    # a kind leaves NO_EMITTER's exemption as soon as some code emits it: then a drive here
    # must produce it too
    exempt = NO_EMITTER & _unemitted_kinds()
    expected_real_sched = set(SCHEDULER_EVENT_KINDS) - UNIT_LEVEL_ONLY - NO_EMITTER
    expected_real_req = set(REQUEST_EVENT_KINDS) - UNIT_LEVEL_ONLY
    assert expected_real_sched - real_sched == set(), "scheduler kinds missing from real runs"
    assert expected_real_req - real_req == set(), "request kinds missing from real runs"
    assert set(SCHEDULER_EVENT_KINDS) - exempt - real_sched - unit_sched == set()
    assert set(REQUEST_EVENT_KINDS) - real_req - unit_req == set()
    assert len(SCHEDULER_EVENT_KINDS) == 27
    assert len(REQUEST_EVENT_KINDS) == 21  # the spec's 19, request_share_changed (Ray workers)
    # and model_request_straggler_cancelled


def test_only_documented_kinds_lack_an_emitter() -> None:
    assert _unemitted_kinds() <= NO_EMITTER
