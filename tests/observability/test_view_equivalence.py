"""The vectorised view computes exactly what the streaming join computed, on random streams.

Random event streams (plausible kinds, few tasks, executions, attempts and resources, so keys
repeat, collide, start twice, end without a start...) go through both: the streaming join kept
in `reference_view.py` and `CorrelatedRuntimeView` (through the Arrow form). Every field of the
view must agree (floats to 1e-9: sums are taken in another order).
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.observability.reference_view import reference_join

from rowloom.observability.series import CountSeries, StepSeries
from rowloom.observability.view import CorrelatedRuntimeView

SCHED_KINDS = (
    "scheduler_job_started",
    "scheduler_job_completed",
    "dependency_ready",
    "ready_enqueued",
    "selected",
    "task_lease_acquired",
    "worker_spawned",
    "task_completed",
    "task_lease_released",
    "retry_deferred",
    "cancelled",
    "admission_blocked",
    "group_capped",
    "queue_empty",
    "row_group_checkpointed",
)
REQ_KINDS = (
    "request_wait_started",
    "request_wait_completed",
    "request_wait_timeout",
    "request_acquire_denied",
    "request_lease_acquired",
    "request_lease_released",
    "model_request_started",
    "model_request_completed",
    "request_rate_limited",
    "request_limit_decreased",
    "request_limit_increased",
    "request_effective_cap_changed",
)
TASKS = (None, "t1", "t2", "t3")
EXECS = (None, "e1", "e2", "e3", "e4")
ATTEMPTS = (None, "a1", "a2", "a3")
RESOURCES = (None, "p/m/chat", "p/n/chat")
OUTCOMES = (None, "success", "rate_limited", "provider_failure", "released")

steps = st.sampled_from((0.0, 0.0, 0.25, 0.5, 1.0, 3.0))
snapshots = st.none() | st.fixed_dictionaries(
    {
        "current_limit": st.integers(1, 4),
        "static_cap": st.integers(2, 8),
        "effective_max": st.integers(2, 8),
        "blocked_until_monotonic": st.none() | st.floats(0, 40),
    }
)
limit_diags = st.fixed_dictionaries(
    {"before": st.integers(1, 8), "after": st.integers(1, 8)},
    optional={"scope": st.sampled_from(("provider", "resource"))},
)
sched_event = st.tuples(
    steps,
    st.sampled_from(SCHED_KINDS),
    st.sampled_from(TASKS),
    st.sampled_from(EXECS),
    st.sampled_from(OUTCOMES),
    st.integers(0, 5),
)
req_event = st.tuples(
    steps,
    st.sampled_from(REQ_KINDS),
    st.sampled_from(EXECS),
    st.sampled_from(ATTEMPTS),
    st.sampled_from(RESOURCES),
    st.sampled_from(OUTCOMES),
    snapshots,
    limit_diags,
    st.booleans(),
)


def _scheduler(raw: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    t, out = 0.0, []
    for i, (dt, kind, task, ex, reason, rows) in enumerate(raw):
        t += dt
        out.append(
            {
                "stream": "scheduler",
                "event_kind": kind,
                "sequence": i + 1 if i % 7 else i,  # a few out-of-order sequences
                "captured_at_monotonic": t,
                "captured_correlation": {"run_id": "r", "row_group": rows, "task_column": task}
                if ex
                else {},
                "task_id": task,
                "task_execution_id": ex,
                "task_lease_id": None,
                "scheduler_resource_key": None,
                "reason": reason,
                "snapshot": None,
                "diagnostics": {"rows": rows} if kind == "row_group_checkpointed" else {},
            }
        )
    return out


def _requests(raw: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    t, out = 0.0, []
    for i, (dt, kind, ex, attempt, key, reason, snap, diag, in_diag) in enumerate(raw):
        t += dt
        corr = {"run_id": "r", "task_execution_id": ex} if ex and not in_diag else {}
        diagnostics: dict[str, Any] = dict(diag) if kind.startswith("request_limit") else {}
        if kind == "request_effective_cap_changed":
            diagnostics = dict(diag)
        if ex and in_diag:
            diagnostics["task_execution_id"] = ex
        out.append(
            {
                "stream": "requests",
                "event_kind": kind,
                "sequence": i + 1,
                "captured_at_monotonic": t,
                "captured_correlation": corr,
                "request_attempt_id": attempt,
                "request_lease_id": None,
                "request_resource_key": key,
                "request_group_key": None,
                "reason": reason,
                "snapshot": snap,
                "diagnostics": diagnostics,
            }
        )
    return out


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _series(s: StepSeries | CountSeries) -> Any:
    return s.as_json() if isinstance(s, StepSeries) else s.points()


@settings(max_examples=200, deadline=None)
@given(st.lists(sched_event, max_size=40), st.lists(req_event, max_size=40))
def test_the_vectorised_view_equals_the_streaming_join(
    sched_raw: list[tuple[Any, ...]], req_raw: list[tuple[Any, ...]]
) -> None:
    sched, reqs = _scheduler(sched_raw), _requests(req_raw)
    ref = reference_join(sched, reqs)
    view = CorrelatedRuntimeView.from_events(sched, reqs)
    b = ref["builder"]
    assert len(view.timelines) == len(ref["timelines"])
    for mine, theirs in zip(view.timelines, ref["timelines"], strict=True):
        assert _close(mine.as_json(), theirs.as_json()), (mine, theirs)
    assert _close(dict(view.breakdown.seconds), dict(ref["breakdown"].seconds))
    assert (view.origin, view.first_at, view.last_at) == (b.origin, b.first_at, b.last_at)
    assert (view.job_started_at, view.job_completed_at) == (b.job_started_at, b.job_completed_at)
    assert list(view.job_spans) == b.job_spans
    assert view.event_counts == {k: dict(v) for k, v in b.kinds.items()}
    assert view.sequence_violations == dict(b.sequence_violations)
    assert list(view.attempts_by_outcome.items()) == list(b.outcomes.items())
    assert view.hidden_scheduler_resource_waiters == b.hidden_waiters
    assert _close(
        [view.ready_idle_gap_seconds, view.max_ready_idle_gap_seconds, view.task_lease_seconds],
        [b.idle_gap_total, b.idle_gap_max, b.lease_integral],
    )
    for mine_s, theirs_s in (
        (view.queued_tasks, b.queued),
        (view.task_leases, b.leased),
        (view.rows_written, b.rows),
    ):
        assert _close(_series(mine_s), _series(theirs_s))
    assert _close(list(view.limit_changes), b.limit_changes)
    assert list(view.rate_limit_cascades) == b.rate_limit_cascades
    assert sorted(view.resources) == sorted(b.resources)
    for key, res in view.resources.items():
        old = b.resources[key]
        assert _close(_series(res.in_flight), _series(old.in_flight)), key
        assert _close(_series(res.current_limit), _series(old.limit)), key
        assert _close(_series(res.waiters), _series(old.waiters)), key
        assert res.rate_limited.points() == old.rate_limited.points()
        assert _close(list(res.cooldowns), old.cooldowns)
        assert (res.static_cap, res.effective_max) == (old.static_cap, old.effective_max)
        assert list(res.attempts_by_outcome.items()) == list(old.outcomes.items())
        assert _close(list(res.success_latencies), old.latencies)
