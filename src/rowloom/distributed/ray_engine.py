"""The Ray engine: a driver, worker actors and one limit coordinator actor per provider.

The driver validates the config, resolves its resources, owns `RunStorage` and is the only
writer of the manifest. It starts one `ShareCoordinator` actor per provider and `workers`
worker actors (each a `FleetWorker` running today's async engine), hands them batches of row
groups, commits the first completion of each group (an atomic rename into `data/`) and removes
any other attempt. A worker that dies has its batch re-queued and is replaced; a coordinator
that dies is restarted by Ray and starts low again. Without an address the driver starts a
local Ray runtime pinned to 127.0.0.1; with one it joins that cluster. This module is the only
place that imports `ray`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rowloom.builder.outputs import ReportWriter, RunMonitor, RunOutputs, RunSummary, run_status
from rowloom.builder.run_folder import RunRequest, open_run
from rowloom.builder.storage import ResumeMode, RunStorage
from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RunConfig
from rowloom.distributed.coordinator import ShareCoordinator, ShareKeyConfig
from rowloom.distributed.dispatch import (
    Batch,
    PartResult,
    RowGroupDispatcher,
    commit_attempt,
    fleet_buffer_size,
    remove_attempt,
)
from rowloom.distributed.link import provider_of
from rowloom.distributed.worker import FleetWorker, shares_enabled
from rowloom.errors import EngineUnavailableError, RunAbortedError
from rowloom.models.request_admission import RequestAdmissionConfig
from rowloom.models.request_admission.fleet import PROVIDER_PREFIX, share_keys
from rowloom.models.request_admission.shares import ShareGrant, ShareReport
from rowloom.models.resources import ModelResourceCatalog
from rowloom.models.usage import usage_report

_log = logging.getLogger(__name__)

INSTALL_HINT = "the Ray engine needs the ray extra: pip install 'rowloom[ray]'"
QUEUED_PER_WORKER = 1
"""Row groups a worker holds beyond those it runs at once (`max_concurrent_row_groups`): the
next is already fed in when one finishes."""
MAX_REPLACEMENTS_PER_WORKER = 3
"""A run stops when its workers died this many times each (something kills every worker)."""


def import_ray() -> Any:
    """The `ray` module, or `EngineUnavailableError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise EngineUnavailableError(INSTALL_HINT) from None
    return ray


def start_ray(address: str | None) -> Any:
    """Join `address`, or start a local runtime on loopback only (no usage stats)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address:
        ray.init(address=address, **options)
    else:
        os.environ.setdefault("RAY_NODE_IP_ADDRESS", "127.0.0.1")
        ray.init(_node_ip_address="127.0.0.1", **options)
    return ray


class CoordinatorActor:
    """One provider's `ShareCoordinator` as a Ray actor (wall monotonic time)."""

    def __init__(self, keys: Mapping[str, ShareKeyConfig]) -> None:
        self._coordinator = ShareCoordinator(keys)

    def report(self, worker: str, reports: dict[str, ShareReport]) -> dict[str, ShareGrant]:
        return self._coordinator.report(worker, reports, time.monotonic())

    def leave(self, worker: str) -> None:
        self._coordinator.leave(worker)

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        budgets = self._coordinator.budgets()
        for key, v in self._coordinator.view().items():
            out[key] = {
                "fleet_limit": v.limit,
                "max_limit": v.max_limit,
                "generation": v.generation,
                "ceiling": v.ceiling,
                "cuts": v.cuts,
                "reports": v.reports,
                "shares": dict(v.shares),
                "demands": dict(v.demands),
            }
            budget = budgets.get(key)
            if budget is not None:
                out[key]["request_budget"] = {
                    "known": budget.known,
                    "free": budget.free,
                    "handed_out": budget.outstanding,
                    "answers_applied": budget.observations,
                }
        return out


class WorkerActor:
    """A `FleetWorker` as a Ray actor; reports go to the coordinator actors."""

    def __init__(
        self,
        worker: str,
        config: DatasetConfig,
        run_config: RunConfig,
        num_records: int,
        run_dir: str,
        coordinators: Mapping[str, Any],
        keys: Mapping[str, int],
        shared: bool = True,
        breaks: tuple[int, ...] = (),
    ) -> None:
        self._coordinators = dict(coordinators)

        async def send(
            provider: str, worker: str, reports: dict[str, ShareReport]
        ) -> dict[str, ShareGrant]:
            grants: dict[str, ShareGrant] = await self._coordinators[provider].report.remote(
                worker, reports
            )
            return grants

        self._worker = FleetWorker(
            worker,
            config,
            run_config,
            num_records,
            Path(run_dir),
            send,
            keys,
            shared=shared,
            breaks=breaks,
        )

    async def ready(self) -> str:
        """Answers once the actor is up and its engine wired (before the first batch)."""
        self._worker.start()
        return self._worker.worker

    async def run_batch(self, batch: int, row_groups: list[int]) -> dict[str, Any]:
        return await self._worker.run_batch(batch, row_groups)

    async def close(self) -> dict[str, Any]:
        return await self._worker.close()


@dataclass
class FleetRecord:
    """What the driver keeps of the fleet for the run folder (`fleet.json`)."""

    workers: int
    address: str | None
    started: list[str] = field(default_factory=list)
    died: list[str] = field(default_factory=list)
    batches: int = 0
    requeued: int = 0
    duplicates: int = 0
    rows_by_worker: dict[str, int] = field(default_factory=dict)
    share_changes: list[dict[str, Any]] = field(default_factory=list)
    coordinators: dict[str, Any] = field(default_factory=dict)
    requests_by_worker: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "engine": "ray",
            "workers": self.workers,
            "ray_address": self.address,
            "workers_started": self.started,
            "workers_died": self.died,
            "batches": self.batches,
            "row_groups_requeued": self.requeued,
            "duplicate_attempts_removed": self.duplicates,
            "rows_by_worker": dict(sorted(self.rows_by_worker.items())),
            "requests_by_worker": dict(sorted(self.requests_by_worker.items())),
            "coordinators": self.coordinators,
            "share_changes": self.share_changes[-2000:],
        }


def _key_config(key: str, top: int, keys: Mapping[str, int], rc: RunConfig) -> ShareKeyConfig:
    """A key's settings; a resource of a provider with its own key is a fixed cap (the
    provider's key adapts, so one 429 does not cut both)."""
    adaptive = key.startswith(PROVIDER_PREFIX) or PROVIDER_PREFIX + provider_of(key) not in keys
    tuning = rc.request_admission
    if tuning is None:
        return ShareKeyConfig(top, adaptive=adaptive)
    return ShareKeyConfig(
        top,
        decrease_factor=tuning.multiplicative_decrease_factor,
        increase_step=tuning.additive_increase_step,
        successes_until_increase=tuning.successes_until_increase,
        adaptive=adaptive,
    )


def _keys_by_provider(config: DatasetConfig, rc: RunConfig) -> dict[str, dict[str, int]]:
    catalog = ModelResourceCatalog(config.models, config.providers)
    keys = share_keys(RequestAdmissionConfig.from_catalog(catalog, rc.request_admission))
    out: dict[str, dict[str, int]] = {}
    for key, top in keys.items():
        out.setdefault(provider_of(key), {})[key] = top
    return out


class RayDriver:
    """One Ray run (see the module docstring)."""

    def __init__(
        self,
        config: DatasetConfig,
        run_config: RunConfig,
        *,
        workers: int,
        address: str | None,
        monitor: RunMonitor | None = None,
        report: ReportWriter | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("the Ray engine needs at least one worker")
        self.config = config
        self.run_config = run_config
        self.workers = workers
        self.address = address
        self.monitor = monitor or RunMonitor()
        self.report = report
        self.fleet = FleetRecord(workers, address)
        self._breaks: tuple[int, ...] = ()

    async def build(
        self,
        num_records: int,
        *,
        run_dir: Path,
        name: str,
        resume: ResumeMode = False,
        overwrite: bool = False,
    ) -> RunOutputs:
        """Generate `num_records` rows into `run_dir` over the fleet (the run folder as
        `open_run` allows: `resume`, `overwrite`)."""
        config = self.config
        config.check_environment()
        ray = start_ray(self.address)
        storage = RunStorage(run_dir)
        buffer_size = self.run_config.buffer_size
        if "buffer_size" not in self.run_config.model_fields_set:
            buffer_size = fleet_buffer_size(num_records, self.workers)
        opened = open_run(
            storage,
            RunRequest(
                config.fingerprint(),
                num_records,
                buffer_size,
                config.output_columns(),
                config.to_dict(),
                resume=resume,
                overwrite=overwrite,
            ),
        )
        done = opened.done
        # every worker plans row groups with the run's own buffer_size
        self.run_config = rc = self.run_config.model_copy(
            update={"buffer_size": opened.buffer_size}
        )
        assert storage.manifest is not None
        plan = storage.manifest.plan()
        self._breaks = plan.breaks  # an extended run's row groups, for the workers
        pending = [rg for rg in range(plan.count) if rg not in done]
        summary = RunSummary(
            name, "ray", num_records, row_groups_total=plan.count, notes=opened.notes
        )
        summary.resumed_row_groups = len(done)
        summary.rows_written = sum(r.rows for r in storage.manifest.row_groups.values())
        self.monitor.rows_total = num_records
        self.monitor.rows_written = summary.rows_written
        self.monitor.rows_resumed = sum(plan.size(rg) for rg in done)
        keys = _keys_by_provider(config, rc)
        coordinators = {
            provider: ray.remote(CoordinatorActor)
            .options(num_cpus=0, max_restarts=-1, max_task_retries=0)
            .remote({k: _key_config(k, top, provider_keys, rc) for k, top in provider_keys.items()})
            for provider, provider_keys in keys.items()
        }
        flat_keys = {k: v for provider_keys in keys.values() for k, v in provider_keys.items()}
        started = time.monotonic()
        error: BaseException | None = None
        try:
            await self._run(ray, storage, pending, coordinators, flat_keys, num_records, summary)
        except BaseException as exc:
            error = exc
            raise
        finally:
            summary.wall_seconds = time.monotonic() - started
            summary.row_groups_done = len(storage.manifest.row_groups)
            summary.rows_written = sum(r.rows for r in storage.manifest.row_groups.values())
            summary.status, summary.stop_reason = run_status(summary, error)
            await self._finish(ray, storage, coordinators, summary)
        return RunOutputs(
            summary=summary,
            storage=storage,
            kept={},
            output_columns=config.output_columns(),
            capacity_plan={"fleet": self.fleet.as_json()},
        )

    async def _run(
        self,
        ray: Any,
        storage: RunStorage,
        pending: list[int],
        coordinators: Mapping[str, Any],
        keys: Mapping[str, int],
        num_records: int,
        summary: RunSummary,
    ) -> None:
        rc = self.run_config
        # a worker keeps one engine and row groups are fed into it: a batch of one row group
        # costs nothing to start and keeps the fleet balanced at the end of the run
        dispatcher = RowGroupDispatcher(pending, 1)
        actor = ray.remote(WorkerActor).options(num_cpus=0, max_restarts=0)
        serial = _last_worker_serial(storage.run_dir / "workers")

        def spawn() -> _Worker:
            nonlocal serial
            serial += 1
            name = f"w{serial}"
            self.fleet.started.append(name)
            handle = actor.remote(
                name,
                self.config,
                rc,
                num_records,
                str(storage.run_dir),
                coordinators,
                keys,
                shares_enabled(),
                self._breaks,
            )
            return _Worker(name, handle)

        depth = max(1, rc.max_concurrent_row_groups) + QUEUED_PER_WORKER
        loop = _FleetLoop(self, ray, storage, dispatcher, coordinators, spawn, summary)
        await loop.run(depth)

    async def _finish(
        self, ray: Any, storage: RunStorage, coordinators: Mapping[str, Any], summary: RunSummary
    ) -> None:
        for provider, handle in coordinators.items():
            try:
                self.fleet.coordinators[provider] = await _awaited(handle.view.remote())
            except Exception as exc:  # a lost coordinator must not hide the run's outcome
                self.fleet.coordinators[provider] = {"error": str(exc)}
            ray.kill(handle)
        assert storage.manifest is not None
        for counters in self.fleet.requests_by_worker.values():
            summary.request_attempts += int(counters.get("attempts", 0))
            summary.stragglers_cancelled += int(counters.get("stragglers_cancelled", 0))
            for kind, n in (counters.get("by_outcome") or {}).items():
                summary.requests_by_outcome[kind] = summary.requests_by_outcome.get(kind, 0) + n
        summary.error_samples = storage.manifest.error_samples()
        storage.finish(summary.status, summary.stop_reason)
        summary.token_usage = usage_report(
            storage.manifest.token_usage(), {m.alias: m.price for m in self.config.models}
        )
        storage.write_json(storage.run_dir / "fleet.json", self.fleet.as_json())
        storage.write_json(storage.summary_path, summary.to_dict())
        if self.report is None:
            return
        try:
            self.report(storage.run_dir, summary=summary.to_dict(), config=self.config.to_dict())
        except Exception:
            _log.exception("could not write the profile or the report")


@dataclass(eq=False)
class _Worker:
    """A live worker actor and how many batches it holds."""

    name: str
    handle: Any
    batches: int = 0
    resting: bool = False


class _FleetLoop:
    """The driver's loop: keep every worker fed, commit what comes back, replace the dead."""

    def __init__(
        self,
        driver: RayDriver,
        ray: Any,
        storage: RunStorage,
        dispatcher: RowGroupDispatcher,
        coordinators: Mapping[str, Any],
        spawn: Callable[[], _Worker],
        summary: RunSummary,
    ) -> None:
        self._driver = driver
        self._fleet = driver.fleet
        self._ray = ray
        self._storage = storage
        self._dispatcher = dispatcher
        self._coordinators = coordinators
        self._spawn = spawn
        self._summary = summary
        self._running: dict[asyncio.Future[Any], tuple[_Worker, Batch]] = {}
        self._live: list[_Worker] = []
        self._budget = MAX_REPLACEMENTS_PER_WORKER * driver.workers
        self._depth = 1

    async def run(self, depth: int) -> None:
        """Until every row group is committed (or a worker error / too many deaths raises).

        `depth`: batches each worker holds at once.
        """
        self._live = [self._spawn() for _ in range(self._driver.workers)]
        # every worker wires its engine (a process import each) before the first batch
        await asyncio.gather(*(_awaited(w.handle.ready.remote()) for w in self._live))
        graceful = False
        try:
            self._depth = depth
            while not self._dispatcher.finished:
                self._dispatch()
                if not self._running:
                    break
                for worker in self._live:  # nothing left for it: its shares go to the others
                    if worker.batches == 0 and not worker.resting:
                        worker.resting = True
                        await _leave(self._coordinators, worker.name)
                finished, _ = await asyncio.wait(self._running, return_when=FIRST_COMPLETED)
                for future in finished:
                    await self._settle(future)
            graceful = True
        finally:
            await self._stop(graceful)

    def _dispatch(self) -> None:
        """Fill every worker up to its depth, one round of workers at a time."""
        for depth in range(1, self._depth + 1):
            for worker in self._live:
                if worker.batches >= depth:
                    continue
                batch = self._dispatcher.next_batch(worker.name)
                if batch is None:
                    return
                ref = worker.handle.run_batch.remote(batch.number, batch.row_groups)
                self._running[asyncio.ensure_future(_awaited(ref))] = (worker, batch)
                worker.batches += 1
                worker.resting = False
                self._fleet.batches += 1

    async def _settle(self, future: asyncio.Future[Any]) -> None:
        worker, batch = self._running.pop(future)
        worker.batches -= 1
        exc = future.exception()
        if exc is None:
            self._dispatch()  # its next batch first: committing (fsyncs) must not idle it
            self._commit(batch, future.result())
            return
        if not isinstance(exc, self._ray.exceptions.RayActorError):
            raise exc
        self._dispatcher.fail(batch)
        if worker not in self._live:  # another batch of a worker already replaced
            return
        _log.warning("worker %s died: %s; its row groups run again", worker.name, exc)
        self._live.remove(worker)
        self._fleet.died.append(worker.name)
        await _leave(self._coordinators, worker.name)
        self._budget -= 1
        if self._budget < 0:
            raise RunAbortedError("Ray workers keep dying; stopping the run")
        self._live.append(self._spawn())

    def _commit(self, batch: Batch, outcome: Mapping[str, Any]) -> None:
        """Commit the batch's first completions (checked), remove later attempts."""
        results: list[PartResult] = list(outcome["results"])
        commit, extra = self._dispatcher.complete(batch, results)
        for result in commit:
            if not commit_attempt(self._storage, result):
                _log.warning(
                    "attempt %s of row group %d failed its check", result.attempt, result.row_group
                )
                self._dispatcher.reject(result)
                remove_attempt(result)
                continue
            self._driver.monitor.on_checkpoint(result.row_group, result.rows)
            self._driver.monitor.on_rows_finished(result.rows + sum(result.dropped.values()))
            self._summary.add_dropped(result.dropped)
            rows = self._fleet.rows_by_worker
            rows[result.worker] = rows.get(result.worker, 0) + result.rows
        for result in extra:
            remove_attempt(result)
        self._note(batch.worker, outcome)

    def _note(self, worker: str, outcome: Mapping[str, Any]) -> None:
        """Keep a worker's share changes and its latest (cumulative) request counters."""
        self._fleet.share_changes.extend(outcome.get("shares", []))
        if outcome.get("requests"):
            self._fleet.requests_by_worker[worker] = dict(outcome["requests"])

    async def _stop(self, graceful: bool) -> None:
        """Close the workers (their engines finalise) after a finished run; kill otherwise."""
        for future in self._running:
            future.cancel()
        self._fleet.requeued = self._dispatcher.requeued
        self._fleet.duplicates = self._dispatcher.duplicates
        if graceful:
            closed = await asyncio.gather(
                *(_awaited(w.handle.close.remote()) for w in self._live), return_exceptions=True
            )
            for worker, outcome in zip(self._live, closed, strict=True):
                if isinstance(outcome, BaseException):
                    _log.warning("worker %s did not close cleanly: %s", worker.name, outcome)
                else:
                    self._note(worker.name, outcome)
        for worker in self._live:
            await _leave(self._coordinators, worker.name)
            self._ray.kill(worker.handle)


async def _awaited(ref: Any) -> Any:
    return await ref


async def _leave(coordinators: Mapping[str, Any], worker: str) -> None:
    for handle in coordinators.values():
        try:
            await _awaited(handle.leave.remote(worker))
        except Exception:  # a lost coordinator forgets its workers anyway
            _log.debug("could not tell a coordinator that %s left", worker)


def _last_worker_serial(workers: Path) -> int:
    """The highest `w<N>` an earlier driver of this run used: a resumed run's workers get fresh
    folders (the dead session's folders hold stopped runs that must not be reopened)."""
    numbers = [int(p.name[1:]) for p in workers.glob("w*") if p.name[1:].isdigit()]
    return max(numbers, default=0)
