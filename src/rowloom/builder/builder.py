"""`DatasetBuilder`: one run from config to artifacts, in three named steps.

`wire` builds and connects every layer of the run (storage, event streams, request admission,
provider clients and the `ModelRequestExecutor`, the generation host, the engine: async
scheduler with task admission, or the sequential oracle); `run` drives the engine over the
pending row groups; `finalise` records what happened (summary, capacity plan, manifest status,
report) and closes what `wire` opened. `build` is the three in order. Nothing already
checkpointed is lost when a run fails or is cancelled: the manifest records what is done.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from rowloom.builder.finalise import capacity_plan, token_usage, write_run_artifacts
from rowloom.builder.host import GenerationHost
from rowloom.builder.options import EngineOptions
from rowloom.builder.outputs import ReportWriter, RunMonitor, RunOutputs, RunSummary, run_status
from rowloom.builder.pressure import RequestPressureBridge
from rowloom.builder.processors import build_processors, without_dropped
from rowloom.builder.row_groups import RowGroupPlan, default_buffer_size
from rowloom.builder.run_folder import RunRequest, open_run
from rowloom.builder.sequential import SequentialEngine
from rowloom.builder.storage import ResumeMode, RunStorage
from rowloom.builder.task_capacity import task_admission_config
from rowloom.builder.wiring import (
    AdmissionHook,
    ClientFactory,
    EventStreams,
    RequestStack,
    RunEngine,
    WiredRun,
)
from rowloom.capacity import CapacitySource
from rowloom.clock import Clock, SystemClock
from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RunConfig
from rowloom.errors import RunFolderError
from rowloom.generators import ColumnGenerator, build_generators
from rowloom.models.clients import make_model_client
from rowloom.models.facade import ModelFacade
from rowloom.models.mcp import MCPToolBox, MCPToolHost
from rowloom.models.resources import ModelResourceCatalog
from rowloom.scheduler import AsyncTaskScheduler, SchedulerConfig
from rowloom.scheduling import (
    ColumnNode,
    CompletionTracker,
    FairTaskQueue,
    TaskAdmissionController,
    TaskSchedulingResolver,
)
from rowloom.scheduling.breaker import ErrorRateBreaker
from rowloom.scheduling.policy_factory import build_policy
from rowloom.seeds import compile_seed

Engine = Literal["async", "sequential"]


class DatasetBuilder:
    """Builds one dataset run. Use `Designer` unless you need the pieces.

    `report` writes the human reports into a finished run's folder (the interface hands in
    its writer; None writes none). `options` are engine-internal choices for benchmarks and
    tests; the defaults are what users get. `on_admission` sees the run's request admission
    as soon as it exists (a Ray worker attaches its fleet shares); `storage_factory` makes
    the run folder's `RunStorage` (a Ray worker's writes attempt files); `row_group_breaks`
    are the row-group plan's breaks of the run a Ray worker works for (its driver's plan).
    """

    def __init__(
        self,
        config: DatasetConfig,
        *,
        run_config: RunConfig | None = None,
        engine: Engine = "async",
        clock: Clock | None = None,
        monitor: RunMonitor | None = None,
        client_factory: ClientFactory = make_model_client,
        report: ReportWriter | None = None,
        options: EngineOptions | None = None,
        on_admission: AdmissionHook | None = None,
        storage_factory: Callable[[Path], RunStorage] = RunStorage,
        row_group_breaks: Sequence[int] = (),
    ) -> None:
        self.config = config
        self.run_config = run_config or config.run_config
        self.engine = engine
        self.clock = clock or SystemClock()
        self.monitor = monitor or RunMonitor()
        self.options = options or EngineOptions()
        self._client_factory = client_factory
        self._report = report
        self._on_admission = on_admission
        self._storage_factory = storage_factory
        self._breaks = tuple(row_group_breaks)
        self._storage: RunStorage | None = None
        self._plan_sources: dict[str, CapacitySource] = {}
        """Where run settings the builder chose came from (for the capacity plan)."""

    async def build(
        self,
        num_records: int,
        *,
        run_dir: Path | None,
        name: str,
        resume: ResumeMode = False,
        overwrite: bool = False,
        row_groups: Sequence[int] | None = None,
    ) -> RunOutputs:
        """Generate `num_records` rows; write them under `run_dir` (None: keep in memory).

        What happens to a run already in `run_dir` is `open_run`'s (`resume`, `overwrite`).
        `row_groups` limits the run to those row groups of the plan (a Ray worker's share of
        a run; in memory, it is the caller's to write them). The MCP servers of the config's
        tool columns are up for the whole run and closed on every path (error, cancellation);
        none starts when the config's environment is wrong (a missing API key).
        """
        self.config.check_environment()  # before any MCP server process starts
        async with MCPToolHost(self.config) as tools:
            try:
                run = self.wire(
                    num_records,
                    run_dir=run_dir,
                    name=name,
                    resume=resume,
                    overwrite=overwrite,
                    row_groups=row_groups,
                    toolboxes=tools.toolboxes,
                )
            except BaseException:
                self._settle_folder()
                raise
            error: BaseException | None = None
            try:
                await self.run(run)
            except BaseException as exc:  # record what is done, then re-raise
                error = exc
                raise
            finally:
                outputs = await self.finalise(run, error)
        return outputs

    # --- step 1: wire ---------------------------------------------------------------------

    def wire(
        self,
        num_records: int,
        *,
        run_dir: Path | None,
        name: str,
        resume: ResumeMode = False,
        overwrite: bool = False,
        row_groups: Sequence[int] | None = None,
        toolboxes: Mapping[str, MCPToolBox] | None = None,
    ) -> WiredRun:
        """Open the run folder (`open_run`) and build every layer of the run; start nothing.

        `pending` holds the plan's row groups (or those of `row_groups`) not yet finished;
        `toolboxes` are the open MCP tools by tool alias (see `MCPToolHost`). Raises the
        config's environment error (e.g. a missing API key), `RunFolderError` or `ResumeError`
        before any model call; a new run's config and manifest may still be being saved when
        this returns (a failure to save them is a `RunFolderError` at the first checkpoint).
        """
        self.config.check_environment()
        config, seed = compile_seed(self.config)
        catalog = ModelResourceCatalog(config.models, config.providers)
        storage = self._storage = self._storage_factory(run_dir) if run_dir is not None else None
        generators = build_generators(config, catalog, seed, _media_root(storage))
        processors = build_processors(config.processors)
        output_columns = without_dropped(config.output_columns(), processors)
        request = RunRequest(
            config.fingerprint(),
            num_records,
            self._buffer_size(num_records, catalog),
            output_columns,
            config.to_dict(),
            resume=resume,
            overwrite=overwrite,
        )
        done, plan, notes = self._open(storage, request)
        rc = self.run_config
        summary = self._start_summary(name, num_records, plan, storage, done, notes)
        streams = EventStreams.open(storage, rc.write_events, self.clock)
        requests = RequestStack.build(
            config,
            catalog,
            streams,
            tuning=rc.request_admission,
            stragglers=rc.stragglers,
            clock=self.clock,
            client_factory=self._client_factory,
            adjust=self.options.request_admission,
            on_admission=self._on_admission,
        )
        wanted = range(plan.count) if row_groups is None else sorted(set(row_groups))
        host = GenerationHost(
            generators,
            plan,
            config.effective_seed,
            output_columns,
            self._facades(requests, toolboxes or {}),
            storage,
            on_checkpoint=self._on_checkpoint(streams),
            on_rows_finished=self.monitor.on_rows_finished,
            usage=requests.executor.usage,
            processors=processors,
        )
        run = WiredRun(
            config=config,
            seed=seed,
            plan=plan,
            output_columns=output_columns,
            storage=storage,
            summary=summary,
            pending=[rg for rg in wanted if rg not in done],
            streams=streams,
            requests=requests,
            host=host,
            engine=self._sequential(config, host),
        )
        if self.engine == "async":
            self._wire_scheduler(run, catalog)
        self._watch(run)
        return run

    def _settle_folder(self) -> None:
        """After a failed `wire`: let the run folder's start finish saving (its own failure
        is not the error to report)."""
        storage = self._storage
        if storage is not None:
            with contextlib.suppress(RunFolderError):
                storage.settle()

    def _watch(self, run: WiredRun) -> None:
        """Point the monitor at the run's controllers."""
        self.monitor.admission = run.requests.admission
        self.monitor.executor = run.requests.executor
        self.monitor.task_admission = run.task_admission
        self.monitor.prices = {m.alias: m.price for m in run.config.models}

    def _buffer_size(self, num_records: int, catalog: ModelResourceCatalog) -> int:
        """The configured `buffer_size`, or one that fits the run when it is not set."""
        rc = self.run_config
        if "buffer_size" in rc.model_fields_set:
            return rc.buffer_size
        concurrency = sum(cap.cap for cap in catalog.static_caps().values())
        return default_buffer_size(num_records, concurrency)

    def _open(
        self, storage: RunStorage | None, request: RunRequest
    ) -> tuple[set[int], RowGroupPlan, list[str]]:
        """Open the run folder; the row groups already done, the row-group plan (the run's
        own `buffer_size` on resume, else the configured one or one sized to the run) and
        what happened to the folder, for people."""
        done: set[int] = set()
        buffer_size, notes, breaks = request.buffer_size, [], self._breaks
        if storage is not None:
            opened = open_run(storage, request, settle=False)  # saved while requests go
            done, buffer_size, notes = opened.done, opened.buffer_size, opened.notes
            breaks = opened.breaks or breaks
        if buffer_size != self.run_config.buffer_size:
            self.run_config = self.run_config.model_copy(update={"buffer_size": buffer_size})
            self._plan_sources["buffer_size"] = "dataset_builder"
        return done, RowGroupPlan(request.num_records, buffer_size, breaks), notes

    def _start_summary(
        self,
        name: str,
        num_records: int,
        plan: RowGroupPlan,
        storage: RunStorage | None,
        done: set[int],
        notes: list[str],
    ) -> RunSummary:
        summary = RunSummary(
            name=name,
            engine=self.engine,
            num_records=num_records,
            row_groups_total=plan.count,
            resumed_row_groups=len(done),
            notes=notes,
        )
        if storage is not None and storage.manifest is not None:
            for rec in storage.manifest.row_groups.values():
                summary.rows_written += rec.rows
                summary.add_dropped(rec.dropped)
        self.monitor.rows_total = num_records
        self.monitor.rows_written = summary.rows_written
        self.monitor.rows_resumed = sum(plan.size(rg) for rg in done)
        return summary

    @staticmethod
    def _facades(
        requests: RequestStack, toolboxes: Mapping[str, MCPToolBox]
    ) -> Callable[[ColumnGenerator], ModelFacade | None]:
        executor = requests.executor

        def facade_for(gen: ColumnGenerator) -> ModelFacade | None:
            if not gen.model_aliases:
                return None
            return ModelFacade(executor, gen.model_aliases, tools=toolboxes)

        return facade_for

    def _on_checkpoint(self, streams: EventStreams) -> Callable[[int, int], None]:
        flush = streams.flusher()
        monitor = self.monitor

        def on_checkpoint(row_group: int, rows: int) -> None:
            flush()
            monitor.on_checkpoint(row_group, rows)

        return on_checkpoint

    def _sequential(self, config: DatasetConfig, host: GenerationHost) -> RunEngine:
        rc = self.run_config
        return SequentialEngine(
            host,
            config.topological_order,
            max_salvage_rounds=rc.max_salvage_rounds,
            breaker=ErrorRateBreaker(rc.breaker_threshold, rc.shutdown_error_window),
            on_task_done=self.monitor.on_task_done,
        )

    def _wire_scheduler(self, run: WiredRun, catalog: ModelResourceCatalog) -> None:
        """Replace the run's engine with the async scheduler and its task admission."""
        rc, host = self.run_config, run.host
        resolver = TaskSchedulingResolver()
        nodes = []
        for name in run.config.topological_order:
            gen = host.generators[name]
            resolver.resolve(name, gen)
            nodes.append(ColumnNode(name, run.config.dependencies[name], gen.task_type))
        run.task_admission_config = task_admission_config(
            catalog, resolver, self.options.task_policy
        )
        pressure = RequestPressureBridge(run.requests.admission.pressure)
        run.task_admission = TaskAdmissionController(
            run.task_admission_config,
            self.clock,
            policy=build_policy(run.task_admission_config.policy, pressure),
        )
        run.engine = AsyncTaskScheduler(
            host=host,
            tracker=CompletionTracker(nodes, resolver.schedulable),
            queue=FairTaskQueue(),
            admission=run.task_admission,
            events=run.streams.scheduler,
            correlation=run.streams.correlation,
            clock=self.clock,
            config=SchedulerConfig(
                max_concurrent_row_groups=rc.max_concurrent_row_groups,
                max_salvage_rounds=rc.max_salvage_rounds,
                error_rate_threshold=rc.breaker_threshold,
                error_rate_window=rc.shutdown_error_window,
            ),
            run_id=run.streams.run_id,
            on_task_done=self.monitor.on_task_done,
        )

    # --- step 2: run ----------------------------------------------------------------------

    async def run(self, run: WiredRun, row_groups: Sequence[int] | None = None) -> None:
        """Drive the engine over `row_groups` (default: the run's pending ones).

        Raises what the engine raises (a programming error, `RunAbortedError`, cancellation);
        call `finalise` afterwards in every case.
        """
        run.started_at = time.monotonic()
        await run.engine.run(run.pending if row_groups is None else list(row_groups))

    # --- step 3: finalise -----------------------------------------------------------------

    async def finalise(self, run: WiredRun, error: BaseException | None = None) -> RunOutputs:
        """Record what the run did, close what `wire` opened, write the run's artifacts.

        `error` is what `run` raised, if anything; it decides the status and stop reason.
        """
        summary, host = run.summary, run.host
        started = run.started_at if run.started_at is not None else time.monotonic()
        summary.wall_seconds = time.monotonic() - started
        summary.rows_written += host.stats.rows_written
        summary.row_groups_done = summary.resumed_row_groups + host.stats.row_groups
        summary.add_dropped(host.stats.dropped)
        stats = run.requests.executor.stats
        summary.request_attempts = stats.attempts
        summary.requests_by_outcome = dict(stats.by_outcome or {})
        summary.stragglers_cancelled = run.requests.executor.stragglers_cancelled
        pools = await run.requests.close()
        if run.seed is not None:
            run.seed.close()
        run.streams.close()
        summary.status, summary.stop_reason = run_status(
            summary, error, run.engine.outcome.stop_reason
        )
        plan = capacity_plan(
            run,
            config=self.config,
            run_config=self.run_config,
            engine=self.engine,
            options=self.options,
            pools=pools,
            sources=self._plan_sources,
        )
        discarded = run.requests.executor.usage.take_rest()
        summary.error_samples = (
            run.storage.manifest.error_samples()
            if run.storage is not None and run.storage.manifest is not None
            else list(host.error_samples)
        )
        if run.storage is not None:
            run.storage.finish(summary.status, summary.stop_reason, discarded)
        summary.token_usage = token_usage(run.config, run.storage, host.kept_usage, discarded)
        if run.storage is not None:
            write_run_artifacts(run.storage, plan, summary, self.config, self._report)
        return RunOutputs(
            summary=summary,
            storage=run.storage,
            kept=host.kept,
            kept_errors=host.kept_errors,
            processor_rows={
                name: [r for _, rows in sorted(by_group.items()) for r in rows]
                for name, by_group in host.kept_processor_rows.items()
            },
            output_columns=run.output_columns,
            capacity_plan=plan.as_json() if plan is not None else {},
        )


def _media_root(storage: RunStorage | None) -> Path | None:
    """Where image columns write (None: in memory, a preview)."""
    return storage.media_root if storage is not None else None
