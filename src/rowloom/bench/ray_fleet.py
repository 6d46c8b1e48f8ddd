"""`ray_fleet`: the Ray engine's one limit per provider, against a real HTTP mock provider.

`workers` Ray workers generate a dataset whose two model columns call two models of one
provider, each configured at `model_cap` in-flight requests, against `mock-server` with
`capacity` slots, `latency_ms` per request, answering 429 beyond its capacity. Figures: the
fleet's 429 fraction (the server's counters) and its goodput (completed requests per second
over the active span, from the workers' request events) as a fraction of capacity/latency.
`--shares independent` is the baseline: every worker runs its own adaptive limits, as
independent jobs would. Run it where Ray may only use loopback, e.g.
`unshare -n sh -c 'ip link set lo up && rowloom bench run ray_fleet'`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rowloom.bench.machine import measure
from rowloom.bench.providers import ProviderScript
from rowloom.bench.scenario import (
    Gate,
    IterationContext,
    IterationResult,
    Knob,
    OracleCheck,
    Scenario,
    Target,
    knob_float,
    knob_int,
    knob_str,
    scoped_environment,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.distributed.worker import SHARES_ENV
from rowloom.interface.designer import Designer
from rowloom.observability import read_events
from rowloom.simulation.process import MockServerProcess


def fleet_config(endpoint: str, model_cap: int, buffer_size: int) -> DatasetConfig:
    """Two model columns on two models of one provider, each at `model_cap`."""
    return DatasetConfig.from_dict(
        {
            "providers": [{"name": "mock", "provider_type": "openai", "endpoint": endpoint}],
            "models": [
                {
                    "alias": "writer",
                    "model": "sim-writer-8b",
                    "provider": "mock",
                    "max_parallel_requests": model_cap,
                },
                {
                    "alias": "judge",
                    "model": "sim-judge-70b",
                    "provider": "mock",
                    "max_parallel_requests": model_cap,
                },
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["rivers", "glaciers", "dunes", "reefs"]},
                },
                {
                    "name": "text",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": "Write two sentences about {{ topic }}.",
                },
                {
                    "name": "verdict",
                    "column_type": "llm_text",
                    "model_alias": "judge",
                    "prompt": "Is this about {{ topic }}? {{ text }}",
                },
            ],
            "seed": 17,
            "run": {
                "buffer_size": buffer_size,
                "max_concurrent_row_groups": 2,
                "write_events": True,
            },
        }
    )


def _model_request_times(run_dir: Path) -> list[float]:
    """Capture times of every worker's model request starts and completions."""
    times: list[float] = []
    for events in sorted(run_dir.glob("workers/*/events")):
        table = read_events(events.parent, "requests")
        kinds = pc.cast(table.column("event_kind"), pa.string())
        mask = pc.starts_with(kinds, "model_request_")
        times += table.column("captured_at_monotonic").filter(mask).to_pylist()
    return times


def active_span(run_dir: Path) -> float:
    """Seconds from the fleet's first model request to its last answer (one host's clock)."""
    times = _model_request_times(run_dir)
    return max(times) - min(times) if len(times) > 1 else 0.0


class RayFleet(Scenario):
    id = "ray_fleet"
    shape = "4 Ray workers, 2 models x 32 on one 24-slot mock-server (100 ms, 429 beyond)"
    shows = "fleet 429 fraction and goodput vs capacity/latency; shared vs independent limits"
    default_records = 1500
    knobs = (
        Knob("workers", 4, "Ray workers"),
        Knob("capacity", 24, "mock-server slots"),
        Knob("latency_ms", 100.0, "mock-server latency", "float"),
        Knob("model_cap", 32, "max_parallel_requests of each model"),
        Knob("buffer_size", 50, "rows per row group"),
        Knob(
            "shares",
            "fleet",
            "fleet (one limit per provider) or independent",
            "str",
            ("fleet", "independent"),
        ),
    )
    targets = (
        Target(
            "rate_limited_fraction", "<=", 0.01, http_only=False, label="429s <= 1% of requests"
        ),
        Target("goodput_ratio", ">=", 0.90, label="goodput >= 0.90 of capacity/latency"),
    )
    gate = Gate("rate_limited_fraction", 0.5, "ray fleet: 429 fraction within 1.5x of baseline")
    headline = ("wall_time_seconds", "goodput_ratio", "rate_limited_fraction", "cpu_seconds")

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        knobs = ctx.knobs
        script = ProviderScript(
            "mock",
            capacity=knob_int(knobs, "capacity"),
            latency_ms=knob_float(knobs, "latency_ms"),
            overload="reject",
        )
        server = MockServerProcess(script.server_options())
        server.start()
        try:
            config = fleet_config(
                server.url, knob_int(knobs, "model_cap"), knob_int(knobs, "buffer_size")
            )
            env = {SHARES_ENV: knob_str(knobs, "shares"), "RAY_USAGE_STATS_ENABLED": "0"}
            designer = Designer(ctx.workdir, engine="ray", workers=knob_int(knobs, "workers"))
            name = f"fleet-{ctx.index}"
            with scoped_environment(env), measure() as m:
                result = await designer.acreate(config, ctx.records, name)
            stats = server.stats()
        finally:
            server.stop()
        run_dir = ctx.workdir / name
        span = active_span(run_dir)
        completed = int(stats.get("completed", 0))
        requests = int(stats.get("requests", 0))
        ideal = script.physical_limit_rps or 1.0
        metrics = {
            "wall_time_seconds": m.wall_time_seconds,
            "cpu_seconds": m.cpu_seconds,
            "peak_rss_bytes": float(m.peak_rss_bytes),
            "active_span_seconds": span,
            "rate_limited_fraction": int(stats.get("rate_limited", 0)) / max(1, requests),
            "goodput_ratio": completed / span / ideal if span > 0 else 0.0,
            "rows_written": float(result.summary.rows_written),
            "server_peak_in_flight": float(stats.get("peak_in_flight", 0)),
        }
        fleet = json.loads((run_dir / "fleet.json").read_text(encoding="utf-8"))
        return IterationResult(
            measurement=m,
            metrics=metrics,
            details={
                "server": stats,
                "fleet": {k: v for k, v in fleet.items() if k != "share_changes"},
            },
            final_task_snapshot={"note": "per worker, in workers/*/capacity_plan.json"},
            final_request_snapshot={"in_flight_total": 0, "waiters_total": 0},
            timeline_sampling={
                "total_events": 0,
                "kept_events": 0,
                "keep_fraction": 1.0,
                "rule": "events stay in the run folder's workers/*/",
            },
        )

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        return OracleCheck(
            "none",
            reason="tests/distributed check the Ray engine's output against the async engine",
        )
