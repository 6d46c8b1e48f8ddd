"""One pass over a run's two event streams: the sampled timeline plus the facts the
harness derives its own metrics from (those `CorrelatedRuntimeView` does not answer).

The timeline kept in artifacts is bounded: when a run has more events than the cap, whole
task executions are kept or dropped together (by a stable hash of the execution id), and
run-level events are kept with the same probability, so kept timelines stay complete.
"""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rowloom.observability.eventread import event_dicts, read_events

TIMELINE_COLUMNS: Final[tuple[str, ...]] = (
    "event_kind",
    "captured_at_monotonic",
    "stream",
    "sequence",
    "captured_correlation",
    "task_id",
    "task_execution_id",
    "task_lease_id",
    "request_attempt_id",
    "request_lease_id",
    "scheduler_resource_key",
    "request_resource_key",
    "reason_or_outcome",
)
"""The spec's timeline fields, in order (also the `timeline.csv` header, after `iteration`)."""

DEFAULT_TIMELINE_CAP: Final = 5_000
_SCHEDULER_FACT_KINDS: Final = frozenset(
    {
        "dependency_ready",
        "ready_enqueued",
        "selected",
        "task_lease_acquired",
        "task_lease_released",
    }
)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One outbound model request attempt as the request stream saw it."""

    started_at: float
    completed_at: float
    resource: str
    outcome: str


@dataclass(slots=True)
class EventDigest:
    """What one pass over both streams collected (times are raw monotonic seconds)."""

    timeline: list[dict[str, Any]] = field(default_factory=list)
    total_events: int = 0
    keep_fraction: float = 1.0
    job_started_at: float | None = None
    job_completed_at: float | None = None
    job_completed_diagnostics: dict[str, Any] = field(default_factory=dict)
    time_reversals: Counter[str] = field(default_factory=Counter)
    # scheduler facts: (t, kind, column, task_id, reason) for the kinds in _SCHEDULER_FACT_KINDS
    scheduler_facts: list[tuple[float, str, str | None, str | None, str | None]] = field(
        default_factory=list
    )
    completed_tasks: list[tuple[float, str]] = field(default_factory=list)
    checkpoints: list[tuple[float, int]] = field(default_factory=list)
    # request facts
    attempts: list[Attempt] = field(default_factory=list)
    lease_acquired: Counter[str] = field(default_factory=Counter)
    lease_released: Counter[str] = field(default_factory=Counter)
    model_requests_started: Counter[str] = field(default_factory=Counter)
    in_flight_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    peak_in_flight: Counter[str] = field(default_factory=Counter)
    limit_steps: defaultdict[str, list[tuple[float, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @property
    def sampling(self) -> dict[str, Any]:
        """How the stored timeline was bounded."""
        return {
            "total_events": self.total_events,
            "kept_events": len(self.timeline),
            "keep_fraction": self.keep_fraction,
            "rule": "all events"
            if self.keep_fraction >= 1.0
            else "whole task executions kept by a stable hash of task_execution_id; run-level "
            "events kept with the same probability",
        }


def digest_run(run_dir: Path, *, timeline_cap: int = DEFAULT_TIMELINE_CAP) -> EventDigest:
    """Read the run folder's two event streams once each (through `observability`)."""
    scheduler, requests = read_events(run_dir, "scheduler"), read_events(run_dir, "requests")
    d = EventDigest()
    d.total_events = scheduler.num_rows + requests.num_rows
    d.keep_fraction = 1.0 if d.total_events <= timeline_cap else timeline_cap / d.total_events
    _scheduler_pass(d, event_dicts(scheduler, "scheduler"))
    _request_pass(d, event_dicts(requests, "requests"))
    d.timeline.sort(key=lambda row: (row["captured_at_monotonic"], row["stream"], row["sequence"]))
    return d


def _keep(d: EventDigest, event: Mapping[str, Any], execution_id: str | None) -> bool:
    if d.keep_fraction >= 1.0:
        return True
    key = execution_id or f"{event.get('stream')}:{event.get('sequence')}"
    return (zlib.crc32(key.encode()) % 100_000) < d.keep_fraction * 100_000


def _timeline_row(event: Mapping[str, Any], execution_id: str | None) -> dict[str, Any]:
    corr = event.get("captured_correlation") or {}
    return {
        "event_kind": event.get("event_kind"),
        "captured_at_monotonic": event.get("captured_at_monotonic"),
        "stream": event.get("stream"),
        "sequence": event.get("sequence"),
        "captured_correlation": {k: v for k, v in corr.items() if v is not None},
        "task_id": event.get("task_id"),
        "task_execution_id": execution_id,
        "task_lease_id": event.get("task_lease_id"),
        "request_attempt_id": event.get("request_attempt_id"),
        "request_lease_id": event.get("request_lease_id"),
        "scheduler_resource_key": event.get("scheduler_resource_key"),
        "request_resource_key": event.get("request_resource_key"),
        "reason_or_outcome": event.get("reason"),
    }


def _scheduler_pass(d: EventDigest, events: Iterator[dict[str, Any]]) -> None:
    last_t = float("-inf")
    for e in events:
        kind = e["event_kind"]
        t = float(e["captured_at_monotonic"])
        if t < last_t:
            d.time_reversals["scheduler"] += 1
        last_t = max(last_t, t)
        ex_id = e.get("task_execution_id")
        if _keep(d, e, ex_id):
            d.timeline.append(_timeline_row(e, ex_id))
        corr = e.get("captured_correlation") or {}
        if kind in _SCHEDULER_FACT_KINDS:
            d.scheduler_facts.append(
                (t, kind, corr.get("task_column"), e.get("task_id"), e.get("reason"))
            )
        elif kind == "task_completed" and e.get("reason") in (None, "success"):
            task_id = e.get("task_id")
            if task_id:
                d.completed_tasks.append((t, task_id))
        elif kind == "row_group_checkpointed":
            rg = (e.get("diagnostics") or {}).get("row_group")
            if isinstance(rg, int):
                d.checkpoints.append((t, rg))
        elif kind == "scheduler_job_started" and d.job_started_at is None:
            d.job_started_at = t
        elif kind == "scheduler_job_completed":
            d.job_completed_at = t
            d.job_completed_diagnostics = dict(e.get("diagnostics") or {})


def _request_pass(d: EventDigest, events: Iterator[dict[str, Any]]) -> None:
    last_t = float("-inf")
    started: dict[str, tuple[float, str]] = {}
    in_flight: Counter[str] = Counter()
    changed_at: dict[str, float] = {}
    for e in events:
        kind = e["event_kind"]
        t = float(e["captured_at_monotonic"])
        if t < last_t:
            d.time_reversals["requests"] += 1
        last_t = max(last_t, t)
        corr = e.get("captured_correlation") or {}
        ex_id = corr.get("task_execution_id") or (e.get("diagnostics") or {}).get(
            "task_execution_id"
        )
        if _keep(d, e, ex_id):
            d.timeline.append(_timeline_row(e, ex_id))
        key = e.get("request_resource_key")
        attempt = e.get("request_attempt_id")
        snap = e.get("snapshot")
        if key and isinstance(snap, dict):
            limit = snap.get("current_limit")
            steps = d.limit_steps[key]
            if isinstance(limit, int) and (not steps or steps[-1][1] != limit):
                steps.append((t, limit))
        if kind == "request_resource_registered" and key:
            initial = (e.get("diagnostics") or {}).get("initial_limit")
            if isinstance(initial, int) and not d.limit_steps[key]:
                d.limit_steps[key].append((t, initial))
        elif (
            kind in ("request_limit_decreased", "request_limit_increased")
            and key
            and (e.get("diagnostics") or {}).get("scope") != "provider"  # not this resource's
        ):
            after = (e.get("diagnostics") or {}).get("after")
            steps = d.limit_steps[key]
            if isinstance(after, int) and (not steps or steps[-1][1] != after):
                steps.append((t, after))
        elif kind in ("request_lease_acquired", "request_lease_released") and key:
            if key in changed_at:
                d.in_flight_seconds[key] += in_flight[key] * (t - changed_at[key])
            changed_at[key] = t
            if kind == "request_lease_acquired":
                d.lease_acquired[key] += 1
                in_flight[key] += 1
                d.peak_in_flight[key] = max(d.peak_in_flight[key], in_flight[key])
            else:
                d.lease_released[key] += 1
                in_flight[key] -= 1
        elif kind == "model_request_started" and attempt and key:
            d.model_requests_started[key] += 1
            started[attempt] = (t, key)
        elif kind == "model_request_completed" and attempt:
            begun = started.pop(attempt, None)
            if begun is not None:
                d.attempts.append(Attempt(begun[0], t, begun[1], e.get("reason") or "unknown"))
