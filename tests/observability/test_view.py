"""CorrelatedRuntimeView on hand-written event streams: joins, layer attribution, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rowloom.observability.correlation import RuntimeCorrelation
from rowloom.observability.events import (
    RequestAdmissionEvent,
    RequestEventEmitter,
    SchedulerAdmissionEvent,
    SchedulerEventEmitter,
)
from rowloom.observability.sinks import InMemoryEventSink, JsonlEventSink
from rowloom.observability.view import LAYERS, CorrelatedRuntimeView

RES = "sim/model-x/chat"


class Script:
    """Emits both streams through the real emitters at times the test sets."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sched: InMemoryEventSink[SchedulerAdmissionEvent] = InMemoryEventSink()
        self.req: InMemoryEventSink[RequestAdmissionEvent] = InMemoryEventSink()
        self.s = SchedulerEventEmitter(self.sched, lambda: self.t)
        self.r = RequestEventEmitter(self.req, lambda: self.t)

    def at(self, t: float) -> Script:
        self.t = t
        return self

    def task(self, kind: str, task_id: str, ex: str | None = None, **kw: Any) -> None:
        corr = RuntimeCorrelation("run", 0, "col", "cell", "model", "h", ex)
        self.s.emit(kind, correlation=corr, task_id=task_id, task_execution_id=ex, **kw)

    def sched_event(self, kind: str, **kw: Any) -> None:
        self.s.emit(kind, **kw)

    def request(self, kind: str, ex: str | None, attempt: str | None, **kw: Any) -> None:
        corr = {"run_id": "run", "task_execution_id": ex} if ex else {}
        self.r.emit(
            kind, correlation=corr, request_attempt_id=attempt, request_resource_key=RES, **kw
        )

    def run_task(self, task_id: str, ex: str, ready: float, enq: float, sel: float) -> None:
        self.at(ready).task("dependency_ready", task_id)
        self.at(enq).task("ready_enqueued", task_id)
        self.at(sel).task("selected", task_id, ex)
        self.task(
            "task_lease_acquired",
            task_id,
            ex,
            task_lease_id=f"l-{ex}",
            scheduler_resource_key="submission",
        )

    def view(self, **kw: Any) -> CorrelatedRuntimeView:
        return CorrelatedRuntimeView.from_events(self.sched.events, self.req.events, **kw)


def snap(limit: int, blocked_until: float | None = None) -> dict[str, Any]:
    return {
        "resource": RES,
        "current_limit": limit,
        "static_cap": 8,
        "effective_max": 8,
        "in_flight": 0,
        "waiters": 0,
        "blocked_until_monotonic": blocked_until,
    }


def two_attempt_task() -> Script:
    """One task: a 429 on its first attempt, a cooldown-delayed second attempt, success."""
    sc = Script()
    sc.at(0).sched_event("scheduler_job_started")
    sc.run_task("t1", "te-1", ready=0.0, enq=1.0, sel=3.0)
    sc.at(3.1).task("worker_spawned", "t1", "te-1", task_lease_id="l-te-1")
    sc.at(4).request("request_wait_started", "te-1", "ra-1")
    sc.at(6).request("request_wait_completed", "te-1", "ra-1")
    sc.request("request_lease_acquired", "te-1", "ra-1", request_lease_id="q1", snapshot=snap(8))
    sc.request("model_request_started", "te-1", "ra-1")
    sc.at(7).request("model_request_completed", "te-1", "ra-1", reason="rate_limited")
    sc.request("request_lease_released", "te-1", "ra-1", reason="rate_limited")
    sc.request("request_rate_limited", "te-1", "ra-1", snapshot=snap(6, blocked_until=8.0))
    sc.request("request_limit_decreased", None, None, diagnostics={"before": 8, "after": 6})
    sc.request("request_wait_started", "te-1", "ra-2")
    sc.at(9).request("request_wait_completed", "te-1", "ra-2")
    sc.request("request_lease_acquired", "te-1", "ra-2", request_lease_id="q2", snapshot=snap(6))
    sc.request("model_request_started", "te-1", "ra-2")
    sc.at(10).request("model_request_completed", "te-1", "ra-2", reason="success")
    sc.request("request_lease_released", "te-1", "ra-2", reason="success")
    sc.at(10.5).task("task_lease_released", "t1", "te-1", task_lease_id="l-te-1", reason="released")
    sc.task("task_completed", "t1", "te-1", reason="success")
    sc.at(11).sched_event("scheduler_job_completed")
    return sc


def test_streams_join_into_one_timeline_per_execution() -> None:
    view = two_attempt_task().view()
    (tl,) = view.timelines
    assert (tl.task_id, tl.row_group, tl.column) == ("t1", 0, "col")
    assert tl.dependency_ready_at == 0.0 and tl.ready_enqueued_at == 1.0
    assert tl.selected_at == 3.0 and tl.worker_spawned_at == 3.1
    assert tl.request_wait_started_at == 4.0, "first attempt's wait start"
    assert tl.request_wait_completed_at == 6.0, "first attempt's wait end"
    assert tl.model_request_started_at == 6.0
    assert tl.model_request_completed_at == 10.0, "last attempt's completion"
    assert tl.request_lease_released_at == 10.0
    assert tl.attempts == 2 and tl.outcome == "success"
    assert tl.monotonic_violations() == []


def test_wait_is_split_per_layer_with_cooldown_separated() -> None:
    bd = two_attempt_task().view().breakdown
    assert bd.seconds["dependency_readiness"] == pytest.approx(1.0)
    assert bd.seconds["ready_ordering"] == pytest.approx(2.0)
    assert bd.seconds["task_admission"] == pytest.approx(0.0)
    # attempt 1 waited 2 s for capacity; attempt 2 waited 2 s, 1 s of it in cooldown
    assert bd.seconds["request_admission"] == pytest.approx(3.0)
    assert bd.seconds["provider_cooldown"] == pytest.approx(1.0)
    assert bd.seconds["provider_execution"] == pytest.approx(2.0)
    # worker life 3.1 -> 10.5 minus 4 s of waits and 2 s of calls
    assert bd.seconds["downstream_completion"] == pytest.approx(1.4)
    assert bd.limiting_layer() == "request_admission"
    assert sum(bd.shares.values()) == pytest.approx(1.0)
    assert set(bd.as_json()["seconds"]) == set(LAYERS)


def test_queue_time_while_admission_is_blocked_counts_as_task_admission() -> None:
    sc = Script()
    sc.at(0).task("dependency_ready", "a")
    sc.task("ready_enqueued", "a")
    sc.task("dependency_ready", "b")
    sc.task("ready_enqueued", "b")
    sc.task("selected", "a", "te-1")
    sc.task("task_lease_acquired", "a", "te-1")
    sc.sched_event("admission_blocked", reason="no_capacity")
    sc.at(5).task("task_lease_released", "a", "te-1", reason="released")
    sc.task("selected", "b", "te-2")
    sc.task("task_lease_acquired", "b", "te-2")
    sc.sched_event("queue_empty")
    sc.at(6).task("dependency_ready", "c")
    sc.task("ready_enqueued", "c")
    sc.at(8).task("selected", "c", "te-3")  # queued 2 s with nobody blocked: ordering
    sc.task("task_lease_acquired", "c", "te-3")
    bd = sc.view().breakdown
    assert bd.seconds["task_admission"] == pytest.approx(5.0)
    assert bd.seconds["ready_ordering"] == pytest.approx(2.0)
    assert bd.limiting_layer() == "task_admission"


def test_a_retried_task_joins_its_readiness_to_the_execution_that_followed() -> None:
    sc = Script()
    sc.run_task("t", "te-1", ready=0.0, enq=0.5, sel=1.0)
    sc.at(2).task("task_lease_released", "t", "te-1", reason="released")
    sc.task("retry_deferred", "t", "te-1", reason="flaky")
    sc.at(3).task("ready_enqueued", "t")  # salvage re-enters through the frontier
    sc.at(4).task("selected", "t", "te-2")
    view = sc.view()
    first, second = view.timelines
    assert (first.dependency_ready_at, first.ready_enqueued_at) == (0.0, 0.5)
    assert first.outcome == "retry_deferred"
    assert (second.dependency_ready_at, second.ready_enqueued_at) == (None, 3.0)


def test_an_executions_outcome_is_its_completion_reason_else_success_else_its_end() -> None:
    sc = Script()
    for ex, end, reason in (
        ("te-1", "task_completed", None),
        ("te-2", "task_completed", "partial"),
        ("te-3", "cancelled", "shutdown"),
        ("te-4", "non_retryable_dropped", None),
    ):
        sc.run_task(f"t-{ex}", ex, ready=0.0, enq=0.0, sel=1.0)
        sc.at(2).task(end, f"t-{ex}", ex, reason=reason)
    sc.run_task("t-5", "te-5", ready=0.0, enq=0.0, sel=1.0)  # still running
    outcomes = {tl.task_execution_id: tl.outcome for tl in sc.view().timelines}
    assert outcomes == {
        "te-1": "success",
        "te-2": "partial",
        "te-3": "cancelled",
        "te-4": "non_retryable_dropped",
        "te-5": None,
    }


def test_hidden_scheduler_resource_waiters_are_counted() -> None:
    sc = Script()
    sc.run_task("ok", "te-1", 0, 0, 0)
    sc.task("worker_spawned", "ok", "te-1")
    sc.task("worker_spawned", "early", "te-2")  # spawned before its lease
    sc.task("task_lease_acquired", "early", "te-2")
    sc.task("worker_spawned", "never", "te-3")  # spawned without any lease
    assert sc.view().derived_metrics().hidden_scheduler_resource_waiters == 2
    assert two_attempt_task().view().derived_metrics().hidden_scheduler_resource_waiters == 0


def test_derived_metrics() -> None:
    sc = two_attempt_task()
    m = sc.view(submission_capacity=4).derived_metrics()
    assert m.ready_queue_wait.count == 1 and m.ready_queue_wait.p50 == pytest.approx(2.0)
    assert m.task_admission_wait.p95 == pytest.approx(0.0)
    # ready from 0 to 3 with nothing leased
    assert m.ready_idle_gap_seconds == pytest.approx(3.0)
    assert m.max_ready_idle_gap_seconds == pytest.approx(3.0)
    # one lease held 3.0 -> 10.5 over capacity 4
    assert m.active_capacity_integral == pytest.approx(7.5 / 4)
    assert m.mean_active_capacity == pytest.approx(7.5 / 4 / 11)
    assert m.request_attempts == 2
    assert m.request_attempts_by_outcome == {"rate_limited": 1, "success": 1}
    assert m.rate_limited_fraction == pytest.approx(0.5)
    assert sc.view().derived_metrics().active_capacity_integral is None
    json.dumps(m.as_json())


def test_resource_timeline_tracks_in_flight_limit_cooldown_and_429s() -> None:
    res = two_attempt_task().view().resources[RES]
    assert max(b.high for b in res.in_flight.buckets()) == 1
    assert res.in_flight.value == 0
    assert res.min_limit == 6 and res.current_limit.value == 6
    assert res.static_cap == 8
    assert res.rate_limited.total == 1
    assert res.cooldowns == ((7.0, 8.0),)
    assert max(b.high for b in res.waiters.buckets()) == 1 and res.waiters.value == 0


def test_run_dir_reader_matches_the_in_memory_join(tmp_path: Path) -> None:
    sc = two_attempt_task()
    events = tmp_path / "events"
    for name, evs in (("scheduler", sc.sched.events), ("requests", sc.req.events)):
        sink: JsonlEventSink[Any] = JsonlEventSink(events / f"{name}.jsonl")
        for e in evs:
            sink.emit(e)
        sink.close()
    with (events / "requests.jsonl").open("a") as fh:
        fh.write('{"stream":"requests","event_kind":"model_req')  # torn line of a killed run
    from_disk = CorrelatedRuntimeView.from_run_dir(tmp_path)
    in_memory = sc.view()
    assert from_disk.timelines == in_memory.timelines
    assert from_disk.breakdown == in_memory.breakdown
    assert from_disk.sequence_violations == {}


def test_missing_event_files_give_an_empty_view(tmp_path: Path) -> None:
    view = CorrelatedRuntimeView.from_run_dir(tmp_path)
    assert view.timelines == () and view.limiting_layer() is None
    assert view.derived_metrics().request_attempts == 0


def test_out_of_order_sequences_are_reported() -> None:
    events = [e.as_json() for e in two_attempt_task().sched.events]
    events[3], events[4] = events[4], events[3]
    view = CorrelatedRuntimeView.from_events(events, [])
    assert view.sequence_violations == {"scheduler": 1}


def test_the_executors_wait_before_a_retry_is_attributed_to_its_cause() -> None:
    sc = Script()
    sc.run_task("t", "te-1", 0, 0, 0)
    sc.task("worker_spawned", "t", "te-1")
    for attempt, start, outcome in (
        ("ra-1", 0, "rate_limited"),
        ("ra-2", 2, "provider_failure"),
        ("ra-3", 5, "success"),
    ):
        sc.at(start).request("request_wait_started", "te-1", attempt)
        sc.request("request_wait_completed", "te-1", attempt)
        sc.request("model_request_started", "te-1", attempt)
        sc.at(start + 1).request("model_request_completed", "te-1", attempt, reason=outcome)
    sc.at(6).task("task_lease_released", "t", "te-1", reason="released")
    bd = sc.view().breakdown
    assert bd.seconds["provider_cooldown"] == pytest.approx(1.0)  # Retry-After 1 -> 2
    assert bd.seconds["provider_execution"] == pytest.approx(3.0 + 2.0)  # calls + backoff
    assert bd.seconds["downstream_completion"] == pytest.approx(0.0)
