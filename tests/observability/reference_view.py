"""The streaming join `CorrelatedRuntimeView` used before it was vectorised, kept as the
oracle the vectorised join is checked against (tests/observability/test_view_equivalence.py).

One pass over each stream, event by event, with the series built sample by sample.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, Final

from rowloom.observability.series import CountSeries, StepSeries, merge_interval, overlap
from rowloom.observability.view_model import (
    LAYERS,
    TIMELINE_FIELDS,
    LayerWaitBreakdown,
    TaskTimeline,
)

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


def reference_join(
    scheduler: Iterable[Mapping[str, Any]], requests: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """What the streaming join computed, as plain values."""
    sched, reqs = list(scheduler), list(requests)
    heads = sched[:1] + reqs[:1]
    origin = min(float(e["captured_at_monotonic"]) for e in heads) if heads else 0.0
    b = _Builder(origin)
    b.scheduler(sched)
    b.requests(reqs)
    timelines = tuple(rec.freeze() for rec in b.execs.values())
    end = b.job_completed_at if b.job_completed_at is not None else b.last_at
    if end is not None:
        for series in (b.queued, b.leased, b.rows):
            series.extend_to(end)
        for res in b.resources.values():
            for step in (res.in_flight, res.limit, res.waiters):
                step.extend_to(end)
    return {
        "timelines": timelines,
        "breakdown": _breakdown(timelines, b),
        "builder": b,
    }
