"""The vectorised join behind `CorrelatedRuntimeView` (pyarrow tables in, numpy inside).

Each stream is read as columns; every rule of the join is a column operation:

- per execution, a timeline step is the first or last event of a kind (`last_by_key`);
- readiness attaches to the next execution of a task, and a wait end, a provider completion
  or a retry's wait start pairs with the last matching event before it, consumed by it
  (`last_source_before(..., consume=True)`);
- the scheduler's piecewise-constant state (blocked, leases held, ready tasks) is a cumulative
  sum or a forward fill over the stream, integrated over the gaps between events;
- a resource's in-flight, waiters and limit are step functions built at once
  (`StepSeries.from_values`), its cooldowns merged intervals (`merged_intervals`).

Join rules (unchanged from the streaming join this replaced): request events carry the task
execution id in `captured_correlation` (or their diagnostics); `dependency_ready` and
`ready_enqueued` carry only a task id and attach to the next execution of that task. A task
with several request attempts keeps its first wait start, lease and provider start, its last
provider completion and lease release, and an attempt count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa

from rowloom.observability.series import StepSeries
from rowloom.observability.view_columns import (
    BoolArray,
    FloatArray,
    IntArray,
    Interner,
    StreamColumns,
    first_by_key,
    last_by_key,
    last_source_before,
    pick,
    string_codes,
)
from rowloom.observability.view_model import ResourceTimeline
from rowloom.observability.view_requests import RequestJoin
from rowloom.observability.view_timelines import TimelineColumns

_BLOCKED_KINDS: Final = ("admission_blocked", "group_capped")
_TERMINAL_KINDS: Final = ("retry_deferred", "non_retryable_dropped", "cancelled")
_EXEC_KINDS: Final = (
    "selected",
    "task_lease_acquired",
    "worker_spawned",
    "task_completed",
    *_TERMINAL_KINDS,
    "task_lease_released",
)

VIEW_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "scheduler": (
        "event_kind",
        "sequence",
        "captured_at_monotonic",
        "correlation_row_group",
        "correlation_task_column",
        "task_id",
        "task_execution_id",
        "reason",
        "diagnostics",
    ),
    "requests": (
        "event_kind",
        "sequence",
        "captured_at_monotonic",
        "correlation_task_execution_id",
        "request_attempt_id",
        "request_resource_key",
        "reason",
        "snapshot_current_limit",
        "snapshot_effective_max",
        "snapshot_static_cap",
        "snapshot_blocked_until_monotonic",
        "diagnostics",
        "diagnostics_task_execution_id",
    ),
}
"""The columns `build_view` reads of each stream (a run folder's view reads only these)."""


@dataclass
class ViewParts:
    """Everything the view holds, computed from both streams."""

    timelines: TimelineColumns
    layer_request: float
    layer_cooldown: float
    layer_provider: float
    resources: dict[str, ResourceTimeline]
    origin: float
    first_at: float | None
    last_at: float | None
    job_started_at: float | None
    job_completed_at: float | None
    job_spans: list[tuple[float, float | None]]
    event_counts: dict[str, dict[str, int]]
    sequence_violations: dict[str, int]
    attempts_by_outcome: dict[str, int]
    hidden_waiters: int
    idle_gap_total: float
    idle_gap_max: float
    lease_integral: float
    queued: StepSeries
    leased: StepSeries
    rows: StepSeries
    limit_changes: list[tuple[float, str, str, Any, Any]]
    rate_limit_cascades: list[tuple[float, str]]


def build_view(scheduler: pa.Table, requests: pa.Table) -> ViewParts:
    """Join both streams (tables in the `eventlog` schema)."""
    s = StreamColumns(scheduler)
    r = StreamColumns(requests)
    r_attempt = r.codes("request_attempt_id")
    s_ex, r_ex, names = _executions(s, r, r_attempt)
    order = _execution_order(s, s_ex, np.where(r_attempt >= 0, r_ex, -1), len(names))
    s_ex = order[s_ex]
    r_ex = np.where(r_attempt >= 0, order[r_ex], -1)
    ranked = np.argsort(order[:-1], kind="stable")[int(np.count_nonzero(order[:-1] < 0)) :]
    span = _span(s, r)
    tl = TimelineColumns(names.take(pa.array(ranked, pa.int64())))
    sched = _Scheduler(s, s_ex, tl, span)
    req = RequestJoin(r, r_attempt, r_ex, tl, span.origin, span.end)
    return ViewParts(
        timelines=tl,
        layer_request=req.layer_request,
        layer_cooldown=req.layer_cooldown,
        layer_provider=req.layer_provider,
        resources=req.resources,
        origin=span.origin,
        first_at=span.first_at,
        last_at=span.last_at,
        job_started_at=sched.job_started_at,
        job_completed_at=span.job_completed_at,
        job_spans=sched.job_spans,
        event_counts={"scheduler": _kind_counts(s), "requests": _kind_counts(r)},
        sequence_violations={
            name: n
            for name, n in (("scheduler", _violations(s)), ("requests", _violations(r)))
            if n
        },
        attempts_by_outcome=req.attempts_by_outcome,
        hidden_waiters=sched.hidden_waiters,
        idle_gap_total=sched.idle_gap_total,
        idle_gap_max=sched.idle_gap_max,
        lease_integral=sched.lease_integral,
        queued=sched.queued,
        leased=sched.leased,
        rows=sched.rows,
        limit_changes=req.limit_changes,
        rate_limit_cascades=req.rate_limit_cascades,
    )


@dataclass
class _Span:
    origin: float
    first_at: float | None
    last_at: float | None
    job_completed_at: float | None = None

    @property
    def end(self) -> float | None:
        """Where series are carried to: the job's completion, else the last event."""
        return self.job_completed_at if self.job_completed_at is not None else self.last_at


def _span(s: StreamColumns, r: StreamColumns) -> _Span:
    heads = [float(c.t[0]) for c in (s, r) if c.n]
    times = [c.t for c in (s, r) if c.n]
    first = min(float(t.min()) for t in times) if times else None
    last = max(float(t.max()) for t in times) if times else None
    done = s.t[s.is_("scheduler_job_completed")]
    return _Span(min(heads) if heads else 0.0, first, last, float(done[-1]) if len(done) else None)


def _executions(
    s: StreamColumns, r: StreamColumns, attempt: IntArray
) -> tuple[IntArray, IntArray, pa.Array]:
    """Execution codes of both streams in one space, and the ids they index.

    A request event's execution is its correlation's, else its diagnostics'.
    """
    both = pa.chunked_array(
        [
            *s.table.column("task_execution_id").chunks,
            *r.table.column("correlation_task_execution_id").chunks,
        ],
        type=pa.string(),
    )
    codes, names = string_codes(both)
    s_ex, r_ex = codes[: s.n], codes[s.n :]
    missing = np.flatnonzero((r_ex < 0) & (attempt >= 0))
    if len(missing):
        apart = r.strings("diagnostics_task_execution_id", missing)
        inside = r.json_at("diagnostics", missing)
        found = [
            a if a is not None else (d.get("task_execution_id") if isinstance(d, dict) else None)
            for a, d in zip(apart, inside, strict=True)
        ]
        known = {v: i for i, v in enumerate(names.to_pylist())}
        extra = [v for v in dict.fromkeys(found) if isinstance(v, str) and v and v not in known]
        known.update((v, len(known)) for v in extra)
        r_ex[missing] = [known.get(v, -1) if isinstance(v, str) and v else -1 for v in found]
        names = pa.concat_arrays([names, pa.array(extra, pa.string())])
    return s_ex, r_ex, names


def _execution_order(s: StreamColumns, s_ex: IntArray, r_ex: IntArray, size: int) -> IntArray:
    """Code -> position in first-seen order (scheduler stream first); a trailing -1 slot."""
    seen = np.concatenate((s_ex[s.is_(*_EXEC_KINDS) & (s_ex >= 0)], r_ex[r_ex >= 0]))
    first = first_by_key(seen, size)
    present = np.flatnonzero(first >= 0)
    ranked = present[np.argsort(first[present], kind="stable")]
    order = np.full(size + 1, -1, dtype=np.int64)
    order[ranked] = np.arange(len(ranked))
    return order


def _kind_counts(c: StreamColumns) -> dict[str, int]:
    if c.n == 0:
        return {}
    uniq, first, counts = np.unique(c.kind, return_index=True, return_counts=True)
    ranked = np.argsort(first)
    return {c.kind_names[int(uniq[i])]: int(counts[i]) for i in ranked}


def _violations(c: StreamColumns) -> int:
    seq = c.seq[c.seq_ok]
    if len(seq) == 0:
        return 0
    prev = np.concatenate(([0], seq[:-1]))
    return int(np.count_nonzero(seq <= prev))


def _rows_where(mask: BoolArray) -> IntArray:
    return np.flatnonzero(mask)


def _last_row(mask: BoolArray, key: IntArray, size: int) -> IntArray:
    """Per key, the row of the last event in `mask` (-1 when none)."""
    rows = np.flatnonzero(mask & (key >= 0))
    at = last_by_key(key[rows], size)
    return np.where(at >= 0, rows[np.maximum(at, 0)] if len(rows) else -1, -1)


def _first_row(mask: BoolArray, key: IntArray, size: int) -> IntArray:
    """Per key, the row of the first event in `mask` (-1 when none)."""
    rows = np.flatnonzero(mask & (key >= 0))
    at = first_by_key(key[rows], size)
    return np.where(at >= 0, rows[np.maximum(at, 0)] if len(rows) else -1, -1)


def _step_rows(
    origin: float, t: FloatArray, rows: IntArray, deltas: FloatArray, end: float | None
) -> StepSeries:
    order = np.argsort(rows, kind="stable")
    return StepSeries.from_values(origin, t[rows[order]], np.cumsum(deltas[order]), end=end)


class _Scheduler:
    """The scheduler stream's part of the view."""

    def __init__(self, s: StreamColumns, ex: IntArray, tl: TimelineColumns, span: _Span) -> None:
        self.s, self.ex, self.tl, self.span = s, ex, tl, span
        t = s.t
        task = s.codes("task_id", Interner())
        has_ex = ex >= 0
        self.reason = s.codes("reason", reasons := Interner())
        self.reason_names = reasons.values
        released = reasons.codes.get("released", -2)
        self.selected = s.is_("selected") & has_ex
        self.sink = self.selected & (task >= 0)
        dep = s.is_("dependency_ready") & (task >= 0)
        enq = s.is_("ready_enqueued") & (task >= 0)
        self.dep_hit, _ = last_source_before(task, dep, self.sink, consume=True)
        self.enq_hit, _ = last_source_before(task, enq, self.sink, consume=True)
        ready_hit, ready_first = last_source_before(task, dep | enq, self.sink, consume=True)
        ready = np.cumsum(ready_first.astype(np.int64) - (ready_hit >= 0))
        self.acquired = s.is_("task_lease_acquired") & has_ex
        self.released_any = s.is_("task_lease_released") & has_ex
        counted = self.released_any & ((self.reason < 0) | (self.reason == released))
        steps = np.cumsum(self.acquired.astype(np.int64) - counted)
        leases = steps - np.minimum(0, np.minimum.accumulate(steps)) if s.n else steps
        dt = np.zeros(s.n)
        if s.n > 1:
            dt[1:] = np.maximum(0.0, np.diff(t))
        before = np.concatenate(([0], leases[:-1])) if s.n else leases
        self.lease_integral = float(np.sum(dt * before))
        self.blocked_cum = np.cumsum(dt * self._blocked_before())
        self._idle(ready, leases)
        origin, end = span.origin, span.end
        lease_rows = _rows_where(self.acquired | counted)
        self.leased = StepSeries.from_values(
            origin, t[lease_rows], leases[lease_rows].astype(np.float64), end=end
        )
        q_rows = _rows_where(enq | (self.sink & (self.enq_hit >= 0)))
        q = np.where(enq[q_rows], 1.0, -1.0)
        self.queued = StepSeries.from_values(origin, t[q_rows], np.cumsum(q), end=end)
        self.rows = self._rows_written(end)
        self._jobs()
        self._timelines()

    def _blocked_before(self) -> FloatArray:
        s = self.s
        toggle = np.where(s.is_(*_BLOCKED_KINDS), 1, np.where(s.is_("queue_empty"), 0, -1))
        last = np.maximum.accumulate(np.where(toggle >= 0, np.arange(s.n), -1))
        after = np.where(last >= 0, toggle[np.maximum(last, 0)], 0)
        return np.concatenate(([0.0], after[:-1].astype(np.float64))) if s.n else after

    def _idle(self, ready: IntArray, leases: IntArray) -> None:
        s = self.s
        done = np.cumsum(s.is_("scheduler_job_completed")) > 0
        idle = (ready > 0) & (leases == 0) & ~done
        prev = np.concatenate(([False], idle[:-1]))
        opens = np.flatnonzero(idle & ~prev)
        closes = np.flatnonzero(~idle & prev)
        gaps = s.t[closes] - s.t[opens[: len(closes)]]
        self.idle_gap_total = float(gaps.sum())
        self.idle_gap_max = max(0.0, float(gaps.max())) if len(gaps) else 0.0

    def _rows_written(self, end: float | None) -> StepSeries:
        s = self.s
        rows = _rows_where(s.is_("row_group_checkpointed"))
        diags = s.json_at("diagnostics", rows)
        keep = [
            i for i, d in enumerate(diags) if isinstance(d, dict) and type(d.get("rows")) is int
        ]
        counts = np.array([diags[i]["rows"] for i in keep], dtype=np.float64)
        return StepSeries.from_values(self.span.origin, s.t[rows[keep]], np.cumsum(counts), end=end)

    def _jobs(self) -> None:
        s = self.s
        self.job_spans: list[tuple[float, float | None]] = []
        started = s.is_("scheduler_job_started")
        completed = s.is_("scheduler_job_completed")
        for i in np.flatnonzero(started | completed).tolist():
            t = float(s.t[i])
            if started[i]:
                self.job_spans.append((t, None))
            elif self.job_spans and self.job_spans[-1][1] is None:
                self.job_spans[-1] = (self.job_spans[-1][0], t)
        self.job_started_at = self.job_spans[0][0] if self.job_spans else None

    def _timelines(self) -> None:
        s, ex, tl = self.s, self.ex, self.tl
        size, t = tl.size, s.t
        sel = _last_row(self.selected, ex, size)
        found = sel >= 0
        for name, column in (
            ("task_id", "task_id"),
            ("row_group", "correlation_row_group"),
            ("column", "correlation_task_column"),
        ):
            tl.set_objects(name, s.take(column, sel[found]), found)
        tl.floats["selected_at"] = pick(t, sel)
        with_task = _last_row(self.sink, ex, size)
        tl.floats["dependency_ready_at"] = pick(pick(t, self.dep_hit), with_task)
        tl.floats["ready_enqueued_at"] = pick(pick(t, self.enq_hit), with_task)
        marked = self.sink & (self.enq_hit >= 0)
        waited = np.zeros(s.n)
        rows = np.flatnonzero(marked)
        waited[rows] = self.blocked_cum[rows] - self.blocked_cum[self.enq_hit[rows]]
        tl.floats["queue_blocked_seconds"] = np.nan_to_num(
            pick(waited, _last_row(marked, ex, size))
        )
        lease = _last_row(self.acquired, ex, size)
        tl.floats["task_lease_acquired_at"] = pick(t, lease)
        spawned = s.is_("worker_spawned") & (ex >= 0)
        tl.floats["worker_spawned_at"] = pick(t, _last_row(spawned, ex, size))
        tl.floats["task_completed_at"] = pick(t, _last_row(s.is_("task_completed"), ex, size))
        tl.floats["task_lease_released_at"] = pick(t, _last_row(self.released_any, ex, size))
        self._outcomes()
        hit, _ = last_source_before(ex, self.acquired, spawned, consume=False)
        rows = np.flatnonzero(spawned)
        lease_at = hit[rows]
        ok = lease_at >= 0
        hidden = ~ok.copy()
        lease_seq_ok = np.zeros(len(rows), dtype=bool)
        lease_seq_ok[ok] = s.seq_ok[lease_at[ok]]
        hidden |= ok & ~lease_seq_ok
        later = ok & lease_seq_ok & s.seq_ok[rows]
        hidden[later] |= s.seq[rows[later]] < s.seq[lease_at[later]]
        self.hidden_waiters = int(np.count_nonzero(hidden))

    def _outcomes(self) -> None:
        s, tl = self.s, self.tl
        done = s.is_("task_completed")
        terminal = s.is_(*_TERMINAL_KINDS)
        last = _last_row(done | terminal, self.ex, tl.size)
        tl.floats["finished_at"] = pick(s.t, last)
        rows = last[last >= 0]
        reasons = [*self.reason_names, "success"]  # code -1 (no reason) is the last
        names = [
            reasons[code] if finished else s.kind_names[kind]
            for code, finished, kind in zip(
                self.reason[rows].tolist(), done[rows].tolist(), s.kind[rows].tolist(), strict=True
            )
        ]
        tl.set_objects("outcome", pa.array(names, pa.string()), last >= 0)
