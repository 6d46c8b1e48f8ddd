"""`Designer`: the Python entry point for previews and dataset runs."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Literal, TypeVar

from rowloom.builder.builder import DatasetBuilder, Engine
from rowloom.builder.outputs import RunMonitor
from rowloom.builder.storage import ResumeMode
from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RunConfig
from rowloom.errors import RunFolderError
from rowloom.interface.estimate import (
    Estimate,
    attach_saved_estimate,
    estimate_from_pilot,
    save_estimate,
)
from rowloom.interface.loading import ProvidersFile, prepare_config
from rowloom.interface.report import write_report, write_run_report
from rowloom.interface.results import DatasetResult, PreviewResult
from rowloom.models.check import ModelCheck, check_models

T = TypeVar("T")
RunEngine = Literal["async", "sequential", "ray"]
DEFAULT_RAY_WORKERS = 2
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


ConfigSource = DatasetConfig | str | Path


class Designer:
    """Generates datasets from a `DatasetConfig` or a config file (rowloom's or Data
    Designer's).

    `create` writes a run folder under `artifact_dir/<name>`; `preview` keeps rows in memory.
    Both have async twins (`acreate`, `apreview`) for callers inside an event loop.
    `simulate=True` serves every model from the embedded simulated provider (no key, no
    network); `providers` is a providers file for models and providers a config names but
    does not declare (default: the user's `~/.config/rowloom/providers.yaml` when it exists).
    The engine is the one given here or to `create`, else the config's `run.engine`, else
    `async`; `ray` runs `workers` Ray workers, joining `ray_address` when given (a preview,
    kept in memory, runs on the async engine).
    """

    def __init__(
        self,
        artifact_dir: str | Path = "artifacts",
        *,
        engine: RunEngine | None = None,
        simulate: bool = False,
        providers: str | Path | ProvidersFile | None = None,
        workers: int | None = None,
        ray_address: str | None = None,
    ):
        self.artifact_dir = Path(artifact_dir)
        self.engine: RunEngine | None = engine
        self.workers = workers
        self.ray_address = ray_address
        self.simulate = simulate
        self.providers = providers

    def config(self, config: ConfigSource) -> DatasetConfig:
        """The config a run would use: loaded, defaults resolved, simulated when asked."""
        return prepare_config(config, providers=self.providers, simulate=self.simulate)

    def check_models(self, config: DatasetConfig, *, timeout: float = 30.0) -> list[ModelCheck]:
        """Probe every model of `config` (what `rowloom models check` prints): per model its
        probes' latency, whether JSON-schema output is honoured, and a verdict."""
        config.check_environment()
        return _run_sync(check_models(config, probe_timeout=timeout))

    def preview(
        self, config: ConfigSource, num_records: int = 10, *, engine: RunEngine | None = None
    ) -> PreviewResult:
        """Generate a few rows in memory (nothing written)."""
        return _run_sync(self.apreview(config, num_records, engine=engine))

    async def apreview(
        self, config: ConfigSource, num_records: int = 10, *, engine: RunEngine | None = None
    ) -> PreviewResult:
        """Async `preview`."""
        config = self.config(config)
        rc = config.run_config.model_copy(update={"write_events": False})
        chosen = engine or self.engine or rc.engine or "async"
        builder = DatasetBuilder(config, run_config=rc, engine=_local(chosen))
        outputs = await builder.build(num_records, run_dir=None, name="preview")
        return PreviewResult.from_outputs(outputs)

    def create(
        self,
        config: ConfigSource,
        num_records: int,
        name: str = "dataset",
        *,
        resume: ResumeMode = False,
        overwrite: bool = False,
        run_config: RunConfig | None = None,
        engine: RunEngine | None = None,
        monitor: RunMonitor | None = None,
    ) -> DatasetResult:
        """Generate `num_records` rows into `artifact_dir/name` and return the result.

        A folder that already holds a run is never replaced silently: without a flag it is a
        `RunFolderError`. `resume=True` (or `"if_possible"`) continues it (a new run when there
        is nothing to resume; a larger `num_records` extends a finished run; a config changed
        in value-determining fields is a `ResumeError`); `overwrite=True` moves it aside to
        `NAME.replaced-<timestamp>` and starts over. `result.summary.notes` says what happened.
        """
        return _run_sync(
            self.acreate(
                config,
                num_records,
                name,
                resume=resume,
                overwrite=overwrite,
                run_config=run_config,
                engine=engine,
                monitor=monitor,
            )
        )

    def estimate(self, config: ConfigSource, num_records: int, *, pilot: int = 50) -> Estimate:
        """Run a pilot of `pilot` rows in a scratch folder (removed afterwards) and predict
        wall time, requests, tokens and cost for `num_records` rows (see `interface.estimate`).
        The estimate is kept in `artifact_dir` for a later `create` of the same config."""
        config = self.config(config)
        scratch = Path(tempfile.mkdtemp(prefix="rowloom-pilot-"))
        try:
            result = Designer(scratch, engine=self.engine).create(config, pilot, "pilot")
            estimate = estimate_from_pilot(result.run_dir, config, num_records)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        save_estimate(self.artifact_dir, estimate)
        return estimate

    async def acreate(
        self,
        config: ConfigSource,
        num_records: int,
        name: str = "dataset",
        *,
        resume: ResumeMode = False,
        overwrite: bool = False,
        run_config: RunConfig | None = None,
        engine: RunEngine | None = None,
        monitor: RunMonitor | None = None,
    ) -> DatasetResult:
        """Async `create`."""
        if not _NAME.match(name) or name in (".", ".."):
            raise RunFolderError(
                f"run name {name!r} may use letters, digits, '_', '-' and '.' only"
            )
        if num_records < 1:
            raise ValueError("num_records must be at least 1")
        if resume and overwrite:
            raise RunFolderError("resume and overwrite exclude each other: choose one")
        config = self.config(config)
        rc = run_config or config.run_config
        chosen = engine or self.engine or rc.engine or "async"
        run_dir = self.artifact_dir / name
        if chosen == "ray":
            from rowloom.distributed.ray_engine import RayDriver

            driver = RayDriver(
                config,
                rc,
                workers=self.workers or rc.workers or DEFAULT_RAY_WORKERS,
                address=self.ray_address or rc.ray_address,
                monitor=monitor,
                report=write_run_report,
            )
            outputs = await driver.build(
                num_records, run_dir=run_dir, name=name, resume=resume, overwrite=overwrite
            )
        else:
            builder = DatasetBuilder(
                config,
                run_config=rc,
                engine=_local(chosen),
                monitor=monitor,
                report=write_run_report,
            )
            outputs = await builder.build(
                num_records, run_dir=run_dir, name=name, resume=resume, overwrite=overwrite
            )
        result = DatasetResult.from_outputs(outputs)
        if attach_saved_estimate(self.artifact_dir, result.run_dir, config):
            write_report(result.run_dir, summary=result.summary.to_dict())
        return result


def _local(engine: RunEngine) -> Engine:
    """The in-process engine for `engine` (ray previews run on the async engine)."""
    return "sequential" if engine == "sequential" else "async"


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(
        "Designer.create/preview cannot run inside an event loop; await acreate/apreview instead"
    )
