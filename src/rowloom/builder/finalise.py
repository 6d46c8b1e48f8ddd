"""Closing one run: its status, its capacity plan, and the artifacts written beside the data.

Every function here runs after the engine stopped (finished, failed or cancelled) and never
raises for its own failures: a run's own error always wins.
"""

from __future__ import annotations

import logging
from typing import Any

from rowloom.builder.options import EngineOptions
from rowloom.builder.outputs import ReportWriter, RunSummary
from rowloom.builder.storage import RunStorage
from rowloom.builder.wiring import WiredRun
from rowloom.capacity import (
    AsyncCapacityPlan,
    CapacitySource,
    CapacityValue,
    SchedulerMaxima,
    build_capacity_plan,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RunConfig
from rowloom.models.usage import UsageTotals, usage_report
from rowloom.provider_wire import TransportPoolLimits

_log = logging.getLogger(__name__)


def capacity_plan(
    run: WiredRun,
    *,
    config: DatasetConfig,
    run_config: RunConfig,
    engine: str,
    options: EngineOptions,
    pools: dict[str, TransportPoolLimits | None],
    sources: dict[str, CapacitySource] | None = None,
) -> AsyncCapacityPlan | None:
    """The run's capacity plan; None (and a logged error) when it cannot be built.

    `sources` names where run settings the builder chose came from (`dataset_builder`)."""
    outcome = run.engine.outcome
    task_admission = run.task_admission
    try:
        return build_capacity_plan(
            config=config,
            run_config=run_config,
            engine=engine,
            sources=sources,
            task_admission_config=run.task_admission_config,
            task_admission_view=task_admission.view() if task_admission is not None else None,
            task_policy=(
                CapacityValue(
                    task_admission.policy.name,
                    "benchmark_override"
                    if options.task_policy_overridden
                    else "engine_internal_config",
                )
                if task_admission is not None
                else None
            ),
            request_admission=run.requests.admission.capacity_view(),
            transport_pools=pools,
            scheduler=SchedulerMaxima(
                outcome.max_row_groups_in_flight if engine == "async" else None,
                dict(outcome.max_queued_by_group),
            ),
        )
    except Exception:
        _log.exception("could not build the capacity plan")
        return None


def token_usage(
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


def write_run_artifacts(
    storage: RunStorage,
    plan: AsyncCapacityPlan | None,
    summary: RunSummary,
    config: DatasetConfig,
    report: ReportWriter | None,
) -> None:
    """Write `capacity_plan.json`, `summary.json` and (with a `report` writer) the reports;
    failures are logged."""
    try:
        if plan is not None:
            storage.write_json(storage.capacity_plan_path, plan.as_json())
        storage.write_json(storage.summary_path, summary.to_dict())
        if report is not None and storage.writes_report:
            report(storage.run_dir, summary=summary.to_dict(), config=config.to_dict())
    except Exception:
        _log.exception("could not write the capacity plan, the profile or the report")
