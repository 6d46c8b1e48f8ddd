"""`rowloom bench run`: warm-ups, measured iterations, the oracle check, and the artifacts.

Checks that fail a run (exit code 1): a lease or waiter left at the end of any iteration, an
output hash different from the sequential oracle (or from another iteration), a hidden
scheduler resource waiter. Targets are aims: a missed target is reported, not failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rowloom.bench.artifacts import (
    ARTIFACT_SCHEMA_VERSION,
    HARNESS_VERSION,
    summary_markdown,
    target_verdicts,
    write_json,
    write_timeline_csv,
)
from rowloom.bench.events import DEFAULT_TIMELINE_CAP
from rowloom.bench.machine import (
    environment_knobs,
    load_average,
    machine_info,
    source_revision,
)
from rowloom.bench.registry import get_scenario
from rowloom.bench.scenario import IterationContext, IterationResult, OracleCheck, Scenario
from rowloom.bench.stats import SummaryStats, noise_note, summarize_metrics

DEFAULT_SEED = 42


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Inputs of one `rowloom bench run`."""

    scenario_id: str
    out: Path
    records: int | None = None
    iterations: int = 5
    warmups: int = 1
    seed: int = DEFAULT_SEED
    http: bool = False
    knobs: Mapping[str, str] = field(default_factory=dict)
    timeline_cap: int = DEFAULT_TIMELINE_CAP
    oracle: bool = True
    command_line: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class BenchRunOutcome:
    """Where the artifacts went and whether the run's checks passed."""

    out: Path
    result: Mapping[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.result["checks"]["passed"])


def run_benchmark(options: RunOptions) -> BenchRunOutcome:
    """Run a scenario and write `result.json`, `timeline.csv` and `summary.md` to `out`."""
    return asyncio.run(run_benchmark_async(options))


async def run_benchmark_async(options: RunOptions) -> BenchRunOutcome:
    """Async `run_benchmark` (for callers already in an event loop)."""
    scenario = get_scenario(options.scenario_id)
    knobs = scenario.resolve_knobs(options.knobs)
    if options.iterations < 1:
        raise ValueError("iterations must be at least 1")
    records = options.records or scenario.default_records
    started = _now()
    load_at_start = load_average()
    work = Path(tempfile.mkdtemp(prefix=f"rowloom-bench-{scenario.id}-"))
    base = IterationContext(
        records, options.seed, knobs, options.http, work, 0, timeline_cap=options.timeline_cap
    )
    try:
        oracle = (
            await scenario.oracle(base)
            if options.oracle
            else OracleCheck("none", reason="skipped with --no-oracle")
        )
        warm: list[IterationResult] = []
        for w in range(options.warmups):
            ctx = scenario.warmup_context(replace(base, index=-1 - w, warmup=True))
            warm.append(await scenario.run_iteration(ctx))
        measured = [
            await scenario.run_iteration(replace(base, index=i)) for i in range(options.iterations)
        ]
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    result = assemble_result(scenario, options, records, knobs, oracle, warm, measured, started)
    result["machine"]["load_average_at_start"] = load_at_start
    result["machine"]["load_average_at_end"] = load_average()
    await asyncio.to_thread(write_artifacts, options.out, result, scenario)
    return BenchRunOutcome(options.out, result)


def write_artifacts(out: Path, result: Mapping[str, Any], scenario: Scenario) -> None:
    """`result.json`, `timeline.csv` and `summary.md` into `out` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "result.json", result)
    write_timeline_csv(out / "timeline.csv", result["iterations"])
    (out / "summary.md").write_text(summary_markdown(result, scenario), encoding="utf-8")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def assemble_result(
    scenario: Scenario,
    options: RunOptions,
    records: int,
    knobs: Mapping[str, Any],
    oracle: OracleCheck,
    warm: Sequence[IterationResult],
    measured: Sequence[IterationResult],
    started: str,
) -> dict[str, Any]:
    """The `result.json` document (see benchmarks.md's artifact schema)."""
    source = source_revision()
    iterations = [_iteration_json(i, it, oracle) for i, it in enumerate(measured)]
    derived = summarize_metrics([it.metrics for it in measured])
    checks = _checks(measured, iterations, oracle, warm)
    note = _noise(derived)
    sampling = measured[-1].timeline_sampling if measured else {}
    return {
        "scenario_id": scenario.id,
        "artifact_schema_version": ARTIFACT_SCHEMA_VERSION,
        "scenario_version": scenario.version,
        "harness_version": HARNESS_VERSION,
        "baseline_sha": None,
        "candidate_sha": source["sha"],
        "source": source,
        "inputs": {
            "records": records,
            "iterations": options.iterations,
            "warmups": options.warmups,
            "seed": options.seed,
            "http": options.http,
            "knobs": dict(knobs),
            "timeline_cap": options.timeline_cap,
            "oracle": options.oracle,
        },
        "command_line": list(options.command_line),
        "machine": machine_info(),
        "environment": environment_knobs(),
        "provider_script": [s.as_json() for s in scenario.provider_scripts(knobs, options.seed)],
        "clock_script": scenario.clock_script(),
        "capacity_plan": measured[-1].capacity_plan if measured else {},
        "hash_check": oracle.as_json(),
        "checks": checks,
        "targets": target_verdicts(scenario, derived, http=options.http),
        "derived_metrics": {
            name: {**stats.as_json(), "noise_note": noise_note(stats)}
            for name, stats in derived.items()
        },
        "noise_note": note,
        "timeline_note": _timeline_note(sampling),
        "warmups": [
            {
                "index": -1 - w,
                "wall_time_seconds": it.measurement.wall_time_seconds,
                "status": it.status,
                "leaks": it.leaks,
            }
            for w, it in enumerate(warm)
        ],
        "iterations": iterations,
        "started_at": started,
        "finished_at": _now(),
    }


def _iteration_json(index: int, it: IterationResult, oracle: OracleCheck) -> dict[str, Any]:
    hashes: dict[str, Any] = dict(it.output_hashes)
    if oracle.mode == "full":
        hashes["oracle"] = oracle.oracle_hash
        hashes["matches_oracle"] = it.output_hashes.get("async") == oracle.oracle_hash
    m = it.measurement
    return {
        "index": index,
        "status": it.status,
        "wall_time_seconds": m.wall_time_seconds,
        "cpu_seconds": m.cpu_seconds,
        "peak_rss_bytes": m.peak_rss_bytes,
        "peak_rss_method": m.peak_rss_method,
        "timeline_sampling": it.timeline_sampling,
        "timeline": it.timeline,
        "final_task_snapshot": it.final_task_snapshot,
        "final_request_snapshot": it.final_request_snapshot,
        "output_hashes": hashes,
        "leaks": it.leaks,
        "metrics": it.metrics,
        "details": it.details,
    }


def _checks(
    measured: Sequence[IterationResult],
    iterations: Sequence[Mapping[str, Any]],
    oracle: OracleCheck,
    warm: Sequence[IterationResult],
) -> dict[str, Any]:
    leaks = [f"iteration {i}: {leak}" for i, it in enumerate(measured) for leak in it.leaks]
    leaks += [f"warm-up {w}: {leak}" for w, it in enumerate(warm) for leak in it.leaks]
    hidden = max(
        (it.metrics.get("hidden_scheduler_resource_waiters", 0.0) for it in measured), default=0.0
    )
    problems: list[str] = []
    if oracle.mode == "full":
        bad = [it["index"] for it in iterations if not it["output_hashes"].get("matches_oracle")]
        hash_text = (
            f"all {len(iterations)} iterations equal the sequential oracle "
            f"({(oracle.oracle_hash or '')[:16]}...)"
            if not bad
            else f"iterations {bad} differ from the sequential oracle"
        )
        if bad:
            problems.append(hash_text)
    elif oracle.mode == "reduced":
        ok = oracle.reduced_match
        hash_text = (
            f"{'equal' if ok else 'DIFFERENT'} at {oracle.records} records "
            f"(sequential oracle vs async); {oracle.reason}"
        )
        if not ok:
            problems.append(hash_text)
    else:
        hash_text = f"not checked: {oracle.reason}"
    distinct = {it.output_hashes.get("async") for it in measured} - {None}
    if len(distinct) > 1:
        problems.append("iterations produced different output hashes")
        hash_text += "; iterations differ from each other"
    if leaks:
        problems.append(f"{len(leaks)} leak finding(s)")
    unfinished = [
        f"iteration {i}: {it.status}"
        for i, it in enumerate(measured)
        if any(part.rpartition(":")[2] != "complete" for part in it.status.split(","))
    ]
    if unfinished:
        problems.append("runs did not complete: " + "; ".join(unfinished))
    if hidden > 0:
        problems.append(f"{hidden:g} hidden scheduler resource waiter(s)")
    return {
        "passed": not problems,
        "problems": problems,
        "leaks": leaks,
        "hidden_waiters_max": hidden,
        "hash": hash_text,
    }


def _noise(derived: Mapping[str, SummaryStats]) -> str:
    wall = derived.get("wall_time_seconds")
    if wall is None:
        return "no wall time measured"
    return f"wall time: {noise_note(wall)}. Per-metric notes are in result.json."


def _timeline_note(sampling: Mapping[str, Any]) -> str:
    if not sampling or "total_events" not in sampling:
        return "per phase, see result.json" if sampling else ""
    if sampling.get("keep_fraction", 1.0) >= 1.0:
        return f"all {sampling['total_events']} events of each iteration are kept"
    return (
        f"bounded: {sampling['kept_events']} of {sampling['total_events']} events kept "
        f"({sampling['rule']})"
    )
