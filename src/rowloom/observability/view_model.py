"""The values `CorrelatedRuntimeView` answers with: timelines, layer waits, derived metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from rowloom.observability.series import CountSeries, StepSeries

TIMELINE_FIELDS: Final[tuple[str, ...]] = (
    "dependency_ready_at",
    "ready_enqueued_at",
    "selected_at",
    "task_lease_acquired_at",
    "worker_spawned_at",
    "request_wait_started_at",
    "request_wait_completed_at",
    "request_lease_acquired_at",
    "model_request_started_at",
    "model_request_completed_at",
    "request_lease_released_at",
    "task_completed_at",
    "task_lease_released_at",
)
"""The joined timeline of one task execution, in the order the layers are passed."""

_FINAL_FIELDS: Final = frozenset({"task_completed_at", "task_lease_released_at"})

LAYERS: Final[tuple[str, ...]] = (
    "dependency_readiness",
    "ready_ordering",
    "task_admission",
    "request_admission",
    "provider_cooldown",
    "provider_execution",
    "downstream_completion",
)
"""Where a task's time can go, one owner each.

- `dependency_readiness`: ready by its inputs, not yet in the ready queue (`dependency_ready`
  -> `ready_enqueued`). Waiting for inputs is not counted: it is the upstream tasks' time.
- `ready_ordering`: queued while the scheduler was not blocked on task admission (fair order).
- `task_admission`: queued while every queued task was refused (`admission_blocked` /
  `group_capped`), plus `selected` -> `task_lease_acquired`.
- `request_admission`: waiting for a request lease while the resource was not cooling down.
- `provider_cooldown`: waiting for a request lease while a rate-limit cooldown blocked
  admission to the resource (snapshots' `blocked_until_monotonic`), and the executor's wait
  between a 429 and the retry (Retry-After).
- `provider_execution`: `model_request_started` -> `model_request_completed`, every attempt,
  plus the executor's backoff between a failed attempt (5xx, timeout) and its retry.
- `downstream_completion`: the rest of a worker's life (local work, parsing, retry backoff).
"""


@dataclass(frozen=True, slots=True)
class TaskTimeline:
    """One task execution across both streams (absent steps are None).

    With several request attempts, the request fields keep the first wait start, wait end,
    lease and provider start, and the last provider completion and lease release.
    """

    task_execution_id: str
    task_id: str | None
    row_group: int | None
    column: str | None
    dependency_ready_at: float | None
    ready_enqueued_at: float | None
    selected_at: float | None
    task_lease_acquired_at: float | None
    worker_spawned_at: float | None
    request_wait_started_at: float | None
    request_wait_completed_at: float | None
    request_lease_acquired_at: float | None
    model_request_started_at: float | None
    model_request_completed_at: float | None
    request_lease_released_at: float | None
    task_completed_at: float | None
    task_lease_released_at: float | None
    attempts: int
    outcome: str | None
    finished_at: float | None
    queue_blocked_seconds: float
    request_wait_seconds: float
    cooldown_wait_seconds: float
    provider_seconds: float
    backoff_seconds: float

    def steps(self) -> list[tuple[str, float]]:
        """The present timeline steps as `(field, time)`, in `TIMELINE_FIELDS` order."""
        out = []
        for name in TIMELINE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out.append((name, value))
        return out

    def monotonic_violations(self) -> list[tuple[str, str]]:
        """Pairs `(earlier, later)` of steps out of order; empty for a well-formed timeline.

        `task_completed_at` and `task_lease_released_at` must each follow every earlier step;
        their mutual order is not checked (the scheduler releases the lease, then books the
        outcome).
        """
        bad: list[tuple[str, str]] = []
        top_name, top = "", -math.inf
        for name, value in self.steps():
            if value < top:
                bad.append((top_name, name))
            if name not in _FINAL_FIELDS and value >= top:
                top_name, top = name, value
        return bad

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class LayerWaitBreakdown:
    """Seconds spent per layer (see `LAYERS`), summed over task executions and attempts."""

    seconds: Mapping[str, float]

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def share(self, layer: str) -> float:
        """The layer's fraction of all seconds (0 for an empty run)."""
        total = self.total
        return self.seconds.get(layer, 0.0) / total if total > 0 else 0.0

    @property
    def shares(self) -> dict[str, float]:
        return {layer: self.share(layer) for layer in LAYERS}

    def limiting_layer(self) -> str | None:
        """The layer with the most seconds, or None when nothing was measured."""
        if self.total <= 0:
            return None
        return max(LAYERS, key=lambda layer: self.seconds.get(layer, 0.0))

    def as_json(self) -> dict[str, Any]:
        return {
            "seconds": {layer: round(self.seconds.get(layer, 0.0), 6) for layer in LAYERS},
            "share": {layer: round(s, 6) for layer, s in self.shares.items()},
            "limiting_layer": self.limiting_layer(),
        }


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a sample: count, total, mean, min, p50, p95, max (None when empty)."""

    count: int
    total: float
    mean: float | None
    minimum: float | None
    p50: float | None
    p95: float | None
    maximum: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        if not values:
            return cls(0, 0.0, None, None, None, None, None)
        ordered = sorted(values)
        total = math.fsum(ordered)
        return cls(
            len(ordered),
            total,
            total / len(ordered),
            ordered[0],
            _quantile(ordered, 0.5),
            _quantile(ordered, 0.95),
            ordered[-1],
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "total": self.total,
            "mean": self.mean,
            "min": self.minimum,
            "p50": self.p50,
            "p95": self.p95,
            "max": self.maximum,
        }


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class DerivedMetrics:
    """The benchmark metrics one run yields (names as in the benchmark spec).

    `active_capacity_integral` is task-lease seconds divided by the submission capacity
    (None when the capacity is unknown); `mean_active_capacity` divides it by wall time.
    `hidden_scheduler_resource_waiters` counts workers spawned before (or without) their task
    lease: it must be 0.
    """

    ready_queue_wait: Distribution
    task_admission_wait: Distribution
    ready_idle_gap_seconds: float
    max_ready_idle_gap_seconds: float
    active_capacity_integral: float | None
    mean_active_capacity: float | None
    hidden_scheduler_resource_waiters: int
    request_attempts: int
    request_attempts_by_outcome: Mapping[str, int]
    rate_limited_fraction: float
    wall_seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "ready_queue_wait": self.ready_queue_wait.as_json(),
            "task_admission_wait": self.task_admission_wait.as_json(),
            "ready_idle_gap_seconds": self.ready_idle_gap_seconds,
            "max_ready_idle_gap_seconds": self.max_ready_idle_gap_seconds,
            "active_capacity_integral": self.active_capacity_integral,
            "mean_active_capacity": self.mean_active_capacity,
            "hidden_scheduler_resource_waiters": self.hidden_scheduler_resource_waiters,
            "request_attempts": self.request_attempts,
            "request_attempts_by_outcome": dict(self.request_attempts_by_outcome),
            "rate_limited_fraction": self.rate_limited_fraction,
            "wall_seconds": self.wall_seconds,
        }


@dataclass(frozen=True, slots=True)
class ResourceTimeline:
    """One provider/model/domain over the run: in-flight, current limit, waiters, 429s.

    `cooldowns` are the merged intervals during which a rate-limit cooldown blocked admission;
    `static_cap` and `effective_max` are the last values its snapshots reported;
    `attempts_by_outcome` counts completed attempts; `success_latencies` are the provider
    execution seconds of successful attempts, in completion order.
    """

    resource: str
    in_flight: StepSeries
    current_limit: StepSeries
    waiters: StepSeries
    rate_limited: CountSeries
    cooldowns: tuple[tuple[float, float], ...]
    static_cap: int | None
    effective_max: int | None
    attempts_by_outcome: Mapping[str, int] = field(default_factory=dict)
    success_latencies: tuple[float, ...] = ()

    @property
    def min_limit(self) -> float:
        """The lowest current limit reached."""
        return min(b.low for b in self.current_limit.buckets())
