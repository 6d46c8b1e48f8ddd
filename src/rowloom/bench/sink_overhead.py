"""`sink_overhead`: what recording a run's events costs, paired in one process.

One iteration runs the same dataset (two chained model columns on a provider that answers at
once, so the run is CPU-bound and the ratio is the events' share of the engine's own work)
`pairs` times with `run.write_events` off, then on (A B A B). The runs happen in this process,
one after the other, and their CPU is the process's (`time.process_time`, threads included);
with `--http` the provider is `rowloom mock-server` in a child process, whose CPU is not
counted, reached through the OpenAI adapter as a real run would.

Metrics: `events_cpu_overhead_fraction` (median over pairs of on/off - 1: the event log, its
checkpoint writes and the report's reading of it), `report_cpu_seconds` (rewriting
report.html from the events, the view included), the events per run and the bytes per event
of the Arrow files against the JSONL form `rowloom events` prints.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rowloom.bench.machine import Measurement
from rowloom.bench.providers import ProviderScript
from rowloom.bench.scenario import (
    Gate,
    IterationContext,
    IterationResult,
    Knob,
    KnobValue,
    OracleCheck,
    Scenario,
    Target,
    knob_int,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.interface.report import write_report
from rowloom.observability import json_lines, read_events
from rowloom.simulation.process import MockServerProcess

_SCRIPT = ProviderScript("sim", capacity=1000, latency_ms=0.0, seed=1)


def overhead_config(provider: dict[str, Any], *, write_events: bool) -> DatasetConfig:
    """A sampler, two chained model columns (two models) and an expression; 500-row groups."""
    return DatasetConfig.from_dict(
        {
            "providers": [provider],
            "models": [
                {
                    "alias": "writer",
                    "model": "sim-writer",
                    "provider": "sim",
                    "max_parallel_requests": 64,
                },
                {
                    "alias": "judge",
                    "model": "sim-judge",
                    "provider": "sim",
                    "max_parallel_requests": 32,
                },
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["rivers", "glaciers", "deserts"]},
                },
                {
                    "name": "question",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": "Ask about {{ topic }}.",
                },
                {
                    "name": "answer",
                    "column_type": "llm_text",
                    "model_alias": "judge",
                    "prompt": "Answer: {{ question }}",
                },
                {"name": "short", "column_type": "expression", "expr": "{{ answer[:20] }}"},
            ],
            "seed": 3,
            "run": {"buffer_size": 500, "write_events": write_events},
        }
    )


class SinkOverhead(Scenario):
    id = "sink_overhead"
    shape = "3,000 rows x 2 chained model columns, zero-latency provider; events off vs on"
    shows = "CPU the event log + report add to a run (paired in process), bytes per event"
    default_records = 3000
    knobs = (Knob("pairs", 3, "events-off/events-on run pairs per iteration"),)
    targets = (
        Target("events_cpu_overhead_fraction", "<=", 0.10, label="events + report <= 10% CPU"),
        Target(
            "events_cpu_overhead_fraction",
            "<=",
            0.03,
            http_only=True,
            label="events + report <= 3% CPU over HTTP",
        ),
        Target("jsonl_to_arrow_bytes_ratio", ">=", 4.0, label="4x fewer bytes than JSONL"),
    )
    gate = Gate("events_on_cpu_seconds", 0.10, "events-on run CPU within 10% of baseline")
    headline = (
        "events_cpu_overhead_fraction",
        "events_on_cpu_seconds",
        "events_off_cpu_seconds",
        "report_cpu_seconds",
        "events_per_run",
        "arrow_bytes_per_event",
        "jsonl_bytes_per_event",
        "jsonl_to_arrow_bytes_ratio",
    )

    def provider_scripts(self, knobs: Mapping[str, KnobValue], seed: int) -> list[ProviderScript]:
        return [_SCRIPT]

    def warmup_context(self, ctx: IterationContext) -> IterationContext:
        """A warm-up runs one pair at a tenth of the rows (imports, caches)."""
        return IterationContext(
            max(100, ctx.records // 10),
            ctx.seed,
            {**ctx.knobs, "pairs": 1},
            ctx.http,
            ctx.workdir,
            ctx.index,
            True,
            ctx.timeline_cap,
        )

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        server = MockServerProcess(_SCRIPT.server_options()) if ctx.http else None
        if server is not None:
            server.start()
        try:
            provider = (
                {"name": "sim", "provider_type": "openai", "endpoint": server.url}
                if server is not None
                else {
                    "name": "sim",
                    "provider_type": "simulated",
                    "simulation": _SCRIPT.simulation().model_dump(),
                }
            )
            return await self._pairs(ctx, provider)
        finally:
            if server is not None:
                server.stop()

    async def _pairs(self, ctx: IterationContext, provider: dict[str, Any]) -> IterationResult:
        wall = time.perf_counter()
        on: list[float] = []
        off: list[float] = []
        statuses: set[str] = set()
        for i in range(knob_int(ctx.knobs, "pairs")):
            for events, runs in ((False, off), (True, on)):
                cpu, status = await _run(ctx.workdir, provider, ctx.records, events, f"p{i}")
                runs.append(cpu)
                statuses.add(status)
        run_dir = ctx.workdir / f"p{len(on) - 1}-events"
        started = time.process_time()
        write_report(run_dir)
        report_cpu = time.process_time() - started
        metrics = {
            "events_cpu_overhead_fraction": statistics.median(
                a / b - 1.0 for a, b in zip(on, off, strict=True)
            ),
            "events_on_cpu_seconds": statistics.median(on),
            "events_off_cpu_seconds": statistics.median(off),
            "report_cpu_seconds": report_cpu,
            **_sizes(run_dir),
        }
        m = Measurement()
        m.wall_time_seconds = time.perf_counter() - wall
        m.cpu_seconds = sum(on) + sum(off) + report_cpu
        m.peak_rss_method = "not measured"
        for i in range(len(on)):
            for suffix in ("events", "no-events"):
                shutil.rmtree(ctx.workdir / f"p{i}-{suffix}", ignore_errors=True)
        return IterationResult(
            measurement=m,
            metrics=metrics,
            details={"pairs": [{"off": a, "on": b} for a, b in zip(off, on, strict=True)]},
            status="complete" if statuses == {"complete"} else ",".join(sorted(statuses)),
        )

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        return OracleCheck("none", reason="measures the cost of events, not generated values")


async def _run(
    root: Path, provider: dict[str, Any], rows: int, events: bool, name: str
) -> tuple[float, str]:
    """CPU seconds of one `create` (this process's, threads included) and its status."""
    config = overhead_config(provider, write_events=events)
    folder = f"{name}-{'events' if events else 'no-events'}"
    shutil.rmtree(root / folder, ignore_errors=True)
    started = time.process_time()
    result = await Designer(root).acreate(config, rows, folder)
    return time.process_time() - started, result.summary.status


def _sizes(run_dir: Path) -> dict[str, float]:
    """Events per run and bytes per event: the Arrow files vs the JSONL form."""
    events = sum(read_events(run_dir, s).num_rows for s in ("scheduler", "requests"))
    arrow = sum(p.stat().st_size for p in (run_dir / "events").glob("*.arrows"))
    jsonl = sum(len(line) + 1 for line in json_lines(run_dir))
    return {
        "events_per_run": float(events),
        "arrow_bytes_per_event": arrow / max(1, events),
        "jsonl_bytes_per_event": jsonl / max(1, events),
        "jsonl_to_arrow_bytes_ratio": jsonl / max(1, arrow),
    }
