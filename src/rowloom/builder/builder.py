"""`DatasetBuilder`: one run from config to artifacts.

It wires the layers for a run: the model catalog and generators, provider clients, request
admission and the `ModelRequestExecutor`, the engine (async scheduler or the sequential
oracle), storage, event streams, the capacity plan and the report. Nothing already
checkpointed is lost when a run fails or is cancelled: the manifest records what is done.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal

from rowloom.builder.host import GenerationHost
from rowloom.builder.processors import build_processors, without_dropped
from rowloom.builder.row_groups import RowGroupPlan
from rowloom.builder.sequential import SequentialEngine
from rowloom.builder.storage import ErrorSample, ResumeMode, RunStorage
from rowloom.capacity import AsyncCapacityPlan, CapacityValue, SchedulerMaxima, build_capacity_plan
from rowloom.clock import Clock, SystemClock
from rowloom.config.dataset import DatasetConfig
from rowloom.config.models import ModelPrice
from rowloom.config.run import RunConfig
from rowloom.errors import RunAbortedError
from rowloom.generators import ColumnGenerator, build_generators
from rowloom.models.clients import make_model_client
from rowloom.models.clients.base import ModelClient, TransportPoolLimits
from rowloom.models.clients.model_request_executor import ModelRequestExecutor
from rowloom.models.facade import ModelFacade
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestDomain,
    RequestPressureSnapshotProvider,
    RequestResourceKey,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog
from rowloom.models.usage import UsageTotals, usage_report
from rowloom.observability.correlation import RuntimeCorrelationProvider
from rowloom.observability.events import RequestEventEmitter, SchedulerEventEmitter
from rowloom.observability.sinks import FanOutEventSink, JsonlEventSink
from rowloom.profile import write_profile
from rowloom.scheduler import AsyncTaskScheduler, SchedulerConfig, SchedulerOutcome
from rowloom.scheduling import (
    LOCAL,
    BoundedBorrowPolicyConfig,
    ColumnNode,
    CompletionTracker,
    FairTaskQueue,
    ProviderAwarePolicyConfig,
    RequestPressure,
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskSchedulingResolver,
)
from rowloom.scheduling.breaker import ErrorRateBreaker
from rowloom.scheduling.task_policies import TaskAdmissionPolicyConfig, build_policy
from rowloom.seeds import compile_seed

_log = logging.getLogger(__name__)

LOCAL_TASK_SLOTS = 8
"""Concurrent local tasks (samplers, expressions, custom functions without models)."""

Engine = Literal["async", "sequential"]


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

    @property
    def every_row_written(self) -> bool:
        """True when the run finished and wrote every requested row (exit code 0)."""
        return self.status == "complete" and self.rows_written >= self.num_records

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
    """Read-only live view of a running build, for progress displays."""

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.rows_done = 0
        self.rows_total = 0
        self.tasks_done = 0
        self.admission: AdaptiveRequestAdmissionController | None = None
        self.executor: ModelRequestExecutor | None = None
        self.prices: dict[str, ModelPrice | None] = {}

    def on_checkpoint(self, row_group: int, rows: int) -> None:
        self.rows_done += rows

    def on_task_done(self) -> None:
        self.tasks_done += 1


class DatasetBuilder:
    """Builds one dataset run. Use `Designer` unless you need the pieces."""

    def __init__(
        self,
        config: DatasetConfig,
        *,
        run_config: RunConfig | None = None,
        engine: Engine = "async",
        clock: Clock | None = None,
        monitor: RunMonitor | None = None,
        client_factory: Callable[..., ModelClient] = make_model_client,
        on_admission: Callable[[AdaptiveRequestAdmissionController], None] | None = None,
        storage_factory: Callable[[Path], RunStorage] = RunStorage,
    ) -> None:
        self.config = config
        self.run_config = run_config or config.run_config
        self.engine = engine
        self.clock = clock or SystemClock()
        self.monitor = monitor or RunMonitor()
        self._client_factory = client_factory
        self._on_admission = on_admission
        self._storage_factory = storage_factory
        self.task_admission_config: TaskAdmissionConfig | None = None
        self.task_admission: TaskAdmissionController | None = None
        self._engine_outcome: SchedulerOutcome | None = None

    async def build(
        self,
        num_records: int,
        *,
        run_dir: Path | None,
        name: str,
        resume: ResumeMode = False,
        row_groups: Sequence[int] | None = None,
    ) -> RunOutputs:
        """Generate `num_records` rows; write them under `run_dir` (None: keep in memory).

        `row_groups` limits the run to those row groups of the plan (a Ray worker's share of
        a run; in memory, it is the caller's to write them).
        """
        self.config.check_environment()
        config, seed_data = compile_seed(self.config)
        rc = self.run_config
        plan = RowGroupPlan(num_records, rc.buffer_size)
        catalog = ModelResourceCatalog(config.models, config.providers)
        generators = build_generators(config, catalog, seed_data)
        processors = build_processors(config.processors)
        output_columns = without_dropped(config.output_columns(), processors)
        storage = self._storage_factory(run_dir) if run_dir is not None else None
        done: set[int] = set()
        if storage is not None:
            done = storage.open(
                fingerprint=config.fingerprint(),
                num_records=num_records,
                buffer_size=rc.buffer_size,
                output_columns=output_columns,
                resume=resume,
            )
        summary = RunSummary(
            name=name,
            engine=self.engine,
            num_records=num_records,
            row_groups_total=plan.count,
            resumed_row_groups=len(done),
        )
        if storage is not None and storage.manifest is not None:
            summary.rows_written = sum(r.rows for r in storage.manifest.row_groups.values())
            for rec in storage.manifest.row_groups.values():
                for reason, n in rec.dropped.items():
                    summary.dropped_rows[reason] = summary.dropped_rows.get(reason, 0) + n
        self.monitor.rows_total = num_records
        self.monitor.rows_done = summary.rows_written

        write_events = storage is not None and rc.write_events
        sched_sink = (
            JsonlEventSink[Any](storage.events_dir / "scheduler.jsonl")
            if write_events and storage
            else None
        )
        req_sink = (
            JsonlEventSink[Any](storage.events_dir / "requests.jsonl")
            if write_events and storage
            else None
        )
        correlation = RuntimeCorrelationProvider()
        run_id = uuid.uuid4().hex[:12]
        sched_events = SchedulerEventEmitter(sched_sink, self.clock.monotonic, correlation)
        req_events = RequestEventEmitter(req_sink, self.clock.monotonic, correlation)

        resolver = RequestResourceResolver(catalog)
        admission_config = RequestAdmissionConfig.from_catalog(catalog, rc.request_admission)
        admission = AdaptiveRequestAdmissionController(
            admission_config, clock=self.clock, events=req_events
        )
        if self._on_admission is not None:
            self._on_admission(admission)
        used_providers = {m.provider for m in config.models}
        clients: dict[str, ModelClient] = {}
        for pname in sorted(used_providers):
            provider = catalog.provider(pname)
            pool = sum(c.cap for k, c in catalog.static_caps().items() if k.provider_name == pname)
            clients[pname] = self._client_factory(
                provider, max_connections=max(1, pool), clock=self.clock
            )
        executor = ModelRequestExecutor(
            resolver=resolver,
            clients=clients,
            admission=admission,
            events=req_events,
            correlation=correlation,
            clock=self.clock,
            stragglers=rc.stragglers,
            seed=config.effective_seed,
        )
        self.monitor.admission = admission
        self.monitor.executor = executor
        self.monitor.prices = {m.alias: m.price for m in config.models}

        def facade_for(gen: ColumnGenerator) -> ModelFacade | None:
            return ModelFacade(executor, gen.model_aliases) if gen.model_aliases else None

        host = GenerationHost(
            generators,
            plan,
            config.effective_seed,
            output_columns,
            facade_for,
            storage,
            on_checkpoint=self._on_checkpoint(sched_sink, req_sink),
            usage=executor.usage,
            processors=processors,
        )
        wanted = range(plan.count) if row_groups is None else sorted(set(row_groups))
        pending = [rg for rg in wanted if rg not in done]
        started = time.monotonic()
        error: BaseException | None = None
        try:
            await self._run_engine(
                host,
                config,
                rc,
                pending,
                sched_events,
                correlation,
                run_id,
                catalog,
                admission.pressure,
            )
        except BaseException as exc:  # record what is done, then re-raise
            error = exc
            raise
        finally:
            summary.wall_seconds = time.monotonic() - started
            summary.rows_written += host.stats.rows_written
            summary.row_groups_done = len(done) + host.stats.row_groups
            for reason, n in host.stats.dropped.items():
                summary.dropped_rows[reason] = summary.dropped_rows.get(reason, 0) + n
            summary.request_attempts = executor.stats.attempts
            summary.requests_by_outcome = dict(executor.stats.by_outcome or {})
            summary.stragglers_cancelled = executor.stragglers_cancelled
            admission.shutdown()
            if seed_data is not None:
                seed_data.close()
            pools = {name: c.transport_pool_limits for name, c in clients.items()}
            await asyncio.gather(*(c.aclose() for c in clients.values()), return_exceptions=True)
            for sink in (sched_sink, req_sink):
                if sink is not None:
                    sink.close()
            outcome = self._engine_outcome or SchedulerOutcome()
            summary.status, summary.stop_reason = _status(summary, outcome, error)
            capacity_plan = self._capacity_plan(admission, pools, outcome)
            discarded = executor.usage.take_rest()
            summary.error_samples = (
                storage.manifest.error_samples()
                if storage is not None and storage.manifest is not None
                else list(host.error_samples)
            )
            if storage is not None:
                storage.finish(summary.status, summary.stop_reason, discarded)
            summary.token_usage = _token_usage(config, storage, host.kept_usage, discarded)
            if storage is not None:
                _write_run_artifacts(storage, capacity_plan, summary, self.config.to_dict())
        return RunOutputs(
            summary=summary,
            storage=storage,
            kept=host.kept,
            kept_errors=host.kept_errors,
            processor_rows={
                name: [r for _, rows in sorted(by_group.items()) for r in rows]
                for name, by_group in host.kept_processor_rows.items()
            },
            output_columns=output_columns,
            capacity_plan=capacity_plan.as_json() if capacity_plan is not None else {},
        )

    def _capacity_plan(
        self,
        admission: AdaptiveRequestAdmissionController,
        pools: dict[str, TransportPoolLimits | None],
        outcome: SchedulerOutcome,
    ) -> AsyncCapacityPlan | None:
        """The run's capacity plan; never raises (a failure is logged, the run's error wins)."""
        try:
            return build_capacity_plan(
                config=self.config,
                run_config=self.run_config,
                engine=self.engine,
                task_admission_config=self.task_admission_config,
                task_admission_view=(
                    self.task_admission.view() if self.task_admission is not None else None
                ),
                task_policy=(
                    CapacityValue(
                        self.task_admission.policy.name,
                        "environment"
                        if os.environ.get(TASK_POLICY_ENV)
                        else "engine_internal_config",
                    )
                    if self.task_admission is not None
                    else None
                ),
                request_admission=admission.capacity_view(),
                transport_pools=pools,
                scheduler=SchedulerMaxima(
                    outcome.max_row_groups_in_flight if self.engine == "async" else None,
                    dict(outcome.max_queued_by_group),
                ),
            )
        except Exception:
            _log.exception("could not build the capacity plan")
            return None

    def _on_checkpoint(self, *sinks: Any) -> Callable[[int, int], None]:
        fan = FanOutEventSink[Any](*(s for s in sinks if s is not None))

        def on_checkpoint(row_group: int, rows: int) -> None:
            fan.flush()
            self.monitor.on_checkpoint(row_group, rows)

        return on_checkpoint

    async def _run_engine(
        self,
        host: GenerationHost,
        config: DatasetConfig,
        rc: RunConfig,
        pending: list[int],
        sched_events: SchedulerEventEmitter,
        correlation: RuntimeCorrelationProvider,
        run_id: str,
        catalog: ModelResourceCatalog,
        pressure: RequestPressureSnapshotProvider | None = None,
    ) -> SchedulerOutcome:
        if self.engine == "sequential":
            engine = SequentialEngine(
                host,
                config.topological_order,
                max_salvage_rounds=rc.max_salvage_rounds,
                breaker=ErrorRateBreaker(rc.breaker_threshold, rc.shutdown_error_window),
                on_task_done=self.monitor.on_task_done,
            )
            self._engine_outcome = engine.outcome
            return await engine.run(pending)
        resolver = TaskSchedulingResolver()
        nodes = []
        for name in config.topological_order:
            gen = host.generators[name]
            resolver.resolve(name, gen)
            nodes.append(ColumnNode(name, config.dependencies[name], gen.task_type))
        self.task_admission_config = task_admission_config(catalog, resolver)
        reader = RequestPressureBridge(pressure) if pressure is not None else None
        self.task_admission = TaskAdmissionController(
            self.task_admission_config,
            self.clock,
            policy=build_policy(self.task_admission_config.policy, reader),
        )
        scheduler = AsyncTaskScheduler(
            host=host,
            tracker=CompletionTracker(nodes, resolver.schedulable),
            queue=FairTaskQueue(),
            admission=self.task_admission,
            events=sched_events,
            correlation=correlation,
            clock=self.clock,
            config=SchedulerConfig(
                max_concurrent_row_groups=rc.max_concurrent_row_groups,
                max_salvage_rounds=rc.max_salvage_rounds,
                error_rate_threshold=rc.breaker_threshold,
                error_rate_window=rc.shutdown_error_window,
            ),
            run_id=run_id,
            on_task_done=self.monitor.on_task_done,
        )
        self._engine_outcome = scheduler.outcome
        return await scheduler.run(pending)


def _write_run_artifacts(
    storage: RunStorage,
    plan: AsyncCapacityPlan | None,
    summary: RunSummary,
    config: dict[str, Any],
) -> None:
    """Write `capacity_plan.json`, `profile.json` and `report.html`; never raises (failures
    are logged)."""
    from rowloom.interface.report import write_report

    try:
        if plan is not None:
            storage.write_json(storage.capacity_plan_path, plan.as_json())
        storage.write_json(storage.summary_path, summary.to_dict())
        if storage.writes_report:
            write_profile(storage.run_dir, config)
            write_report(storage.run_dir, summary=summary.to_dict())
    except Exception:
        _log.exception("could not write the capacity plan, the profile or the report")


def task_admission_config(
    catalog: ModelResourceCatalog, resolver: TaskSchedulingResolver
) -> TaskAdmissionConfig:
    """Task-stage capacity for a run (engine-internal).

    Submission slots are twice the summed static caps of the endpoints the run uses, plus the
    local slots, so request admission (not task admission) is what limits model traffic, while
    the bounded-borrow policy keeps one column from holding every slot and the provider-aware
    policy keeps a cooled-down provider's tasks from holding slots other providers could use
    (see `task_policy_config`).
    """
    endpoints = {
        r.group.key.identity[1:3]
        for r in resolver.resolutions().values()
        if r.group.key.kind == "model"
    }
    model_slots = sum(
        cap.cap
        for key, cap in catalog.static_caps().items()
        if (key.provider_name, key.model_id) in endpoints
    )
    custom = sum(
        r.group.weight
        for r in resolver.resolutions().values()
        if r.group.key.kind == "custom_model"
    )
    return TaskAdmissionConfig(
        submission_capacity=2 * (model_slots + custom) + LOCAL_TASK_SLOTS,
        resource_limits={LOCAL: LOCAL_TASK_SLOTS},
        policy=task_policy_config(),
    )


TASK_POLICY_ENV: Final = "ROWLOOM_TASK_ADMISSION_POLICY"


def task_policy_config() -> TaskAdmissionPolicyConfig:
    """The run's task policy: provider-aware over bounded borrow.

    `ROWLOOM_TASK_ADMISSION_POLICY=bounded_borrow` selects bounded borrow alone (an
    engine-internal benchmark knob, not public configuration); an unknown value raises.
    """
    value = os.environ.get(TASK_POLICY_ENV, "").strip() or "provider_aware"
    if value == "provider_aware":
        return ProviderAwarePolicyConfig(base=BoundedBorrowPolicyConfig())
    if value == "bounded_borrow":
        return BoundedBorrowPolicyConfig()
    raise ValueError(f"{TASK_POLICY_ENV}={value!r}: expected provider_aware or bounded_borrow")


class RequestPressureBridge:
    """Request admission's read-only pressure as the task policy's `RequestPressureReader`.

    Maps a model group's metadata identity `("model", provider, model_id, generation_kind)` to
    its request resource and reads that resource's snapshot; never calls a mutating method.
    """

    __slots__ = ("_keys", "_provider")

    def __init__(self, provider: RequestPressureSnapshotProvider) -> None:
        self._provider = provider
        self._keys: dict[tuple[str, ...], tuple[RequestResourceKey, str] | None] = {}

    def pressure(self, identity: tuple[str, ...]) -> RequestPressure | None:
        """The pressure of the resource a group with `identity` calls; None if it has none."""
        try:
            resolved = self._keys[identity]
        except KeyError:
            key = _resource_of(identity)
            resolved = self._keys[identity] = None if key is None else (key, key.as_key_str())
        if resolved is None:
            return None
        snap = self._provider.snapshot(resolved[0])
        if snap is None:
            return None
        return RequestPressure(
            resolved[1],
            snap.in_flight,
            snap.current_limit,
            snap.waiters,
            snap.available,
            snap.blocked_until_monotonic,
        )


def _resource_of(identity: tuple[str, ...]) -> RequestResourceKey | None:
    if len(identity) != 4 or identity[0] != "model":
        return None
    try:
        return RequestResourceKey.of(identity[1], identity[2], RequestDomain(identity[3]))
    except ValueError:
        return None


def _status(
    summary: RunSummary, outcome: SchedulerOutcome, error: BaseException | None
) -> tuple[str, str | None]:
    if error is None and summary.row_groups_done == summary.row_groups_total:
        return "complete", None
    if isinstance(error, asyncio.CancelledError | KeyboardInterrupt):
        return "incomplete", "cancelled"
    if isinstance(error, RunAbortedError):
        return "incomplete", str(error)
    if error is not None:
        return "incomplete", f"{type(error).__name__}: {error}"
    return "incomplete", outcome.stop_reason or "not every row group finished"


def _token_usage(
    config: DatasetConfig,
    storage: RunStorage | None,
    kept: UsageTotals,
    discarded: UsageTotals,
) -> dict[str, Any]:
    """The run's token usage: from the manifest (every session) or, in memory, this one."""
    if storage is not None and storage.manifest is not None:
        totals = storage.manifest.token_usage()
    else:
        totals = UsageTotals()
        totals.merge(kept)
        totals.merge(discarded)
    return usage_report(totals, {m.alias: m.price for m in config.models})


def dropped_total(dropped: Counter[str] | dict[str, int]) -> int:
    """Total dropped rows over all reasons."""
    return sum(dropped.values())
