"""Run one dataset through `DatasetBuilder` and capture what a benchmark iteration needs.

A run writes a real run folder (parquet parts, manifest, events JSONL, capacity plan), exactly
as `rowloom create` does, so the events the metrics are derived from are the ones users get.
Measured: wall time, process CPU time and peak RSS of `build()` only (not the analysis), and
the monotonic moments `build()` was called and returned (the start-up and tail metrics set the
request events against them).
Captured afterwards: the final task and request admission snapshots (the leak check), the
provider-side counters, the capacity plan and the output hash.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rowloom.bench.machine import Measurement, measure
from rowloom.bench.providers import ProviderFleet
from rowloom.bench.switches import engine_options
from rowloom.builder.builder import DatasetBuilder, Engine
from rowloom.builder.outputs import RunMonitor
from rowloom.clock import Clock
from rowloom.config.dataset import DatasetConfig
from rowloom.config.models import ModelProvider
from rowloom.interface.report import write_run_report
from rowloom.interface.results import DatasetResult
from rowloom.models.clients import make_model_client
from rowloom.models.clients.base import ModelClient


@dataclass(frozen=True, slots=True)
class RunCapture:
    """One finished (or deliberately cancelled) build and its end-of-run state."""

    run_dir: Path
    status: str
    stop_reason: str | None
    summary: dict[str, Any]
    capacity_plan: dict[str, Any]
    measurement: Measurement
    final_task_snapshot: dict[str, Any]
    final_request_snapshot: dict[str, Any]
    provider_stats: dict[str, dict[str, Any]]
    output_hash: str | None
    cancelled: bool = False
    called_at: float | None = None
    """`time.monotonic()` when `build()` was called (the event streams' clock)."""
    returned_at: float | None = None
    """`time.monotonic()` when `build()` returned or raised."""

    @property
    def submission_capacity(self) -> int | None:
        """The run's task submission capacity, from its capacity plan."""
        try:
            value = self.capacity_plan["configured"]["submission_capacity"]["value"]
        except (KeyError, TypeError):
            return None
        return value if isinstance(value, int) else None

    def leaks(self) -> list[str]:
        """Findings that break "zero task leases, zero request leases, zero waiters"."""
        return leak_findings(self.final_task_snapshot, self.final_request_snapshot)


def leak_findings(task: dict[str, Any], request: dict[str, Any]) -> list[str]:
    """Leases or waiters left at the end of a run, in words (empty when clean)."""
    found = []
    if task.get("active_leases"):
        found.append(f"{task['active_leases']} task lease(s) still active")
    leased = {k: v for k, v in (task.get("leased") or {}).items() if v}
    if leased:
        found.append(f"task resources still leased: {leased}")
    if request.get("in_flight_total"):
        found.append(f"{request['in_flight_total']} request lease(s) still in flight")
    if request.get("waiters_total"):
        found.append(f"{request['waiters_total']} request waiter(s) left")
    counters = request.get("counters") or {}
    granted, released = counters.get("leases_granted"), counters.get("leases_released")
    if isinstance(granted, int) and isinstance(released, int) and granted != released:
        found.append(f"request leases granted {granted} != released {released}")
    return found


class _Monitor(RunMonitor):
    """A `RunMonitor` that can signal when `cancel_after` tasks have finished."""

    def __init__(self, cancel_after: int | None) -> None:
        super().__init__()
        self._cancel_after = cancel_after
        self.reached: asyncio.Event = asyncio.Event()

    def on_task_done(self) -> None:
        super().on_task_done()
        if self._cancel_after is not None and self.tasks_done >= self._cancel_after:
            self.reached.set()


@dataclass(slots=True)
class _Clients:
    made: list[ModelClient] = field(default_factory=list)

    def __call__(
        self, provider: ModelProvider, *, max_connections: int, clock: Clock | None = None
    ) -> ModelClient:
        client = make_model_client(provider, max_connections=max_connections, clock=clock)
        self.made.append(client)
        return client


async def run_dataset(
    config: DatasetConfig,
    records: int,
    run_dir: Path,
    *,
    engine: Engine = "async",
    fleet: ProviderFleet | None = None,
    resume: bool = False,
    cancel_after_tasks: int | None = None,
    hash_output: bool = True,
) -> RunCapture:
    """Build `records` rows of `config` into `run_dir` and capture the run.

    `cancel_after_tasks` cancels the build once that many tasks finished (the capture then has
    `cancelled=True`); `resume=True` continues a stopped run in the same folder.
    """
    clients = _Clients()
    monitor = _Monitor(cancel_after_tasks)
    before = await asyncio.to_thread(fleet.server_stats) if fleet and fleet.servers else {}
    builder = DatasetBuilder(
        config,
        engine=engine,
        monitor=monitor,
        client_factory=clients,
        report=write_run_report,
        options=engine_options(),
    )
    cancelled = False
    failure: str | None = None
    outputs = None
    with measure() as measurement:
        called_at = time.monotonic()
        build = asyncio.ensure_future(
            builder.build(records, run_dir=run_dir, name=run_dir.name, resume=resume)
        )
        if cancel_after_tasks is not None:
            waiter = asyncio.ensure_future(monitor.reached.wait())
            await asyncio.wait({build, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not build.done():
                build.cancel()
        try:
            outputs = await build
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves
            cancelled = True
        except Exception as exc:  # a failed run is a finding, not a harness crash
            failure = f"{type(exc).__name__}: {exc}"
        returned_at = time.monotonic()
    stats = _since(await _provider_stats(clients.made, fleet), before)
    if outputs is not None:
        summary = outputs.summary.to_dict()
    else:
        summary = {"status": "cancelled" if cancelled else "failed", "stop_reason": failure}
    plan = outputs.capacity_plan if outputs is not None else {}
    digest = None
    if outputs is not None and hash_output and outputs.storage is not None:
        digest = await asyncio.to_thread(DatasetResult.from_outputs(outputs).output_hash)
    status = str(summary.get("status"))
    if status == "incomplete" and summary.get("row_groups_done") == summary.get("row_groups_total"):
        status = "complete"  # ran to the end; the rows it dropped are the workload's, counted apart
    return RunCapture(
        run_dir=run_dir,
        status=status,
        stop_reason=summary.get("stop_reason"),
        summary=summary,
        capacity_plan=plan,
        measurement=measurement,
        final_task_snapshot=_task_snapshot(builder, monitor),
        final_request_snapshot=_request_snapshot(monitor),
        provider_stats=stats,
        output_hash=digest,
        cancelled=cancelled,
        called_at=called_at,
        returned_at=returned_at,
    )


def _task_snapshot(builder: DatasetBuilder, monitor: RunMonitor) -> dict[str, Any]:
    admission = monitor.task_admission
    if admission is None:
        reason = (
            "the sequential engine has no task admission"
            if builder.engine == "sequential"
            else "the run stopped before task admission existed"
        )
        return {"missing_reason": reason, "active_leases": 0, "leased": {}}
    snapshot: dict[str, Any] = admission.view().as_json()
    return snapshot


def _request_snapshot(monitor: RunMonitor) -> dict[str, Any]:
    admission = monitor.admission
    if admission is None:
        return {"missing_reason": "the run stopped before request admission existed"}
    view = admission.capacity_view().as_json()
    return {
        "in_flight_total": admission.in_flight_total(),
        "waiters_total": admission.waiters_total(),
        "shutdown": admission.is_shutdown,
        "counters": dataclasses.asdict(admission.counters()),
        "runtime_snapshot": view["runtime_snapshot"],
    }


def _since(
    after: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Server counters of this run only (a server may outlive one run, e.g. across a resume);
    gauges, peaks and latency percentiles are kept as they are."""
    out: dict[str, dict[str, Any]] = {}
    for name, now in after.items():
        then = before.get(name, {})
        out[name] = {
            k: v - then.get(k, 0)
            if isinstance(v, int) and not any(g in k for g in ("peak", "in_flight", "depth"))
            else v
            for k, v in now.items()
        }
    return out


async def _provider_stats(
    clients: list[ModelClient], fleet: ProviderFleet | None
) -> dict[str, dict[str, Any]]:
    if fleet is not None and fleet.servers:
        return await asyncio.to_thread(fleet.server_stats)
    out: dict[str, dict[str, Any]] = {}
    for client in clients:
        model = getattr(client, "capacity_model", None)
        if model is not None:
            out[client.provider_name] = model.stats().as_dict()
    return out
