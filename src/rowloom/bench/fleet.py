"""`fleet_sim`: the share logic past this machine, on a simulated fleet (no Ray, no sockets).

Each cell `<workers>x<slots>` runs `rowloom.distributed.fleet_sim` for `duration` simulated
seconds: virtual workers with unequal demand share one provider through the real
`ShareCoordinator` and `ShareGate`s. Figures per cell: the fleet's 429 fraction (overall, after
settling, in a storm when one is scripted), goodput after settling as a fraction of
capacity/latency, time to settle, fairness between workers of unequal demand (Jain's index of
throughput over the max-min fair share), and the coordinator's CPU per report and reports per
second (at 1,000 workers: whether one coordinator per provider keeps up). `--mode independent`
is the baseline: every worker runs its own adaptive limit, as N separate engines would.
`--rpm N` gives the provider a request budget per sliding minute with `x-ratelimit-*` headers
(the `rate_limit_headers` scenario's provider); `--pacing worker` is its baseline (each worker
paces on its own answers) against `fleet` (the coordinator splits the key's budget).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rowloom.bench.machine import Measurement, measure
from rowloom.bench.scenario import (
    Gate,
    IterationContext,
    IterationResult,
    Knob,
    KnobValue,
    OracleCheck,
    Scenario,
    Target,
    knob_float,
    knob_str,
)
from rowloom.distributed.fleet_sim import FleetMode, FleetSimConfig, PacingMode, simulate_fleet

_FIGURES = (
    ("rate_limited_fraction", "429s"),
    ("rate_limited_fraction_after_settling", "429s settled"),
    ("goodput_ratio_after_settling", "goodput settled"),
    ("time_to_settle_seconds", "settle s"),
    ("fairness_jain", "fairness (Jain)"),
    ("skewed_vs_small_throughput", "3x-demand / 1x"),
    ("coordinator_cpu_us_per_report", "CPU us/report"),
    ("reports_per_second", "reports/s"),
    ("coordinator_cpu_fraction", "coordinator CPU share"),
    ("rate_limited_fraction_in_storm", "429s in storm"),
    ("goodput_vs_rpm", "goodput / rpm budget"),
)


def parse_cells(text: str) -> list[tuple[int, int]]:
    """`16x32,1000x10000` -> [(16, 32), (1000, 10000)]; ValueError when malformed."""
    cells = []
    for part in text.split(","):
        if not part.strip():
            continue
        workers, _, slots = part.strip().partition("x")
        if not workers.isdigit() or not slots.isdigit():
            raise ValueError(f"a fleet cell is WORKERSxSLOTS, not {part!r}")
        cells.append((int(workers), int(slots)))
    return cells


class FleetSimulation(Scenario):
    id = "fleet_sim"
    shape = "16, 128, 1,000 virtual workers x providers of 32 to 10,000 slots (simulated)"
    shows = (
        "fleet 429 fraction, goodput vs capacity/latency after settling, time to settle, "
        "fairness between unequal workers, coordinator CPU per report and reports/s"
    )
    default_records = 0
    uses_providers = False
    knobs = (
        Knob("cells", "16x32,128x1000,1000x10000,1000x32", "WORKERSxSLOTS cells", "str"),
        Knob("duration", 60.0, "simulated seconds per cell", "float"),
        Knob("latency", 1.0, "mean request latency (s)", "float"),
        Knob("latency_sigma", 0.5, "lognormal spread of latency", "float"),
        Knob("storm_at", None, "a storm (capacity halved for 10 s) at this second", "float"),
        Knob("report_interval", 0.2, "seconds between a worker's reports", "float"),
        Knob(
            "mode",
            "shared",
            "shared limit or independent per-worker limits",
            "str",
            ("shared", "independent"),
        ),
        Knob("rpm", None, "provider requests per sliding minute (x-ratelimit-* headers)", "int"),
        Knob(
            "pacing",
            "fleet",
            "with --rpm: the coordinator paces the key's budget, or each worker alone",
            "str",
            ("fleet", "worker"),
        ),
    )
    targets = (
        Target(
            "rate_limited_fraction_after_settling@1000x*",
            "<=",
            0.01,
            label="1,000 workers: 429s <= 1% after settling",
        ),
        Target(
            "goodput_ratio_after_settling@1000x*",
            ">=",
            0.90,
            label="1,000 workers: goodput >= 0.90 of capacity/latency after settling",
        ),
    )
    gate = Gate("rate_limited_fraction", 0.5, "fleet: 429 fraction within 1.5x of baseline")
    headline = ("wall_time_seconds", "cpu_seconds", "peak_rss_bytes")

    def summary_extra(self, result: Mapping[str, Any]) -> list[str]:
        """One row per cell: the mean of each figure over iterations."""
        derived = result["derived_metrics"]
        cells = sorted(
            {n.split("@", 1)[1] for n in derived if n.startswith("fairness_jain@")},
            key=lambda c: tuple(int(x) for x in c.split("x")),
        )
        lines = [
            "## Fleet (mean over iterations)",
            "",
            "| workers x slots | " + " | ".join(label for _, label in _FIGURES) + " |",
            "|---" * (len(_FIGURES) + 1) + "|",
        ]
        for cell in cells:
            values = []
            for name, _ in _FIGURES:
                stats = derived.get(f"{name}@{cell}")
                values.append("-" if not stats else f"{float(stats['mean']):.4g}")
            lines.append(f"| {cell} | " + " | ".join(values) + " |")
        return lines

    def warmup_context(self, ctx: IterationContext) -> IterationContext:
        """A warm-up runs the smallest cell for 5 simulated seconds."""
        smallest = min(parse_cells(knob_str(ctx.knobs, "cells")))
        knobs = {**ctx.knobs, "cells": f"{smallest[0]}x{smallest[1]}", "duration": 5.0}
        return IterationContext(
            ctx.records, ctx.seed, knobs, ctx.http, ctx.workdir, ctx.index, True, ctx.timeline_cap
        )

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        return fleet_iteration(ctx.knobs, ctx.seed)

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        return OracleCheck("none", reason="no dataset: the fleet is simulated")


def fleet_iteration(knobs: Mapping[str, KnobValue], seed: int) -> IterationResult:
    """Every cell once; metrics keyed `<figure>@<workers>x<slots>`."""
    storm = knobs.get("storm_at")
    mode: FleetMode = "independent" if knob_str(knobs, "mode") == "independent" else "shared"
    pacing: PacingMode = "worker" if knob_str(knobs, "pacing") == "worker" else "fleet"
    rpm = knobs.get("rpm")
    metrics: dict[str, float] = {}
    cells: dict[str, Any] = {}
    total = Measurement()
    for workers, slots in parse_cells(knob_str(knobs, "cells")):
        cfg = FleetSimConfig(
            workers=workers,
            slots=slots,
            latency_seconds=knob_float(knobs, "latency"),
            latency_sigma=knob_float(knobs, "latency_sigma"),
            duration_seconds=knob_float(knobs, "duration"),
            report_interval=knob_float(knobs, "report_interval"),
            storm_at=None if storm is None else float(storm),
            mode=mode,
            rpm=None if rpm is None else int(rpm),
            pacing=pacing,
            seed=seed,
        )
        with measure() as m:
            result = simulate_fleet(cfg)
        key = f"{workers}x{slots}"
        figures = result.summary()
        cells[key] = {**figures, "cuts": result.cuts, **result.extra}
        for name, value in figures.items():
            metrics[f"{name}@{key}"] = value
        total.wall_time_seconds += m.wall_time_seconds
        total.cpu_seconds += m.cpu_seconds
        total.peak_rss_bytes = max(total.peak_rss_bytes, m.peak_rss_bytes)
        total.peak_rss_method = m.peak_rss_method
    metrics["wall_time_seconds"] = total.wall_time_seconds
    metrics["cpu_seconds"] = total.cpu_seconds
    metrics["peak_rss_bytes"] = float(total.peak_rss_bytes)
    return IterationResult(
        measurement=total,
        metrics=metrics,
        details={"cells": cells, "mode": mode, "rpm": rpm, "pacing": pacing},
        final_task_snapshot={"note": "no task admission in this scenario", "active_leases": 0},
        final_request_snapshot={
            "note": "simulated fleet: no request admission controller",
            "in_flight_total": 0,
            "waiters_total": 0,
        },
        timeline_sampling={
            "total_events": 0,
            "kept_events": 0,
            "keep_fraction": 1.0,
            "rule": "no event streams: the fleet is simulated on a ManualClock",
        },
    )
