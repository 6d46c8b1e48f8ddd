"""Micro benchmark: one dispatch cycle of the ready queue and task admission.

Builds N ready tasks spread over G fairness groups, enqueues them all, then times, per task,
the scheduler's dispatch critical section plus the worker's release:

    select_next(is_eligible) -> try_acquire -> commit -> release

with `time.perf_counter_ns`, and prints p50/p95 per operation and per whole cycle.

    .venv/bin/python scripts/micro_queue_admission.py [--tasks 1000 10000 100000]
        [--groups 1 8 64 256] [--policy strict_fair|bounded_borrow] [--capacity 64]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Sequence

from rowloom.clock import SystemClock
from rowloom.scheduling import (
    SUBMISSION,
    FairTaskQueue,
    SchedulableTask,
    SchedulerResourceRequest,
    Task,
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskAdmissionLease,
    TaskGroupKey,
    TaskGroupSpec,
    stable_task_id,
)
from rowloom.scheduling.resources import LOCAL
from rowloom.scheduling.task_policies import BoundedBorrowPolicyConfig, StrictFairPolicyConfig

_OPS = ("select", "acquire", "commit", "release", "cycle")


def build_tasks(num_tasks: int, num_groups: int, workload: str = "mixed") -> list[SchedulableTask]:
    """N tasks round-robin over G groups, weights 1..3.

    `mixed`: odd groups are local (submission + local), even groups model-like (submission);
    `local`: every group local; `model`: every group submission-only.
    """
    submission_only = SchedulerResourceRequest({SUBMISSION: 1})
    with_local = SchedulerResourceRequest({SUBMISSION: 1, LOCAL: 1})
    groups = [
        TaskGroupSpec(TaskGroupKey(("local", f"res{g}"), (f"col{g}",)), 1 + g % 3)
        for g in range(num_groups)
    ]
    tasks = []
    for i in range(num_tasks):
        g = i % num_groups
        column = f"col{g}"
        row = i // num_groups
        tasks.append(
            SchedulableTask(
                stable_task_id(column, 0, row, "cell"),
                Task(column, 0, row, "cell"),
                groups[g],
                with_local
                if workload == "local" or (workload == "mixed" and g % 2)
                else submission_only,
            )
        )
    return tasks


def run_cycles(
    num_tasks: int, num_groups: int, policy: str, capacity: int, workload: str = "mixed"
) -> dict[str, float]:
    """Time every cycle until the queue is empty; returns p50/p95 (us) per operation."""
    queue = FairTaskQueue()
    policy_config = (
        BoundedBorrowPolicyConfig() if policy == "bounded_borrow" else StrictFairPolicyConfig()
    )
    admission = TaskAdmissionController(
        TaskAdmissionConfig(capacity, {LOCAL: capacity}, policy_config), SystemClock()
    )
    queue.enqueue(build_tasks(num_tasks, num_groups, workload))

    def is_eligible(item: SchedulableTask, view: object) -> bool:
        return admission.is_eligible(item, view)  # type: ignore[arg-type]

    samples: dict[str, list[int]] = {op: [] for op in _OPS}
    clock = time.perf_counter_ns
    gc.disable()
    try:
        while True:
            t0 = clock()
            selection = queue.select_next(is_eligible)
            t1 = clock()
            if selection is None:
                break
            lease = admission.try_acquire(selection.item, selection.queue_view)
            t2 = clock()
            committed = queue.commit(selection)
            t3 = clock()
            assert isinstance(lease, TaskAdmissionLease) and committed is not None
            admission.release(lease)
            t4 = clock()
            samples["select"].append(t1 - t0)
            samples["acquire"].append(t2 - t1)
            samples["commit"].append(t3 - t2)
            samples["release"].append(t4 - t3)
            samples["cycle"].append(t4 - t0)
    finally:
        gc.enable()
    assert len(queue) == 0 and admission.active_leases == 0
    result: dict[str, float] = {}
    for op, values in samples.items():
        values.sort()
        result[f"{op}_p50_us"] = statistics.median(values) / 1000
        result[f"{op}_p95_us"] = values[int(len(values) * 0.95) - 1] / 1000
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument(
        "--policy", choices=["strict_fair", "bounded_borrow"], default="strict_fair"
    )
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--workload", choices=["mixed", "local", "model"], default="mixed")
    args = parser.parse_args(argv)
    header = f"{'tasks':>7} {'groups':>6} " + " ".join(f"{op + ' p50/p95':>18}" for op in _OPS)
    print(f"policy={args.policy} capacity={args.capacity} workload={args.workload} (microseconds)")
    print(header)
    for num_tasks in args.tasks:
        for num_groups in args.groups:
            r = run_cycles(num_tasks, num_groups, args.policy, args.capacity, args.workload)
            cells = " ".join(f"{r[op + '_p50_us']:>8.2f}/{r[op + '_p95_us']:<9.2f}" for op in _OPS)
            print(f"{num_tasks:>7} {num_groups:>6} {cells}")


if __name__ == "__main__":
    main()
