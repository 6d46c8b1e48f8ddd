"""Per-iteration derived metrics, from the event timelines.

`CorrelatedRuntimeView` answers the scheduler-side metrics (ready_queue_wait,
task_admission_wait, ready_idle_gap, active_capacity_integral, hidden waiters, the layer
breakdown, attempts by outcome). This module adds what the view does not: goodput_ratio,
rate_limited_fraction after settling (with the time to settle and the settled limit), the
start-up and tail of a build (`build_span`), cpu_per_request_ms, root_over_admission_debt,
row completion times, endpoint utilisation, checkpoint cost and request-count consistency.

Settling: a resource's settled limit is the time-weighted mean of its adaptive limit over the
second half of the run; it has settled from the first moment after which the limit stays within
+-25% of that value (at least +-1). A resource whose limit never moved is settled from the start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rowloom.bench.events import EventDigest
from rowloom.bench.execute import RunCapture
from rowloom.bench.providers import ProviderScript, physical_limit_rps
from rowloom.bench.stats import quantile
from rowloom.builder.row_groups import RowGroupPlan
from rowloom.config.dataset import DatasetConfig
from rowloom.generators import build_generators
from rowloom.models.resources import ModelResourceCatalog
from rowloom.observability.view import CorrelatedRuntimeView
from rowloom.scheduling import stable_task_id

SETTLE_BAND = 0.25
ROW_MAP_MAX_TASKS = 2_000_000


@dataclass(frozen=True, slots=True)
class RowMap:
    """Task id -> (row group, row or None for a batch task), and the tasks a row needs."""

    tasks: Mapping[str, tuple[int, int | None]]
    cell_columns: int
    batch_columns: int
    plan: RowGroupPlan

    @classmethod
    def of(cls, config: DatasetConfig, records: int) -> RowMap | None:
        """The map for `records` rows of `config` (None when it would be too large)."""
        plan = RowGroupPlan(records, config.run_config.buffer_size)
        catalog = ModelResourceCatalog(config.models, config.providers)
        gens = build_generators(config, catalog)
        cells = [n for n, g in gens.items() if g.task_type == "cell"]
        batches = [n for n, g in gens.items() if g.task_type == "batch"]
        if records * len(cells) > ROW_MAP_MAX_TASKS:
            return None
        tasks: dict[str, tuple[int, int | None]] = {}
        for rg in range(plan.count):
            for col in batches:
                tasks[stable_task_id(col, rg, None, "batch")] = (rg, None)
            for col in cells:
                for row in range(plan.size(rg)):
                    tasks[stable_task_id(col, rg, row, "cell")] = (rg, row)
        return cls(tasks, len(cells), len(batches), plan)


@dataclass(frozen=True, slots=True)
class MetricContext:
    """What the metrics need to know about the scenario beyond its events."""

    scripts: Sequence[ProviderScript] = ()
    physical_limit_rps: float | None = None
    root_columns: tuple[str, ...] = ()
    column_weights: Mapping[str, int] = field(default_factory=dict)
    row_map: RowMap | None = None

    @property
    def limit_rps(self) -> float | None:
        return self.physical_limit_rps or physical_limit_rps(self.scripts)


def iteration_metrics(
    view: CorrelatedRuntimeView,
    digest: EventDigest,
    capture: RunCapture,
    ctx: MetricContext,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Scalar metrics of one iteration (for summaries and gates) and structured details."""
    derived = view.derived_metrics(submission_capacity=capture.submission_capacity)
    m = capture.measurement
    start = _first(digest.job_started_at, view.job_started_at, view.first_at) or 0.0
    end = _first(digest.job_completed_at, view.job_completed_at, view.last_at) or start
    wall = max(end - start, 1e-9)
    out: dict[str, float] = {
        "wall_time_seconds": m.wall_time_seconds,
        "cpu_seconds": m.cpu_seconds,
        "peak_rss_bytes": float(m.peak_rss_bytes),
        "engine_wall_seconds": wall,
        "ready_idle_gap_seconds": derived.ready_idle_gap_seconds,
        "max_ready_idle_gap_seconds": derived.max_ready_idle_gap_seconds,
        "hidden_scheduler_resource_waiters": float(derived.hidden_scheduler_resource_waiters),
        "request_attempts": float(derived.request_attempts),
        "rate_limited_fraction": derived.rate_limited_fraction,
        "leaks": float(len(capture.leaks())),
        "sequence_violations": float(sum(view.sequence_violations.values())),
        "time_reversals": float(sum(digest.time_reversals.values())),
        "timeline_monotonic_violations": float(
            sum(1 for tl in view.timelines if tl.monotonic_violations())
        ),
    }
    _put_distribution(out, "ready_queue_wait", derived.ready_queue_wait.as_json())
    _put_distribution(out, "task_admission_wait", derived.task_admission_wait.as_json())
    if derived.active_capacity_integral is not None:
        out["active_capacity_integral"] = derived.active_capacity_integral
    if derived.mean_active_capacity is not None:
        out["mean_active_capacity"] = derived.mean_active_capacity
    successes = derived.request_attempts_by_outcome.get("success", 0)
    out["rate_limited_requests"] = float(derived.request_attempts_by_outcome.get("rate_limited", 0))
    out["successful_requests"] = float(successes)
    out["successful_requests_per_second"] = successes / wall
    limit = ctx.limit_rps
    if limit:
        out["physical_limit_rps"] = limit
        out["goodput_ratio"] = successes / wall / limit
    out.update(build_span(digest, capture, successes, limit))
    if derived.request_attempts:
        out["cpu_per_request_ms"] = m.cpu_seconds * 1000.0 / derived.request_attempts
    ok = [a for a in digest.attempts if a.outcome == "success"]
    latencies = sorted(a.completed_at - a.started_at for a in ok)
    if latencies:
        out["request_latency_p50_ms"] = quantile(latencies, 0.5) * 1000
        out["request_latency_p95_ms"] = quantile(latencies, 0.95) * 1000
    late = sorted(a.completed_at - a.started_at for a in ok if a.started_at >= (start + end) / 2)
    if late:
        out["request_latency_p95_second_half_ms"] = quantile(late, 0.95) * 1000
    details: dict[str, Any] = {
        "layer_breakdown": view.breakdown.as_json(),
        "limiting_layer": view.limiting_layer(),
        "attempts_by_outcome": dict(derived.request_attempts_by_outcome),
        "event_counts": {k: dict(v) for k, v in view.event_counts.items()},
        "scheduler_final_health": digest.job_completed_diagnostics,
    }
    settle = settling(digest, start, end)
    details["settling"] = settle
    if settle["settled_at"] is not None:
        out["time_to_settle_seconds"] = settle["settled_at"] - start
        after = [a for a in digest.attempts if a.started_at >= settle["settled_at"]]
        if after:
            limited = sum(1 for a in after if a.outcome == "rate_limited")
            out["rate_limited_fraction_after_settling"] = limited / len(after)
    if settle["settled_limits"]:
        out["settled_limit"] = float(sum(settle["settled_limits"].values()))
    _request_consistency(out, details, digest, capture)
    _utilisation(out, details, digest, ctx, wall)
    _checkpoint_cost(out, digest)
    if ctx.root_columns:
        out.update(root_metrics(digest, ctx, capture.submission_capacity, start))
    if ctx.row_map is not None:
        out.update(row_completion(digest, ctx.row_map, start))
    return out, details


def _first(*values: float | None) -> float | None:
    for v in values:
        if v is not None:
            return v
    return None


def build_span(
    digest: EventDigest, capture: RunCapture, successes: int, limit: float | None
) -> dict[str, float]:
    """What a caller of `build()` waits for beyond the requests themselves.

    `first_request_delay_seconds`: `build()` called -> the first model request started;
    `last_request_to_return_seconds`: the last request answered -> `build()` returned (the
    final checkpoint, summary, capacity plan, profile and report); `build_goodput_ratio`:
    successful requests per second of the whole call over the physical limit (the
    `goodput_ratio` above counts the scheduler job span only).
    """
    called, returned = capture.called_at, capture.returned_at
    if called is None or returned is None or not digest.attempts:
        return {}
    out = {
        "first_request_delay_seconds": min(a.started_at for a in digest.attempts) - called,
        "last_request_to_return_seconds": returned - max(a.completed_at for a in digest.attempts),
    }
    if limit:
        out["build_goodput_ratio"] = successes / max(returned - called, 1e-9) / limit
    return out


def _put_distribution(out: dict[str, float], name: str, dist: Mapping[str, Any]) -> None:
    for stat in ("mean", "p50", "p95", "max"):
        value = dist.get(stat)
        if isinstance(value, int | float):
            out[f"{name}_{stat}_seconds"] = float(value)


def settling(digest: EventDigest, start: float, end: float) -> dict[str, Any]:
    """Settled limit per resource and the latest settling moment (see the module docstring)."""
    mid = start + (end - start) / 2
    settled_limits: dict[str, float] = {}
    settled_at: float | None = start
    moved = False
    for key, steps in sorted(digest.limit_steps.items()):
        if not steps:
            continue
        level = _time_weighted_mean(steps, mid, end)
        settled_limits[key] = level
        if len(steps) < 2:
            continue
        moved = True
        half_width = max(level * SETTLE_BAND, 1.0)
        lo, hi = level - half_width, level + half_width
        entered: float | None = None
        for t, value in steps:
            inside = lo <= value <= hi
            entered = (entered if entered is not None else max(t, start)) if inside else None
        if entered is None:
            settled_at = None
        elif settled_at is not None:
            settled_at = max(settled_at, entered)
    return {
        "settled_at": settled_at,
        "limits_moved": moved,
        "settled_limits": settled_limits,
        "band": SETTLE_BAND,
        "final_limits": {k: s[-1][1] for k, s in digest.limit_steps.items() if s},
        "min_limits": {k: min(v for _, v in s) for k, s in digest.limit_steps.items() if s},
    }


def _time_weighted_mean(steps: Sequence[tuple[float, int]], lo: float, hi: float) -> float:
    if hi <= lo:
        return float(steps[-1][1])
    total = 0.0
    for i, (t, value) in enumerate(steps):
        seg_end = steps[i + 1][0] if i + 1 < len(steps) else hi
        a, b = max(t, lo), min(seg_end, hi)
        if b > a:
            total += value * (b - a)
    if total == 0.0:  # every step after `hi` or before `lo`: use the value in force at `lo`
        before = [v for t, v in steps if t <= lo]
        return float(before[-1] if before else steps[0][1])
    return total / (hi - lo)


def _request_consistency(
    out: dict[str, float], details: dict[str, Any], digest: EventDigest, capture: RunCapture
) -> None:
    leases = sum(digest.lease_acquired.values())
    started = sum(digest.model_requests_started.values())
    out["request_leases"] = float(leases)
    out["model_requests_started"] = float(started)
    provider = sum(int(s.get("requests", 0)) for s in capture.provider_stats.values())
    out["provider_requests"] = float(provider)
    out["request_lease_attempt_mismatch"] = float(abs(leases - started) + abs(started - provider))
    details["provider_stats"] = capture.provider_stats


def _utilisation(
    out: dict[str, float],
    details: dict[str, Any],
    digest: EventDigest,
    ctx: MetricContext,
    wall: float,
) -> None:
    """In-flight request seconds per provider over (capacity x wall): how full each pool was."""
    capacity = {s.name: s.capacity for s in ctx.scripts}
    busy: defaultdict[str, float] = defaultdict(float)
    for key, seconds in digest.in_flight_seconds.items():
        busy[key.split("/", 1)[0]] += seconds
    per_provider = {
        name: busy.get(name, 0.0) / (cap * wall) for name, cap in sorted(capacity.items())
    }
    details["endpoint_utilization"] = per_provider
    details["peak_request_in_flight"] = dict(digest.peak_in_flight)
    if len(per_provider) > 1:
        out.update({f"endpoint_utilization@{name}": v for name, v in per_provider.items()})
    if per_provider:
        total_cap = sum(capacity.values())
        out["endpoint_utilization"] = sum(busy.values()) / (total_cap * wall)


def _checkpoint_cost(out: dict[str, float], digest: EventDigest) -> None:
    """Seconds from a row group's last completed task to its `row_group_checkpointed`."""
    if not digest.checkpoints:
        return
    gaps = []
    done = sorted(t for t, _ in digest.completed_tasks)
    for t, _rg in digest.checkpoints:
        # the latest task completion before the checkpoint event bounds the write from below
        lo, hi = 0, len(done)
        while lo < hi:
            mid = (lo + hi) // 2
            if done[mid] <= t:
                lo = mid + 1
            else:
                hi = mid
        if lo:
            gaps.append(t - done[lo - 1])
    if gaps:
        gaps.sort()
        out["checkpoint_cost_p50_seconds"] = quantile(gaps, 0.5)
        out["checkpoint_cost_max_seconds"] = gaps[-1]


def root_metrics(
    digest: EventDigest, ctx: MetricContext, capacity: int | None, start: float
) -> dict[str, float]:
    """Heavy-root figures: downstream readiness and dispatch lag, and root over-admission debt.

    Debt counts root task leases acquired after the first downstream task became ready while
    the root group already held at least its strict share: submission capacity x root weight /
    total weight of the groups with queued or leased work at that moment.
    """
    roots = set(ctx.root_columns)
    queued: defaultdict[str, int] = defaultdict(int)
    leased: defaultdict[str, int] = defaultdict(int)
    first_ready: float | None = None
    first_dispatch: float | None = None
    ready_at: dict[str, float] = {}
    lags: list[float] = []
    debt = 0
    for t, kind, column, task_id, reason in digest.scheduler_facts:
        col = column or ""
        downstream = bool(column) and col not in roots
        if kind == "dependency_ready":
            if downstream and task_id and task_id not in ready_at:
                ready_at[task_id] = t
                first_ready = t if first_ready is None else first_ready
        elif kind == "ready_enqueued":
            queued[col] += 1
        elif kind == "selected":
            queued[col] = max(0, queued[col] - 1)
        elif kind == "task_lease_acquired":
            if col in roots and first_ready is not None and capacity:
                active = {c for c in set(queued) | set(leased) if queued[c] or leased[c]}
                weights = sum(ctx.column_weights.get(c, 1) for c in active | {col})
                share = capacity * ctx.column_weights.get(col, 1) / weights
                if leased[col] >= share:
                    debt += 1
            leased[col] += 1
            if downstream:
                first_dispatch = t if first_dispatch is None else first_dispatch
                if task_id in ready_at:
                    lags.append(t - ready_at.pop(task_id))
        elif kind == "task_lease_released" and reason in (None, "released"):
            leased[col] = max(0, leased[col] - 1)
    out: dict[str, float] = {"root_over_admission_debt": float(debt)}
    if first_ready is not None:
        out["first_downstream_ready_seconds"] = first_ready - start
    if first_dispatch is not None and first_ready is not None:
        out["first_downstream_dispatch_seconds"] = first_dispatch - start
        out["first_downstream_dispatch_lag_seconds"] = first_dispatch - first_ready
    if lags:
        lags.sort()
        out["downstream_ready_to_lease_p50_seconds"] = quantile(lags, 0.5)
        out["downstream_ready_to_lease_p95_seconds"] = quantile(lags, 0.95)
        out["downstream_ready_to_lease_max_seconds"] = lags[-1]
    return out


def row_completion(digest: EventDigest, rows: RowMap, start: float) -> dict[str, float]:
    """Time to the first, the 50% and all rows, and p95 row completion (last cell done)."""
    cell_done: dict[tuple[int, int], list[float]] = {}
    batch_done: defaultdict[int, list[float]] = defaultdict(list)
    for t, task_id in digest.completed_tasks:
        where = rows.tasks.get(task_id)
        if where is None:
            continue
        rg, row = where
        if row is None:
            batch_done[rg].append(t)
        else:
            cell_done.setdefault((rg, row), []).append(t)
    finished: list[float] = []
    for (rg, _row), times in cell_done.items():
        batches = batch_done.get(rg, [])
        if len(times) >= rows.cell_columns and len(batches) >= rows.batch_columns:
            finished.append(max([*times, *batches]) - start)
    if rows.cell_columns == 0:
        for rg, batches in batch_done.items():
            if len(batches) >= rows.batch_columns:
                finished.extend([max(batches) - start] * rows.plan.size(rg))
    if not finished:
        return {}
    finished.sort()
    total = rows.plan.num_records
    half = finished[min(len(finished), (total + 1) // 2) - 1]
    return {
        "time_to_first_row_seconds": finished[0],
        "time_to_50pct_rows_seconds": half,
        "row_completion_p95_seconds": quantile(finished, 0.95),
        "rows_completed": float(len(finished)),
    }
