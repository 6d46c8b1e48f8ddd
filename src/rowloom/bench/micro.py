"""`queue_admission_micro`: the cost of one dispatch cycle of the ready queue and task admission.

For each cell of the matrix (tasks x groups x resource mix) N ready tasks spread round-robin
over G fairness groups are enqueued at once, then dispatched one by one exactly as the
scheduler's critical section does, timing every operation with `perf_counter_ns`:

    select_next(is_eligible) -> try_acquire -> commit, and one lease release per dispatch

Leases are held in a FIFO window of `inflight` running tasks (the oldest is released when the
window is full, or when nothing is eligible), so limits and fairness policy really bind.
Mixes: `local` (every task needs submission + local, local limit 8 as in the engine),
`resource_bound` (model groups: submission only, weighted), `mixed` (alternating).
A cycle is everything from one dispatch to the next, including the release and any refused
selection in between. The garbage collector is off while a cell is timed.

A cell times at most `max_dispatches` dispatches (20k by default; 0 drains the queue): at 100k
tasks the first 20k cycles run with 100k..80k tasks queued, which is the load the figure is
about, and keeps an iteration near half a minute. The rest of the queue is then discarded.
`per_task_cost_us` is enqueue cost per task plus the mean cycle, the same for every cell.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from rowloom.bench.machine import Measurement, measure
from rowloom.bench.scenario import (
    Gate,
    IterationContext,
    IterationResult,
    Knob,
    KnobValue,
    OracleCheck,
    Scenario,
    Target,
    knob_int,
    knob_str,
)
from rowloom.bench.stats import quantile
from rowloom.clock import SystemClock
from rowloom.scheduling import (
    LOCAL,
    SUBMISSION,
    BoundedBorrowPolicyConfig,
    FairTaskQueue,
    SchedulableTask,
    SchedulerResourceRequest,
    StrictFairPolicyConfig,
    Task,
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskAdmissionLease,
    TaskGroupKey,
    TaskGroupSpec,
    stable_task_id,
)

MIXES = ("local", "resource_bound", "mixed")
_OPS = ("select", "acquire", "commit", "release")
LOCAL_SLOTS = 8


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def build_tasks(num_tasks: int, num_groups: int, mix: str) -> list[SchedulableTask]:
    """N tasks round-robin over G groups of the given resource mix."""
    local_req = SchedulerResourceRequest({SUBMISSION: 1, LOCAL: 1})
    model_req = SchedulerResourceRequest({SUBMISSION: 1})
    groups: list[tuple[TaskGroupSpec, SchedulerResourceRequest]] = []
    for g in range(num_groups):
        local = mix == "local" or (mix == "mixed" and g % 2 == 1)
        if local:
            key = TaskGroupKey(("local", "default", "1"), (f"col{g}",))
            groups.append((TaskGroupSpec(key, 1), local_req))
        else:
            key = TaskGroupKey(("model", "prov", f"m{g % 16}", "chat"), (f"col{g}",))
            groups.append((TaskGroupSpec(key, 1 + g % 4 * 4), model_req))
    tasks = []
    for i in range(num_tasks):
        g = i % num_groups
        spec, request = groups[g]
        column = f"col{g}"
        row = i // num_groups
        tasks.append(
            SchedulableTask(
                stable_task_id(column, 0, row, "cell"), Task(column, 0, row, "cell"), spec, request
            )
        )
    return tasks


def run_cell(
    num_tasks: int,
    num_groups: int,
    mix: str,
    *,
    policy: str,
    capacity: int,
    inflight: int,
    max_dispatches: int = 0,
) -> dict[str, float]:
    """Time one matrix cell; figures in microseconds (see the module docstring)."""
    tasks = build_tasks(num_tasks, num_groups, mix)
    queue = FairTaskQueue()
    policy_config = (
        BoundedBorrowPolicyConfig() if policy == "bounded_borrow" else StrictFairPolicyConfig()
    )
    admission = TaskAdmissionController(
        TaskAdmissionConfig(capacity, {LOCAL: LOCAL_SLOTS}, policy_config), SystemClock()
    )
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        queue.enqueue(tasks)
        enqueue_ns = time.perf_counter_ns() - t0
        del tasks
        samples, blocked = _dispatch(queue, admission, max_dispatches or num_tasks, inflight)
    finally:
        gc.enable()
    dispatched = len(samples["cycle"])
    if admission.active_leases or dispatched + len(queue) != num_tasks:
        raise AssertionError("leases left or tasks lost in a micro benchmark cell")
    out: dict[str, float] = {
        "enqueue_per_task_us": enqueue_ns / num_tasks / 1000,
        "per_task_cost_us": (enqueue_ns / num_tasks + statistics.fmean(samples["cycle"])) / 1000,
        "blocked_selects": float(blocked),
        "dispatches_timed": float(dispatched),
    }
    for op, values in samples.items():
        values.sort()
        out[f"{op}_p50_us"] = quantile(values, 0.5) / 1000
        out[f"{op}_p95_us"] = quantile(values, 0.95) / 1000
        out[f"{op}_mean_us"] = statistics.fmean(values) / 1000
    return out


def _dispatch(
    queue: FairTaskQueue, admission: TaskAdmissionController, limit: int, inflight: int
) -> tuple[dict[str, list[int]], int]:
    """Up to `limit` timed dispatch cycles, as the scheduler's critical section runs them.

    Returns nanoseconds per operation and per cycle, and how many selections found nothing.
    Every lease is released before it returns.
    """
    clock = time.perf_counter_ns
    is_eligible = admission.is_eligible  # as the scheduler passes it
    samples: dict[str, list[int]] = {op: [] for op in (*_OPS, "cycle")}
    running: deque[TaskAdmissionLease] = deque()
    blocked = 0
    acc = dict.fromkeys(_OPS, 0)
    while len(samples["cycle"]) < limit:
        c0 = clock()
        selection = queue.select_next(is_eligible)
        c1 = clock()
        acc["select"] += c1 - c0
        if selection is None:
            if not running:
                break
            blocked += 1
            r0 = clock()
            admission.release(running.popleft())
            acc["release"] += clock() - r0
            continue
        lease = admission.try_acquire(selection.item, selection.queue_view)
        c2 = clock()
        committed = queue.commit(selection)
        c3 = clock()
        if not isinstance(lease, TaskAdmissionLease) or committed is None:
            raise AssertionError("a selected task was refused or stale in a single thread")
        acc["acquire"] += c2 - c1
        acc["commit"] += c3 - c2
        running.append(lease)
        if len(running) > inflight:
            admission.release(running.popleft())
            acc["release"] += clock() - c3
        for op in _OPS:
            samples[op].append(acc[op])
        samples["cycle"].append(sum(acc.values()))
        acc = dict.fromkeys(_OPS, 0)
    while running:
        admission.release(running.popleft())
    return samples, blocked


def cell_key(tasks: int, groups: int, mix: str) -> str:
    return f"{tasks}x{groups}/{mix}"


class QueueAdmissionMicro(Scenario):
    id = "queue_admission_micro"
    shape = "1k, 10k, 100k tasks x 1, 8, 64, 256 groups; local, resource-bound, mixed"
    shows = (
        "p50/p95 cost of one select+acquire+commit+release cycle, breakdown per operation, "
        "CPU, peak memory, scaling with groups"
    )
    default_records = 0
    uses_providers = False
    knobs = (
        Knob("tasks", "1000,10000,100000", "task counts (comma separated)", "str"),
        Knob("groups", "1,8,64,256", "group counts (comma separated)", "str"),
        Knob("mixes", ",".join(MIXES), "resource mixes (comma separated)", "str"),
        Knob(
            "policy",
            "bounded_borrow",
            "task admission policy",
            "str",
            ("bounded_borrow", "strict_fair"),
        ),
        Knob("capacity", 64, "submission capacity"),
        Knob("inflight", 48, "running leases held before the oldest is released"),
        Knob("max_dispatches", 20_000, "dispatches timed per cell (0: drain the queue)"),
    )
    targets = (
        Target(
            "cycle_p50_us@100000x*",
            "<=",
            10.0,
            label="p50 cycle at 100k tasks, every group count and mix",
        ),
        Target(
            "per_task_cost_ratio_100k_vs_1k@*",
            "<=",
            1.3,
            label="per-task cost at 100k within 1.3x of 1k",
        ),
    )
    gate = Gate("cycle_p95_us", 0.10, "queue/admission micro: p95 cycle within 10% of baseline")

    headline = ("wall_time_seconds", "cpu_seconds", "peak_rss_bytes", "per_task_cost_ratio_*")

    def summary_extra(self, result: Mapping[str, Any]) -> list[str]:
        """The matrix: per cell, means over iterations of every figure (microseconds)."""
        derived = result["derived_metrics"]
        cells = sorted(
            {n.split("@", 1)[1] for n in derived if n.startswith("cycle_p50_us@")}, key=_cell_order
        )
        lines = [
            "## Matrix (mean over iterations; microseconds unless noted)",
            "",
            "| tasks x groups / mix | cycle p50 | cycle p95 | select p50 | acquire p50 | "
            "commit p50 | release p50 | enqueue/task | per-task cost | refused selects | "
            "CPU s | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]

        def mean(name: str, cell: str) -> float:
            stats = derived.get(f"{name}@{cell}")
            return float(stats["mean"]) if stats else float("nan")

        for cell in cells:
            figures = [
                mean(f, cell)
                for f in (
                    "cycle_p50_us",
                    "cycle_p95_us",
                    "select_p50_us",
                    "acquire_p50_us",
                    "commit_p50_us",
                    "release_p50_us",
                    "enqueue_per_task_us",
                    "per_task_cost_us",
                )
            ]
            lines.append(
                f"| {cell} | "
                + " | ".join(f"{v:.2f}" for v in figures)
                + f" | {mean('blocked_selects', cell):.0f} | {mean('cpu_seconds', cell):.2f} | "
                f"{mean('peak_rss_bytes', cell) / 2**20:.0f} |"
            )
        return lines

    def warmup_context(self, ctx: IterationContext) -> IterationContext:
        """A warm-up runs the matrix at the smallest task count only."""
        smallest = str(min(_ints(knob_str(ctx.knobs, "tasks"))))
        knobs = {**ctx.knobs, "tasks": smallest}
        return IterationContext(
            ctx.records, ctx.seed, knobs, ctx.http, ctx.workdir, ctx.index, True, ctx.timeline_cap
        )

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        return micro_iteration(ctx.knobs)

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        return OracleCheck("none", reason="no dataset: the micro benchmark generates no values")


def micro_iteration(knobs: Mapping[str, KnobValue]) -> IterationResult:
    """Every cell of the matrix once; metrics keyed `<figure>@<tasks>x<groups>/<mix>`."""
    task_counts = _ints(knob_str(knobs, "tasks"))
    group_counts = _ints(knob_str(knobs, "groups"))
    mixes = [m for m in knob_str(knobs, "mixes").split(",") if m]
    unknown = set(mixes) - set(MIXES)
    if unknown:
        raise ValueError(f"unknown mixes {sorted(unknown)}; known: {', '.join(MIXES)}")
    metrics: dict[str, float] = {}
    cells: dict[str, Any] = {}
    total = Measurement()
    for mix in mixes:
        for groups in group_counts:
            for tasks in task_counts:
                with measure() as m:
                    figures = run_cell(
                        tasks,
                        groups,
                        mix,
                        policy=knob_str(knobs, "policy"),
                        capacity=knob_int(knobs, "capacity"),
                        inflight=knob_int(knobs, "inflight"),
                        max_dispatches=knob_int(knobs, "max_dispatches"),
                    )
                key = cell_key(tasks, groups, mix)
                figures["cpu_seconds"] = m.cpu_seconds
                figures["wall_seconds"] = m.wall_time_seconds
                figures["peak_rss_bytes"] = float(m.peak_rss_bytes)
                cells[key] = figures
                for name, value in figures.items():
                    metrics[f"{name}@{key}"] = value
                total.wall_time_seconds += m.wall_time_seconds
                total.cpu_seconds += m.cpu_seconds
                total.peak_rss_bytes = max(total.peak_rss_bytes, m.peak_rss_bytes)
                total.peak_rss_method = m.peak_rss_method
            lo, hi = min(task_counts), max(task_counts)
            if lo != hi:
                ratio = (
                    cells[cell_key(hi, groups, mix)]["per_task_cost_us"]
                    / cells[cell_key(lo, groups, mix)]["per_task_cost_us"]
                )
                metrics[f"per_task_cost_ratio_{_k(hi)}_vs_{_k(lo)}@{groups}/{mix}"] = ratio
    metrics["wall_time_seconds"] = total.wall_time_seconds
    metrics["cpu_seconds"] = total.cpu_seconds
    metrics["peak_rss_bytes"] = float(total.peak_rss_bytes)
    return IterationResult(
        measurement=total,
        metrics=metrics,
        details={"cells": cells, "policy": knob_str(knobs, "policy")},
        final_task_snapshot={
            "active_leases": 0,
            "leased": {},
            "note": "checked per cell: queue empty, no lease active",
        },
        final_request_snapshot={
            "note": "no request admission in this scenario",
            "in_flight_total": 0,
            "waiters_total": 0,
        },
        timeline_sampling={
            "total_events": 0,
            "kept_events": 0,
            "keep_fraction": 1.0,
            "rule": "no event streams: the micro benchmark times data structures",
        },
    )


def _cell_order(cell: str) -> tuple[str, int, int]:
    size, mix = cell.split("/", 1)
    tasks, groups = size.split("x", 1)
    return (mix, int(groups), int(tasks))


def _k(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)
