"""`Designer`: the Python entry point for previews and dataset runs."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from rowloom.builder.builder import DatasetBuilder, Engine, RunMonitor
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
from rowloom.interface.report import write_report
from rowloom.interface.results import DatasetResult, PreviewResult

T = TypeVar("T")
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
    """

    def __init__(
        self,
        artifact_dir: str | Path = "artifacts",
        *,
        engine: Engine = "async",
        simulate: bool = False,
        providers: str | Path | ProvidersFile | None = None,
    ):
        self.artifact_dir = Path(artifact_dir)
        self.engine: Engine = engine
        self.simulate = simulate
        self.providers = providers

    def config(self, config: ConfigSource) -> DatasetConfig:
        """The config a run would use: loaded, defaults resolved, simulated when asked."""
        return prepare_config(config, providers=self.providers, simulate=self.simulate)

    def preview(
        self, config: ConfigSource, num_records: int = 10, *, engine: Engine | None = None
    ) -> PreviewResult:
        """Generate a few rows in memory (nothing written)."""
        return _run_sync(self.apreview(config, num_records, engine=engine))

    async def apreview(
        self, config: ConfigSource, num_records: int = 10, *, engine: Engine | None = None
    ) -> PreviewResult:
        """Async `preview`."""
        config = self.config(config)
        rc = config.run_config.model_copy(update={"write_events": False})
        builder = DatasetBuilder(config, run_config=rc, engine=engine or self.engine)
        outputs = await builder.build(num_records, run_dir=None, name="preview")
        return PreviewResult.from_outputs(outputs)

    def create(
        self,
        config: ConfigSource,
        num_records: int,
        name: str = "dataset",
        *,
        resume: ResumeMode = False,
        run_config: RunConfig | None = None,
        engine: Engine | None = None,
        monitor: RunMonitor | None = None,
    ) -> DatasetResult:
        """Generate `num_records` rows into `artifact_dir/name` and return the result.

        `resume=True` continues a stopped run (error if impossible); `"if_possible"` continues
        when the folder holds the same config, else starts fresh.
        """
        return _run_sync(
            self.acreate(
                config,
                num_records,
                name,
                resume=resume,
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
        run_config: RunConfig | None = None,
        engine: Engine | None = None,
        monitor: RunMonitor | None = None,
    ) -> DatasetResult:
        """Async `create`."""
        if not _NAME.match(name) or name in (".", ".."):
            raise RunFolderError(
                f"run name {name!r} may use letters, digits, '_', '-' and '.' only"
            )
        if num_records < 1:
            raise ValueError("num_records must be at least 1")
        config = self.config(config)
        builder = DatasetBuilder(
            config, run_config=run_config, engine=engine or self.engine, monitor=monitor
        )
        outputs = await builder.build(
            num_records, run_dir=self.artifact_dir / name, name=name, resume=resume
        )
        result = DatasetResult.from_outputs(outputs)
        if attach_saved_estimate(self.artifact_dir, result.run_dir, config):
            write_report(result.run_dir, summary=result.summary.to_dict())
        return result


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(
        "Designer.create/preview cannot run inside an event loop; await acreate/apreview instead"
    )
