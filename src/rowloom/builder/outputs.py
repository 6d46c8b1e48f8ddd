"""What a run hands back: its summary, its outputs, the live monitor, and the report seam."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rowloom.builder.storage import ErrorSample, RunStorage
from rowloom.config.models import ModelPrice
from rowloom.errors import RunAbortedError

if TYPE_CHECKING:
    from rowloom.models.clients.model_request_executor import ModelRequestExecutor
    from rowloom.models.request_admission import AdaptiveRequestAdmissionController
    from rowloom.scheduling import TaskAdmissionController


def run_status(
    summary: RunSummary, error: BaseException | None, stop_reason: str | None = None
) -> tuple[str, str | None]:
    """`(status, reason)` of a finished or stopped run, the one definition the summary, the
    manifest, the report and the exit code share: `complete` only when every row group
    finished without error and every requested row was written; otherwise `incomplete`, with
    why (cancelled, the error, the engine's `stop_reason`, or the rows dropped)."""
    if error is None and summary.row_groups_done == summary.row_groups_total:
        if summary.rows_written >= summary.num_records:
            return "complete", None
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(summary.dropped_rows.items()))
        missing = summary.num_records - summary.rows_written
        return (
            "incomplete",
            f"{missing} of {summary.num_records} rows dropped ({dropped or 'no reason recorded'})",
        )
    if isinstance(error, asyncio.CancelledError | KeyboardInterrupt):
        return "incomplete", "cancelled"
    if isinstance(error, RunAbortedError):
        return "incomplete", str(error)
    if error is not None:
        return "incomplete", f"{type(error).__name__}: {error}"
    return "incomplete", stop_reason or "not every row group finished"


@dataclass(slots=True)
class RunSummary:
    """What a run did, for people: rows, drops by reason, requests, time, status."""

    name: str
    engine: str
    num_records: int
    rows_written: int = 0
    row_groups_done: int = 0
    row_groups_total: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)
    requests_by_outcome: dict[str, int] = field(default_factory=dict)
    request_attempts: int = 0
    wall_seconds: float = 0.0
    status: str = "running"
    stop_reason: str | None = None
    resumed_row_groups: int = 0
    token_usage: dict[str, Any] = field(default_factory=dict)
    """`usage_report` over every session of the run (kept row groups and discarded work)."""
    error_samples: list[ErrorSample] = field(default_factory=list)
    stragglers_cancelled: int = 0
    """Request attempts cancelled (and retried) for running far beyond their model's p99."""
    notes: list[str] = field(default_factory=list)
    """What happened to the run folder (a new run, resumed, extended, the old run moved)."""

    def __repr__(self) -> str:
        dropped = f", dropped {self.dropped_rows}" if self.dropped_rows else ""
        stop = f" ({self.stop_reason})" if self.stop_reason else ""
        return (
            f"RunSummary({self.name!r}: {self.status}{stop}, {self.rows_written}/"
            f"{self.num_records} rows{dropped}, {self.request_attempts} requests, "
            f"{self.wall_seconds:.1f} s)"
        )

    def add_dropped(self, dropped: Mapping[str, int]) -> None:
        """Add dropped-row counts by reason."""
        for reason, n in dropped.items():
            self.dropped_rows[reason] = self.dropped_rows.get(reason, 0) + n

    @property
    def every_row_written(self) -> bool:
        """True when the run is `complete` (see `run_status`; exit code 0)."""
        return self.status == "complete"

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (what `summary.json` holds)."""
        return {
            "name": self.name,
            "engine": self.engine,
            "num_records": self.num_records,
            "rows_written": self.rows_written,
            "row_groups_done": self.row_groups_done,
            "row_groups_total": self.row_groups_total,
            "dropped_rows": dict(self.dropped_rows),
            "request_attempts": self.request_attempts,
            "requests_by_outcome": dict(self.requests_by_outcome),
            "wall_seconds": round(self.wall_seconds, 3),
            "status": self.status,
            "stop_reason": self.stop_reason,
            "resumed_row_groups": self.resumed_row_groups,
            "token_usage": self.token_usage,
            "error_samples": [e.as_json() for e in self.error_samples],
            "stragglers_cancelled": self.stragglers_cancelled,
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """The summary as a JSON document."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """A summary from `to_dict()` output (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["error_samples"] = [ErrorSample.from_json(e) for e in data.get("error_samples", [])]
        return cls(**values)


@dataclass(slots=True)
class RunOutputs:
    """Everything a finished (or stopped) run leaves behind."""

    summary: RunSummary
    storage: RunStorage | None
    kept: dict[int, dict[str, list[Any]]]
    output_columns: list[str]
    capacity_plan: dict[str, Any]
    kept_errors: dict[int, list[ErrorSample]] = field(default_factory=dict)
    processor_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Processor outputs of an in-memory run (preview), by processor."""


class RunMonitor:
    """Read-only live view of a running build, for progress displays and benchmarks.

    The controllers are set when the run is wired (`task_admission` stays None for the
    sequential engine); read them, never call their mutating methods.
    """

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.rows_total = 0
        self.rows_resumed = 0
        """Rows already written by an earlier session of the run."""
        self.rows_finished = 0
        """Rows this session finished (all their columns done, or dropped), as they finish."""
        self.rows_written = 0
        """Rows in the run's checkpointed row groups (resumed ones included)."""
        self.tasks_done = 0
        self.admission: AdaptiveRequestAdmissionController | None = None
        self.executor: ModelRequestExecutor | None = None
        self.task_admission: TaskAdmissionController | None = None
        self.prices: dict[str, ModelPrice | None] = {}

    def on_checkpoint(self, row_group: int, rows: int) -> None:
        self.rows_written += rows

    def on_rows_finished(self, rows: int) -> None:
        self.rows_finished += rows

    def on_task_done(self) -> None:
        self.tasks_done += 1


class ReportWriter(Protocol):
    """Writes a finished run's reports (profile, report page) into its folder, from the run's
    summary and config as JSON; the interface hands one to the builder."""

    def __call__(
        self, run_dir: Path, *, summary: dict[str, Any], config: dict[str, Any]
    ) -> object: ...
