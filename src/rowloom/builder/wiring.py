"""The pieces of one wired run: event streams, the request stack, the engine, and `WiredRun`.

`DatasetBuilder.wire` builds them, `run` starts the engine, `finalise` closes them; each piece
here knows how to open and close itself and nothing of the steps around it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rowloom.builder.host import GenerationHost
from rowloom.builder.outputs import RunSummary
from rowloom.builder.row_groups import RowGroupPlan
from rowloom.builder.storage import RunStorage
from rowloom.clock import Clock
from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RequestAdmissionTuningConfig, StragglerConfig
from rowloom.models.clients.base import ModelClient
from rowloom.models.clients.model_request_executor import ModelRequestExecutor
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog
from rowloom.observability.correlation import RuntimeCorrelationProvider
from rowloom.observability.eventlog import EventLog, open_run_logs
from rowloom.observability.events import RequestEventEmitter, SchedulerEventEmitter
from rowloom.provider_wire import TransportPoolLimits
from rowloom.scheduler import SchedulerOutcome
from rowloom.scheduling import TaskAdmissionConfig, TaskAdmissionController
from rowloom.seeds import SeedDataset

ClientFactory = Callable[..., ModelClient]
"""`(provider, *, max_connections, clock) -> ModelClient` (see `make_model_client`)."""
AdmissionHook = Callable[[AdaptiveRequestAdmissionController], None]
"""Called with a run's request admission as soon as it exists (a Ray worker attaches shares)."""


class RunEngine(Protocol):
    """What runs the row groups: the async scheduler or the sequential oracle."""

    @property
    def outcome(self) -> SchedulerOutcome: ...

    async def run(self, row_groups: Sequence[int]) -> SchedulerOutcome: ...


@dataclass(slots=True, eq=False)
class EventStreams:
    """The run's two event streams (scheduler, requests), their logs and shared correlation."""

    scheduler: SchedulerEventEmitter
    requests: RequestEventEmitter
    correlation: RuntimeCorrelationProvider
    run_id: str
    logs: tuple[EventLog, ...]

    @classmethod
    def open(cls, storage: RunStorage | None, write_events: bool, clock: Clock) -> EventStreams:
        """Event logs under the run folder's `events/` when `write_events` (and a folder)."""
        logs = open_run_logs(storage.events_dir) if storage is not None and write_events else {}
        correlation = RuntimeCorrelationProvider()
        return cls(
            scheduler=SchedulerEventEmitter(
                None, clock.monotonic, correlation, log=logs.get("scheduler")
            ),
            requests=RequestEventEmitter(
                None, clock.monotonic, correlation, log=logs.get("requests")
            ),
            correlation=correlation,
            run_id=uuid.uuid4().hex[:12],
            logs=tuple(logs.values()),
        )

    def flusher(self) -> Callable[[], None]:
        """A callable that writes every log's buffered events (called at each checkpoint)."""
        logs = self.logs

        def flush() -> None:
            for log in logs:
                log.flush()

        return flush

    def close(self) -> None:
        for log in self.logs:
            log.close()


@dataclass(slots=True, eq=False)
class RequestStack:
    """Request admission, one client per provider, and the executor between them."""

    admission: AdaptiveRequestAdmissionController
    clients: dict[str, ModelClient]
    executor: ModelRequestExecutor

    @classmethod
    def build(
        cls,
        config: DatasetConfig,
        catalog: ModelResourceCatalog,
        streams: EventStreams,
        *,
        tuning: RequestAdmissionTuningConfig | None,
        stragglers: StragglerConfig,
        clock: Clock,
        client_factory: ClientFactory,
        adjust: Callable[[RequestAdmissionConfig], RequestAdmissionConfig] | None = None,
        on_admission: AdmissionHook | None = None,
    ) -> RequestStack:
        """Admission from the catalog and the run's tuning (then `adjust`, a benchmark's
        baseline; shown to `on_admission` first); a
        client per provider in use, its connection pool sized to the summed static caps of the
        provider's endpoints."""
        admission_config = RequestAdmissionConfig.from_catalog(catalog, tuning)
        if adjust is not None:
            admission_config = adjust(admission_config)
        admission = AdaptiveRequestAdmissionController(
            admission_config, clock=clock, events=streams.requests
        )
        if on_admission is not None:
            on_admission(admission)
        clients: dict[str, ModelClient] = {}
        for pname in sorted({m.provider for m in config.models}):
            pool = sum(c.cap for k, c in catalog.static_caps().items() if k.provider_name == pname)
            clients[pname] = client_factory(
                catalog.provider(pname), max_connections=max(1, pool), clock=clock
            )
        executor = ModelRequestExecutor(
            resolver=RequestResourceResolver(catalog),
            clients=clients,
            admission=admission,
            events=streams.requests,
            correlation=streams.correlation,
            clock=clock,
            stragglers=stragglers,
            seed=config.effective_seed,
        )
        return cls(admission, clients, executor)

    async def close(self) -> dict[str, TransportPoolLimits | None]:
        """Shut admission down (failing any waiter) and close every client; return each
        client's pool limits as they were."""
        self.admission.shutdown()
        pools = {name: c.transport_pool_limits for name, c in self.clients.items()}
        await asyncio.gather(*(c.aclose() for c in self.clients.values()), return_exceptions=True)
        return pools


@dataclass(slots=True, eq=False)
class WiredRun:
    """One run, wired and not finished: what `DatasetBuilder.run` and `finalise` work on.

    `config` is the run's config with its seed's columns added (`seed` is the opened seed,
    closed by `finalise`); `pending` are the row groups still to generate (a resumed run
    skips finished ones); `task_admission` is None for the sequential engine.
    """

    config: DatasetConfig
    seed: SeedDataset | None
    plan: RowGroupPlan
    output_columns: list[str]
    storage: RunStorage | None
    summary: RunSummary
    pending: list[int]
    streams: EventStreams
    requests: RequestStack
    host: GenerationHost
    engine: RunEngine
    task_admission: TaskAdmissionController | None = None
    task_admission_config: TaskAdmissionConfig | None = None
    started_at: float | None = None
