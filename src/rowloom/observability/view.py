"""`CorrelatedRuntimeView`: both event streams joined into one timeline per task execution.

It answers which layer limited a run (dependency readiness, ready ordering, task admission,
request admission, provider cooldown, provider execution or downstream completion) and derives
the benchmark metrics. Built in one pass over each stream, from event objects or from a run
folder's JSONL files (read line by line); memory grows with the number of task executions,
not with the number of events. Pure apart from the `from_run_dir` reader.

Join rules: request events carry the task execution id in `captured_correlation`;
`dependency_ready` and `ready_enqueued` carry only a task id and attach to the next execution
of that task. A task with several request attempts keeps its first wait start, lease and
provider start, its last provider completion and lease release, and an attempt count.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import orjson

from rowloom.observability.series import CountSeries, StepSeries, merge_interval, overlap
from rowloom.observability.view_model import (
    LAYERS,
    TIMELINE_FIELDS,
    DerivedMetrics,
    Distribution,
    LayerWaitBreakdown,
    ResourceTimeline,
    TaskTimeline,
)

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

_BLOCKED_KINDS: Final = frozenset({"admission_blocked", "group_capped"})
_TERMINAL_KINDS: Final = frozenset({"retry_deferred", "non_retryable_dropped", "cancelled"})
_WAIT_ENDS: Final = frozenset(
    {"request_wait_completed", "request_wait_timeout", "request_wait_cancelled"}
)
_LIMIT_KINDS: Final = frozenset(
    {
        "request_limit_decreased",
        "request_limit_increased",
        "request_soft_ceiling_recovered",
        "request_fully_recovered",
        "request_effective_cap_changed",
    }
)


class _Exec:
    """Mutable accumulator of one task execution while the streams are read."""

    __slots__ = (
        *TIMELINE_FIELDS,
        "attempts",
        "backoff_seconds",
        "column",
        "cooldown_wait_seconds",
        "finished_at",
        "lease_seq",
        "outcome",
        "provider_seconds",
        "queue_blocked_seconds",
        "request_wait_seconds",
        "retry_from",
        "row_group",
        "spawn_seq",
        "task_execution_id",
        "task_id",
    )

    def __init__(self, execution_id: str) -> None:
        self.task_execution_id = execution_id
        self.task_id: str | None = None
        self.row_group: int | None = None
        self.column: str | None = None
        self.dependency_ready_at: float | None = None
        self.ready_enqueued_at: float | None = None
        self.selected_at: float | None = None
        self.task_lease_acquired_at: float | None = None
        self.worker_spawned_at: float | None = None
        self.request_wait_started_at: float | None = None
        self.request_wait_completed_at: float | None = None
        self.request_lease_acquired_at: float | None = None
        self.model_request_started_at: float | None = None
        self.model_request_completed_at: float | None = None
        self.request_lease_released_at: float | None = None
        self.task_completed_at: float | None = None
        self.task_lease_released_at: float | None = None
        self.attempts = 0
        self.outcome: str | None = None
        self.finished_at: float | None = None
        self.queue_blocked_seconds = 0.0
        self.request_wait_seconds = 0.0
        self.cooldown_wait_seconds = 0.0
        self.provider_seconds = 0.0
        self.backoff_seconds = 0.0
        self.retry_from: tuple[float, str] | None = None
        self.lease_seq: int | None = None
        self.spawn_seq: int | None = None

    def freeze(self) -> TaskTimeline:
        values = {f.name: getattr(self, f.name) for f in fields(TaskTimeline)}
        return TaskTimeline(**values)


class _Resource:
    __slots__ = (
        "cooldowns",
        "effective_max",
        "in_flight",
        "latencies",
        "limit",
        "outcomes",
        "rate_limited",
        "static_cap",
        "waiters",
    )

    def __init__(self, origin: float) -> None:
        self.in_flight = StepSeries(origin)
        self.limit = StepSeries(origin, initial=None)
        self.waiters = StepSeries(origin)
        self.rate_limited = CountSeries(origin)
        self.cooldowns: list[tuple[float, float]] = []
        self.static_cap: int | None = None
        self.effective_max: int | None = None
        self.outcomes: Counter[str] = Counter()
        self.latencies: list[float] = []


class _Builder:
    """One pass over each stream (scheduler stream first or second, either works)."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.execs: dict[str, _Exec] = {}
        self.sequence_violations: Counter[str] = Counter()
        self.kinds: dict[str, Counter[str]] = {"scheduler": Counter(), "requests": Counter()}
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.job_started_at: float | None = None
        self.job_completed_at: float | None = None
        # one (start, end) per scheduler job: a resumed run has one per attempt
        self.job_spans: list[tuple[float, float | None]] = []
        # scheduler state
        self.pending_ready: dict[str, float] = {}
        self.pending_enqueued: dict[str, float] = {}
        self.enqueued_blocked_mark: dict[str, float] = {}
        self.ready: set[str] = set()
        self.blocked = False
        self.blocked_cum = 0.0
        self.leases = 0
        self.sched_t: float | None = None
        self.idle_gap_total = 0.0
        self.idle_gap_max = 0.0
        self.idle_gap_open: float | None = None
        self.lease_integral = 0.0
        self.hidden_waiters = 0
        self.queued = StepSeries(origin)
        self.leased = StepSeries(origin)
        self.rows = StepSeries(origin)
        self.rows_total = 0
        # request state
        self.resources: dict[str, _Resource] = {}
        self.waiting: dict[str, tuple[float, str, str | None]] = {}
        self.started: dict[str, float] = {}
        self.outcomes: Counter[str] = Counter()
        self.layer_request = 0.0
        self.layer_cooldown = 0.0
        self.layer_provider = 0.0
        self.limit_changes: list[tuple[float, str, str, Any, Any]] = []
        self.rate_limit_cascades: list[tuple[float, str]] = []

    # --- shared --------------------------------------------------------------------------------

    def _exec(self, execution_id: str) -> _Exec:
        rec = self.execs.get(execution_id)
        if rec is None:
            rec = self.execs[execution_id] = _Exec(execution_id)
        return rec

    def _stamp(self, stream: str, kind: str, seq: Any, t: float, last: list[int]) -> None:
        if isinstance(seq, int):
            if seq <= last[0]:
                self.sequence_violations[stream] += 1
            last[0] = seq
        self.kinds[stream][kind] += 1
        if self.first_at is None or t < self.first_at:
            self.first_at = t
        if self.last_at is None or t > self.last_at:
            self.last_at = t

    # --- scheduler stream ----------------------------------------------------------------------

    def scheduler(self, events: Iterable[Mapping[str, Any]]) -> None:
        last = [0]
        for e in events:
            kind = e["event_kind"]
            t = float(e["captured_at_monotonic"])
            self._stamp("scheduler", kind, e.get("sequence"), t, last)
            self._advance(t)
            self._scheduler_event(kind, t, e)

    def _advance(self, t: float) -> None:
        """Integrate the piecewise-constant scheduler state up to `t`."""
        prev = self.sched_t
        self.sched_t = t
        if prev is None or t <= prev:
            return
        dt = t - prev
        if self.blocked:
            self.blocked_cum += dt
        self.lease_integral += self.leases * dt

    def _idle_check(self, t: float) -> None:
        idle = bool(self.ready) and self.leases == 0 and self.job_completed_at is None
        if idle and self.idle_gap_open is None:
            self.idle_gap_open = t
        elif not idle and self.idle_gap_open is not None:
            gap = t - self.idle_gap_open
            self.idle_gap_total += gap
            self.idle_gap_max = max(self.idle_gap_max, gap)
            self.idle_gap_open = None

    def _scheduler_event(self, kind: str, t: float, e: Mapping[str, Any]) -> None:
        task_id = e.get("task_id")
        ex_id = e.get("task_execution_id")
        if kind == "dependency_ready" and task_id:
            self.pending_ready[task_id] = t
            self.ready.add(task_id)
        elif kind == "ready_enqueued" and task_id:
            self.pending_enqueued[task_id] = t
            self.enqueued_blocked_mark[task_id] = self.blocked_cum
            self.ready.add(task_id)
            self.queued.add(t, 1)
        elif kind in _BLOCKED_KINDS:
            self.blocked = True
        elif kind == "queue_empty":
            self.blocked = False
        elif kind == "selected" and ex_id:
            rec = self._exec(ex_id)
            rec.task_id = task_id
            corr = e.get("captured_correlation") or {}
            rec.row_group = corr.get("row_group")
            rec.column = corr.get("task_column")
            rec.selected_at = t
            if task_id:
                rec.dependency_ready_at = self.pending_ready.pop(task_id, None)
                rec.ready_enqueued_at = self.pending_enqueued.pop(task_id, None)
                mark = self.enqueued_blocked_mark.pop(task_id, None)
                if mark is not None:
                    rec.queue_blocked_seconds = self.blocked_cum - mark
                    self.queued.add(t, -1)
                self.ready.discard(task_id)
        elif kind == "task_lease_acquired" and ex_id:
            rec = self._exec(ex_id)
            rec.task_lease_acquired_at = t
            rec.lease_seq = e.get("sequence")
            self.leases += 1
            self.leased.set(t, self.leases)
        elif kind == "worker_spawned" and ex_id:
            rec = self._exec(ex_id)
            rec.worker_spawned_at = t
            rec.spawn_seq = e.get("sequence")
            if rec.lease_seq is None or (
                isinstance(rec.spawn_seq, int) and rec.spawn_seq < rec.lease_seq
            ):
                self.hidden_waiters += 1
        elif kind == "task_completed" and ex_id:
            rec = self._exec(ex_id)
            rec.task_completed_at = t
            rec.outcome = e.get("reason") or "success"
            rec.finished_at = t
        elif kind in _TERMINAL_KINDS and ex_id:
            rec = self._exec(ex_id)
            rec.outcome = kind
            rec.finished_at = t
        elif kind == "task_lease_released" and ex_id:
            rec = self._exec(ex_id)
            rec.task_lease_released_at = t
            if e.get("reason") in (None, "released"):
                self.leases = max(0, self.leases - 1)
                self.leased.set(t, self.leases)
        elif kind == "row_group_checkpointed":
            rows = (e.get("diagnostics") or {}).get("rows")
            if isinstance(rows, int):
                self.rows_total += rows
                self.rows.set(t, self.rows_total)
        elif kind == "scheduler_job_started":
            self.job_started_at = t if self.job_started_at is None else self.job_started_at
            self.job_spans.append((t, None))
        elif kind == "scheduler_job_completed":
            self._idle_check(t)
            self.job_completed_at = t
            if self.job_spans and self.job_spans[-1][1] is None:
                self.job_spans[-1] = (self.job_spans[-1][0], t)
        self._idle_check(t)

    # --- request stream ------------------------------------------------------------------------

    def requests(self, events: Iterable[Mapping[str, Any]]) -> None:
        last = [0]
        for e in events:
            kind = e["event_kind"]
            t = float(e["captured_at_monotonic"])
            self._stamp("requests", kind, e.get("sequence"), t, last)
            self._request_event(kind, t, e)

    def _resource(self, key: str) -> _Resource:
        res = self.resources.get(key)
        if res is None:
            res = self.resources[key] = _Resource(self.origin)
        return res

    def _request_event(self, kind: str, t: float, e: Mapping[str, Any]) -> None:
        key = e.get("request_resource_key")
        res = self._resource(key) if key else None
        snap = e.get("snapshot")
        if res is not None and isinstance(snap, dict):
            self._note_snapshot(res, t, snap)
        attempt = e.get("request_attempt_id")
        corr = e.get("captured_correlation") or {}
        ex_id = corr.get("task_execution_id") or (e.get("diagnostics") or {}).get(
            "task_execution_id"
        )
        rec = self._exec(ex_id) if ex_id and attempt else None
        if kind == "request_wait_started" and attempt and key and res is not None:
            self.waiting[attempt] = (t, key, ex_id)
            res.waiters.add(t, 1)
            if rec is not None:
                if rec.request_wait_started_at is None:
                    rec.request_wait_started_at = t
                self._retry_gap(rec, t)
        elif (kind in _WAIT_ENDS or kind == "request_acquire_denied") and attempt:
            self._end_wait(attempt, t, rec, granted=kind == "request_wait_completed")
        elif kind == "request_lease_acquired" and res is not None:
            res.in_flight.add(t, 1)
            if rec is not None and rec.request_lease_acquired_at is None:
                rec.request_lease_acquired_at = t
        elif kind == "request_lease_released" and res is not None:
            res.in_flight.add(t, -1)
            if rec is not None:
                rec.request_lease_released_at = t
        elif kind == "model_request_started" and attempt:
            self.started[attempt] = t
            if rec is not None:
                rec.attempts += 1
                if rec.model_request_started_at is None:
                    rec.model_request_started_at = t
        elif kind == "model_request_completed" and attempt:
            outcome = e.get("reason") or "unknown"
            self.outcomes[outcome] += 1
            start = self.started.pop(attempt, None)
            if res is not None:
                res.outcomes[outcome] += 1
                if start is not None and outcome == "success":
                    res.latencies.append(t - start)
            if start is not None:
                self.layer_provider += t - start
                if rec is not None:
                    rec.provider_seconds += t - start
            if rec is not None:
                rec.model_request_completed_at = t
                rec.retry_from = (t, outcome) if outcome != "success" else None
            if outcome == "rate_limited" and res is not None:
                res.rate_limited.add(t)
        elif kind == "request_rate_limited" and key:
            self.rate_limit_cascades.append((t, key))
        if kind in _LIMIT_KINDS and key and res is not None:
            diag = e.get("diagnostics") or {}
            if diag.get("scope") == "provider":
                # a provider-limit change, reported on the resource whose release caused it:
                # not a change of that resource's own limit
                return
            after = diag.get("after")
            self.limit_changes.append((t, key, kind, diag.get("before"), after))
            if isinstance(after, int) and kind != "request_effective_cap_changed":
                res.limit.set(t, after)

    def _note_snapshot(self, res: _Resource, t: float, snap: Mapping[str, Any]) -> None:
        limit = snap.get("current_limit")
        if isinstance(limit, int) and limit != res.limit.value:
            res.limit.set(t, limit)
        cap = snap.get("static_cap")
        if isinstance(cap, int):
            res.static_cap = cap
        top = snap.get("effective_max")
        if isinstance(top, int):
            res.effective_max = top
        until = snap.get("blocked_until_monotonic")
        if isinstance(until, int | float) and until > t:
            # admission to the resource is blocked by a rate-limit cooldown until `until`
            merge_interval(res.cooldowns, t, float(until))

    def _retry_gap(self, rec: _Exec, t: float) -> None:
        """Time between a failed attempt and the task's next one: the executor's wait before
        retrying (Retry-After after a 429: provider cooldown; backoff after other failures:
        provider execution)."""
        if rec.retry_from is None:
            return
        since, outcome = rec.retry_from
        rec.retry_from = None
        gap = max(0.0, t - since)
        rec.backoff_seconds += gap
        if outcome == "rate_limited":
            self.layer_cooldown += gap
        else:
            self.layer_provider += gap

    def _end_wait(self, attempt: str, t: float, rec: _Exec | None, *, granted: bool) -> None:
        waited = self.waiting.pop(attempt, None)
        if waited is None:
            return
        start, key, _ = waited
        res = self._resource(key)
        res.waiters.add(t, -1)
        cooling = min(t - start, overlap(res.cooldowns, start, t))
        capacity = max(0.0, t - start - cooling)
        self.layer_cooldown += cooling
        self.layer_request += capacity
        if rec is not None:
            rec.cooldown_wait_seconds += cooling
            rec.request_wait_seconds += capacity
            if granted and rec.request_wait_completed_at is None:
                rec.request_wait_completed_at = t


@dataclass(frozen=True, slots=True)
class CorrelatedRuntimeView:
    """Both streams of one run joined per task execution, plus run-level series for reports.

    Guarantees: `timelines` holds one `TaskTimeline` per task execution id seen in either
    stream, in first-seen order; `breakdown` sums wait seconds per layer over executions and
    attempts; `sequence_violations` counts events whose sequence did not increase in their
    stream (0 for a well-formed run).
    """

    timelines: tuple[TaskTimeline, ...]
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
    def from_events(
        cls,
        scheduler_events: Iterable[Any],
        request_events: Iterable[Any],
        *,
        submission_capacity: int | None = None,
    ) -> CorrelatedRuntimeView:
        """Join event objects (anything with `as_json()`) or their JSON dicts."""
        sched = [_as_dict(e) for e in scheduler_events]
        reqs = [_as_dict(e) for e in request_events]
        origin = _origin(sched[:1] + reqs[:1])
        b = _Builder(origin)
        b.scheduler(sched)
        b.requests(reqs)
        return cls._freeze(b, submission_capacity)

    @classmethod
    def from_run_dir(
        cls, run_dir: str | Path, *, submission_capacity: int | None = None
    ) -> CorrelatedRuntimeView:
        """Join `events/scheduler.jsonl` and `events/requests.jsonl` of a run folder, streaming.

        Missing files count as empty streams; a torn last line (a killed run) is skipped. The
        submission capacity defaults to the one in the folder's `capacity_plan.json`.
        """
        run_dir = Path(run_dir)
        sched_path = run_dir / "events" / "scheduler.jsonl"
        req_path = run_dir / "events" / "requests.jsonl"
        heads = [e for p in (sched_path, req_path) for e in _first(p)]
        b = _Builder(_origin(heads))
        b.scheduler(_read_jsonl(sched_path))
        b.requests(_read_jsonl(req_path))
        if submission_capacity is None:
            submission_capacity = _plan_submission_capacity(run_dir / "capacity_plan.json")
        return cls._freeze(b, submission_capacity)

    @classmethod
    def _freeze(cls, b: _Builder, submission_capacity: int | None) -> CorrelatedRuntimeView:
        timelines = tuple(rec.freeze() for rec in b.execs.values())
        end = b.job_completed_at if b.job_completed_at is not None else b.last_at
        if end is not None:
            for series in (b.queued, b.leased, b.rows):
                series.extend_to(end)
        resources = {}
        for key, res in sorted(b.resources.items()):
            if end is not None:
                for step in (res.in_flight, res.limit, res.waiters):
                    step.extend_to(end)
            resources[key] = ResourceTimeline(
                key,
                res.in_flight,
                res.limit,
                res.waiters,
                res.rate_limited,
                tuple(res.cooldowns),
                res.static_cap,
                res.effective_max,
                dict(res.outcomes),
                tuple(res.latencies),
            )
        return cls(
            timelines=timelines,
            breakdown=_breakdown(timelines, b),
            resources=resources,
            origin=b.origin,
            first_at=b.first_at,
            last_at=b.last_at,
            job_started_at=b.job_started_at,
            job_completed_at=b.job_completed_at,
            job_spans=tuple(b.job_spans),
            event_counts={k: dict(v) for k, v in b.kinds.items()},
            sequence_violations=dict(b.sequence_violations),
            attempts_by_outcome=dict(b.outcomes),
            hidden_scheduler_resource_waiters=b.hidden_waiters,
            ready_idle_gap_seconds=b.idle_gap_total,
            max_ready_idle_gap_seconds=b.idle_gap_max,
            task_lease_seconds=b.lease_integral,
            queued_tasks=b.queued,
            task_leases=b.leased,
            rows_written=b.rows,
            limit_changes=tuple(b.limit_changes),
            rate_limit_cascades=tuple(b.rate_limit_cascades),
            submission_capacity=submission_capacity,
        )

    # --- answers -------------------------------------------------------------------------------

    def limiting_layer(self) -> str | None:
        """The layer with the most wait seconds (see `LAYERS`), or None for an empty run."""
        return self.breakdown.limiting_layer()

    def timeline(self, task_execution_id: str) -> TaskTimeline | None:
        """One execution's timeline, or None."""
        for tl in self.timelines:
            if tl.task_execution_id == task_execution_id:
                return tl
        return None

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
        ready_waits = [
            tl.selected_at - tl.ready_enqueued_at
            for tl in self.timelines
            if tl.selected_at is not None and tl.ready_enqueued_at is not None
        ]
        admission_waits = [
            tl.task_lease_acquired_at - tl.selected_at
            for tl in self.timelines
            if tl.task_lease_acquired_at is not None and tl.selected_at is not None
        ]
        wall = self.wall_seconds
        integral = self.task_lease_seconds / capacity if capacity else None
        attempts = sum(self.attempts_by_outcome.values())
        return DerivedMetrics(
            ready_queue_wait=Distribution.of(ready_waits),
            task_admission_wait=Distribution.of(admission_waits),
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


def _breakdown(timelines: tuple[TaskTimeline, ...], b: _Builder) -> LayerWaitBreakdown:
    sums = dict.fromkeys(LAYERS, 0.0)
    for tl in timelines:
        if tl.ready_enqueued_at is not None and tl.dependency_ready_at is not None:
            sums["dependency_readiness"] += max(0.0, tl.ready_enqueued_at - tl.dependency_ready_at)
        if tl.selected_at is not None and tl.ready_enqueued_at is not None:
            queued = max(0.0, tl.selected_at - tl.ready_enqueued_at)
            blocked = min(queued, tl.queue_blocked_seconds)
            sums["ready_ordering"] += queued - blocked
            sums["task_admission"] += blocked
        if tl.task_lease_acquired_at is not None and tl.selected_at is not None:
            sums["task_admission"] += max(0.0, tl.task_lease_acquired_at - tl.selected_at)
        start = tl.worker_spawned_at
        end = _last(tl.task_lease_released_at, tl.task_completed_at, tl.finished_at)
        if start is not None and end is not None:
            inside = (
                tl.request_wait_seconds
                + tl.cooldown_wait_seconds
                + tl.provider_seconds
                + tl.backoff_seconds
            )
            sums["downstream_completion"] += max(0.0, end - start - inside)
    sums["request_admission"] = b.layer_request
    sums["provider_cooldown"] = b.layer_cooldown
    sums["provider_execution"] = b.layer_provider
    return LayerWaitBreakdown(sums)


def _last(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _as_dict(event: Any) -> Mapping[str, Any]:
    if isinstance(event, Mapping):
        return event
    result: Mapping[str, Any] = event.as_json()
    return result


def _origin(heads: Iterable[Mapping[str, Any]]) -> float:
    times = [float(e["captured_at_monotonic"]) for e in heads]
    return min(times) if times else 0.0


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn last line of a killed run


def _first(path: Path) -> list[dict[str, Any]]:
    for event in _read_jsonl(path):
        return [event]
    return []


def _plan_submission_capacity(path: Path) -> int | None:
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        value = plan["configured"]["submission_capacity"]["value"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) else None
