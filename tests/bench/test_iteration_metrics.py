"""`bench.metrics.iteration_metrics` on a scripted run whose every figure is known in advance.

The run is real code on a ManualClock: the executor and request admission serve twelve chat
calls against a scripted provider (4 at 0 s, 6 at 2 s of which the first two are answered 429
at once and retried, 2 at 12 s; answers take exactly 1 s, the last two 2 s); the scheduler
stream records four tasks, two checkpoints and the job's start (0 s) and end (16 s). The events
go through the engine's own event logs into a run folder, and the harness reads them back
exactly as a benchmark iteration does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.support.waiting import NotifyingSink, Progress, WatchedClock

from rowloom.bench.events import digest_run
from rowloom.bench.execute import RunCapture
from rowloom.bench.machine import Measurement
from rowloom.bench.metrics import MetricContext, RowMap, iteration_metrics
from rowloom.bench.providers import ProviderScript
from rowloom.builder.row_groups import RowGroupPlan
from rowloom.clock import ManualClock, sleep_until
from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ProviderRateLimitError,
)
from rowloom.models.clients.model_request_executor import ModelRequestExecutor, RetryPolicy
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog
from rowloom.observability.correlation import RuntimeCorrelation
from rowloom.observability.eventlog import open_run_logs
from rowloom.observability.events import RequestEventEmitter, SchedulerEventEmitter
from rowloom.observability.view import CorrelatedRuntimeView
from rowloom.provider_wire import TransportPoolLimits

START = 1000.0
# every figure iteration_metrics derives on this run; each has an assertion below
KNOWN = frozenset(
    {
        "active_capacity_integral",
        "build_goodput_ratio",
        "checkpoint_cost_max_seconds",
        "checkpoint_cost_p50_seconds",
        "cpu_per_request_ms",
        "cpu_seconds",
        "downstream_ready_to_lease_max_seconds",
        "downstream_ready_to_lease_p50_seconds",
        "downstream_ready_to_lease_p95_seconds",
        "endpoint_utilization",
        "engine_wall_seconds",
        "first_downstream_dispatch_lag_seconds",
        "first_downstream_dispatch_seconds",
        "first_downstream_ready_seconds",
        "first_request_delay_seconds",
        "goodput_ratio",
        "hidden_scheduler_resource_waiters",
        "last_request_to_return_seconds",
        "leaks",
        "max_ready_idle_gap_seconds",
        "mean_active_capacity",
        "model_requests_started",
        "peak_rss_bytes",
        "physical_limit_rps",
        "provider_requests",
        "rate_limited_fraction",
        "rate_limited_fraction_after_settling",
        "rate_limited_requests",
        "ready_idle_gap_seconds",
        "ready_queue_wait_max_seconds",
        "ready_queue_wait_mean_seconds",
        "ready_queue_wait_p50_seconds",
        "ready_queue_wait_p95_seconds",
        "request_attempts",
        "request_latency_p50_ms",
        "request_latency_p95_ms",
        "request_latency_p95_second_half_ms",
        "request_lease_attempt_mismatch",
        "request_leases",
        "root_over_admission_debt",
        "row_completion_p95_seconds",
        "rows_completed",
        "sequence_violations",
        "settled_limit",
        "successful_requests",
        "successful_requests_per_second",
        "task_admission_wait_max_seconds",
        "task_admission_wait_mean_seconds",
        "task_admission_wait_p50_seconds",
        "task_admission_wait_p95_seconds",
        "time_reversals",
        "time_to_50pct_rows_seconds",
        "time_to_first_row_seconds",
        "time_to_settle_seconds",
        "timeline_monotonic_violations",
        "wall_time_seconds",
    }
)


class Provider:
    """429 at once for the next `refusals` calls; otherwise an answer after `latency` s."""

    def __init__(self, clock: ManualClock, progress: Progress) -> None:
        self.clock = clock
        self.progress = progress
        self.refusals = 0
        self.latency = 1.0
        self.calls = 0
        self.parked = 0

    @property
    def provider_name(self) -> str:
        return "p"

    @property
    def transport_pool_limits(self) -> TransportPoolLimits | None:
        return None

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        if self.refusals:
            self.refusals -= 1
            raise ProviderRateLimitError(
                "slow down", provider="p", status_code=429, retry_after_seconds=0.5
            )
        self.parked += 1
        try:
            await sleep_until(self.clock, self.clock.monotonic() + self.latency)
        finally:
            self.parked -= 1
        return ChatResponse(text="ok")

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class Scheduler:
    """The scheduler stream of four cell tasks (root/child columns x rows 0/1) and two
    checkpoints, emitted through the engine's emitter at scripted ManualClock times."""

    def __init__(self, emitter: SchedulerEventEmitter, clock: ManualClock) -> None:
        self.emitter = emitter
        self.clock = clock

    def task(self, kind: str, task_id: str, column: str, reason: str | None = None) -> None:
        corr = RuntimeCorrelation("run", 0, column, "cell", task_execution_id=f"x-{task_id}")
        self.emitter.emit(
            kind, correlation=corr, task_id=task_id, task_execution_id=f"x-{task_id}", reason=reason
        )

    def at(self, t: float) -> None:
        self.clock.advance(START + t - self.clock.monotonic())


async def scripted_run(run_dir: Path) -> None:
    """Times are seconds after START; every wait is for the state the script expects."""
    progress = Progress()
    clock = WatchedClock(progress, START)
    events = run_dir / "events"
    events.mkdir(parents=True)
    logs = open_run_logs(events)  # the engine's own event files (Arrow segments)
    sched_sink, req_sink = NotifyingSink(progress), NotifyingSink(progress)
    sched = Scheduler(
        SchedulerEventEmitter(sched_sink, clock.monotonic, log=logs["scheduler"]), clock
    )
    catalog = ModelResourceCatalog(
        [ModelConfig(alias="m", model="m", provider="p", max_parallel_requests=16)],
        [ModelProvider(name="p", provider_type="simulated")],
    )
    req = RequestEventEmitter(req_sink, clock.monotonic, log=logs["requests"])
    admission = AdaptiveRequestAdmissionController(
        RequestAdmissionConfig.from_catalog(catalog), clock=clock, events=req
    )
    provider = Provider(clock, progress)
    executor = ModelRequestExecutor(
        resolver=RequestResourceResolver(catalog),
        clients={"p": provider},
        admission=admission,
        events=req,
        clock=clock,
        retry=RetryPolicy(max_rate_limit_retries=5, max_transient_retries=0),
    )

    def chats(n: int) -> list[asyncio.Task[ChatResponse]]:
        messages = [{"role": "user", "content": "x"}]
        return [progress.spawn(executor.execute_chat("m", messages)) for _ in range(n)]

    async def finished(tasks: list[asyncio.Task[ChatResponse]]) -> None:
        await progress.wait_until(lambda: all(t.done() for t in tasks), what="calls answered")
        assert all(t.result().text == "ok" for t in tasks)

    sched.emitter.emit("scheduler_job_started")
    sched.task("ready_enqueued", "r0", "root")
    first = chats(4)  # four calls at 0, each answered after 1 s
    await progress.wait_until(lambda: provider.parked == 4, what="4 calls at the provider")
    sched.at(0.5)
    sched.task("selected", "r0", "root")
    sched.at(1.0)
    sched.task("task_lease_acquired", "r0", "root")
    sched.task("dependency_ready", "c0", "child")
    sched.task("ready_enqueued", "c0", "child")
    await finished(first)
    sched.at(1.2)
    sched.task("ready_enqueued", "r1", "root")
    sched.at(1.5)
    sched.task("selected", "r1", "root")
    sched.task("task_lease_acquired", "r1", "root")
    sched.at(2.0)
    sched.task("selected", "c0", "child")
    # six calls at 2: the first two are refused (429, Retry-After 0.5 s): one cut, a cooldown
    provider.refusals = 2
    second = chats(6)
    await progress.wait_until(
        lambda: admission.waiters_total() == 4 and clock.armed_at(START + 2.5) >= 2,
        what="4 calls queued behind the cooldown, 2 retries waiting out Retry-After",
    )
    sched.at(2.5)
    sched.task("task_lease_acquired", "c0", "child")
    await progress.wait_until(lambda: provider.parked == 6, what="6 calls at the provider")
    sched.at(3.0)
    sched.task("task_completed", "r0", "root")
    sched.task("task_lease_released", "r0", "root", "released")
    sched.at(3.5)
    sched.task("task_completed", "r1", "root")
    sched.task("task_lease_released", "r1", "root", "released")
    await finished(second)
    sched.at(4.0)
    sched.task("task_completed", "c0", "child")
    sched.task("task_lease_released", "c0", "child", "released")
    sched.task("dependency_ready", "c1", "child")
    sched.task("ready_enqueued", "c1", "child")
    sched.at(4.25)
    sched.emitter.emit("row_group_checkpointed", diagnostics={"row_group": 0})
    sched.task("selected", "c1", "child")
    sched.at(4.5)
    sched.task("task_lease_acquired", "c1", "child")
    sched.at(5.0)
    sched.task("task_completed", "c1", "child")
    sched.task("task_lease_released", "c1", "child", "released")
    sched.at(5.5)
    sched.emitter.emit("row_group_checkpointed", diagnostics={"row_group": 1})
    # the second half: two calls of 2 s each at 12
    sched.at(12.0)
    provider.latency = 2.0
    third = chats(2)
    await progress.wait_until(lambda: provider.parked == 2, what="2 calls at the provider")
    sched.at(14.0)
    await finished(third)
    sched.at(16.0)
    sched.emitter.emit("scheduler_job_completed")
    assert admission.in_flight_total() == 0 and admission.waiters_total() == 0
    admission.shutdown()
    for log in logs.values():
        log.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("metrics") / "run"
    asyncio.run(scripted_run(out))
    return out


def capture_of(
    run_dir: Path,
    provider_requests: int = 14,
    task_leases: int = 0,
    waiters: int = 0,
    called_at: float | None = START - 0.5,
    returned_at: float | None = START + 17.0,
) -> RunCapture:
    return RunCapture(
        run_dir=run_dir,
        status="complete",
        stop_reason=None,
        summary={},
        capacity_plan={"configured": {"submission_capacity": {"value": 2}}},
        measurement=Measurement(wall_time_seconds=17.5, cpu_seconds=0.6, peak_rss_bytes=4096),
        final_task_snapshot={"active_leases": task_leases},
        final_request_snapshot={"in_flight_total": 0, "waiters_total": waiters},
        provider_stats={"p": {"requests": provider_requests}},
        output_hash=None,
        called_at=called_at,
        returned_at=returned_at,
    )


ROWS = RowMap(
    {"r0": (0, 0), "c0": (0, 0), "r1": (0, 1), "c1": (0, 1)},
    cell_columns=2,
    batch_columns=0,
    plan=RowGroupPlan(2, 2),
)


def metrics_of(run_dir: Path, ctx: MetricContext, **capture: Any) -> dict[str, float]:
    digest = digest_run(run_dir)
    view = CorrelatedRuntimeView.from_run_dir(run_dir)
    out, _ = iteration_metrics(view, digest, capture_of(run_dir, **capture), ctx)
    assert not set(out) - KNOWN, f"a new metric needs a test here: {sorted(set(out) - KNOWN)}"
    return out


SCRIPT = ProviderScript("p", capacity=2, latency_ms=1000.0)  # physical limit: 2 requests/s
CTX = MetricContext(scripts=[SCRIPT], root_columns=("root",), row_map=ROWS)


def test_request_figures_follow_from_the_known_run(run_dir: Path) -> None:
    """12 successes (4 at 0-1 s, 6 at 2.5-3.5 s, 2 at 12-14 s), 2 refusals at 2 s, job 0-16 s."""
    out = metrics_of(run_dir, CTX)
    assert out["engine_wall_seconds"] == pytest.approx(16.0)
    assert out["successful_requests"] == 12
    assert out["rate_limited_requests"] == 2
    assert out["request_attempts"] == 14
    assert out["rate_limited_fraction"] == pytest.approx(2 / 14)
    assert out["successful_requests_per_second"] == pytest.approx(12 / 16)
    assert out["physical_limit_rps"] == pytest.approx(2.0)
    assert out["goodput_ratio"] == pytest.approx(12 / 16 / 2.0)
    assert out["cpu_per_request_ms"] == pytest.approx(600 / 14)
    # ten answers took 1 s, the two of the second half (started at 12 >= 8) 2 s
    assert out["request_latency_p50_ms"] == pytest.approx(1000.0)
    assert out["request_latency_p95_ms"] == pytest.approx(2000.0)
    assert out["request_latency_p95_second_half_ms"] == pytest.approx(2000.0)
    # in flight: 4 x 1 s + 6 x 1 s + 2 x 2 s over 2 slots x 16 s (refusals hold ~0 s)
    assert out["endpoint_utilization"] == pytest.approx(14 / 32)
    assert out["request_leases"] == out["model_requests_started"] == 14
    assert out["provider_requests"] == 14 and out["request_lease_attempt_mismatch"] == 0


def test_build_span_figures_set_the_requests_against_the_build_call(run_dir: Path) -> None:
    """build() called at -0.5 s and returned at 17 s; the first attempt left at 0 s, the last
    answer came at 14 s; 12 successes over the 17.5 s call at a 2 requests/s limit."""
    out = metrics_of(run_dir, CTX)
    assert out["first_request_delay_seconds"] == pytest.approx(0.5)
    assert out["last_request_to_return_seconds"] == pytest.approx(3.0)
    assert out["build_goodput_ratio"] == pytest.approx(12 / 17.5 / 2.0)
    late = metrics_of(run_dir, CTX, called_at=START - 2.0, returned_at=START + 20.0)
    assert late["first_request_delay_seconds"] == pytest.approx(2.0)
    assert late["last_request_to_return_seconds"] == pytest.approx(6.0)
    # a capture without the moments (an older harness) has none of the three
    bare = metrics_of(run_dir, CTX, called_at=None)
    assert not {"first_request_delay_seconds", "build_goodput_ratio"} & set(bare)


def test_settling_figures_follow_from_the_one_cut(run_dir: Path) -> None:
    """The limit starts at 16, is cut once to 12 at 2 s by the 429s and stays there."""
    out = metrics_of(run_dir, CTX)
    assert out["settled_limit"] == 12
    assert out["time_to_settle_seconds"] == pytest.approx(2.0)
    # attempts started from 2 s on: the 2 refusals, their 2 retries, 4 queued, 2 late
    assert out["rate_limited_fraction_after_settling"] == pytest.approx(2 / 10)


def test_measurement_and_consistency_figures(run_dir: Path) -> None:
    out = metrics_of(run_dir, CTX)
    assert (out["wall_time_seconds"], out["cpu_seconds"], out["peak_rss_bytes"]) == (
        17.5,
        0.6,
        4096.0,
    )
    assert out["leaks"] == 0
    assert out["sequence_violations"] == out["time_reversals"] == 0
    assert out["timeline_monotonic_violations"] == 0
    # the provider saw 3 calls fewer than were started: the mismatch says so
    assert metrics_of(run_dir, CTX, provider_requests=11)["request_lease_attempt_mismatch"] == 3
    leaky = metrics_of(run_dir, CTX, task_leases=1, waiters=2)
    assert leaky["leaks"] == 2


def test_scheduler_figures_follow_from_the_four_tasks(run_dir: Path) -> None:
    """r0 ready 0 / selected 0.5 / leased 1-3; r1 1.2 / 1.5 / 1.5-3.5; c0 1 / 2 / 2.5-4;
    c1 4 / 4.25 / 4.5-5; checkpoints at 4.25 and 5.5; submission capacity 2."""
    out = metrics_of(run_dir, CTX)
    view = CorrelatedRuntimeView.from_run_dir(run_dir)
    derived = view.derived_metrics(submission_capacity=2)
    assert out["ready_queue_wait_mean_seconds"] == pytest.approx((0.5 + 0.3 + 1.0 + 0.25) / 4)
    assert out["ready_queue_wait_max_seconds"] == pytest.approx(1.0)
    assert out["task_admission_wait_mean_seconds"] == pytest.approx((0.5 + 0 + 0.5 + 0.25) / 4)
    assert out["task_admission_wait_max_seconds"] == pytest.approx(0.5)
    # leased seconds 2 + 2 + 1.5 + 0.5 = 6 over capacity 2, over the 16 s run
    assert out["active_capacity_integral"] == pytest.approx(3.0)
    assert out["mean_active_capacity"] == pytest.approx(3.0 / 16)
    assert out["ready_idle_gap_seconds"] == pytest.approx(derived.ready_idle_gap_seconds)
    assert out["ready_idle_gap_seconds"] > 0
    assert out["max_ready_idle_gap_seconds"] == pytest.approx(derived.max_ready_idle_gap_seconds)
    assert out["hidden_scheduler_resource_waiters"] == 0
    # each checkpoint after the last completion before it: 4.25 - 4.0, 5.5 - 5.0
    assert out["checkpoint_cost_p50_seconds"] == pytest.approx(0.375)
    assert out["checkpoint_cost_max_seconds"] == pytest.approx(0.5)


def test_root_and_row_figures(run_dir: Path) -> None:
    out = metrics_of(run_dir, CTX)
    # c0 ready at 1, first child lease at 2.5; child lags 1.5 (c0) and 0.5 (c1)
    assert out["first_downstream_ready_seconds"] == pytest.approx(1.0)
    assert out["first_downstream_dispatch_seconds"] == pytest.approx(2.5)
    assert out["first_downstream_dispatch_lag_seconds"] == pytest.approx(1.5)
    assert out["downstream_ready_to_lease_p50_seconds"] == pytest.approx(1.0)
    assert out["downstream_ready_to_lease_p95_seconds"] == pytest.approx(0.5 + 0.95)
    assert out["downstream_ready_to_lease_max_seconds"] == pytest.approx(1.5)
    # r1 leased at 1.5 while r0 held root's strict share (2 x 1/2, c0 queued): one unit of debt
    assert out["root_over_admission_debt"] == 1
    # row 0 done at 4 (c0), row 1 at 5 (c1)
    assert out["time_to_first_row_seconds"] == pytest.approx(4.0)
    assert out["time_to_50pct_rows_seconds"] == pytest.approx(4.0)
    assert out["row_completion_p95_seconds"] == pytest.approx(4.0 + 0.95)
    assert out["rows_completed"] == 2


def test_without_a_physical_limit_there_is_no_goodput_ratio(run_dir: Path) -> None:
    unbounded = MetricContext(scripts=[ProviderScript("p", capacity=2, latency_ms=0.0)])
    out = metrics_of(run_dir, unbounded)
    assert "goodput_ratio" not in out and "physical_limit_rps" not in out
    assert "root_over_admission_debt" not in out and "rows_completed" not in out
    assert out["successful_requests_per_second"] == pytest.approx(12 / 16)
