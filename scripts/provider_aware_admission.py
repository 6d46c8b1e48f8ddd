"""Measure provider-aware task admission: does provider B keep its throughput while A cools down?

Each iteration runs two real `DatasetBuilder` builds on the in-process simulated providers
(system clock), like the `cross_provider_cooldown` benchmark scenario: B alone, then A and B
together. Provider A is over-subscribed (small capacity, 429 with a long Retry-After), B is
healthy. The figure is B's successful requests per second over its active span, mixed / solo.
Variants add columns on A (several fairness groups on the cooled-down endpoint) or on B.

    .venv/bin/python scripts/provider_aware_admission.py [--a-columns 4] [--iterations 3]
        [--policy provider_aware|bounded_borrow] [--profile default|v1]

`--policy` sets `ROWLOOM_TASK_ADMISSION_POLICY` and `--profile` sets
`ROWLOOM_REQUEST_ADMISSION_PROFILE` (both engine-internal benchmark knobs) for the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from rowloom.bench.events import digest_run
from rowloom.bench.execute import run_dataset
from rowloom.bench.providers import ProviderScript, provider_fleet
from rowloom.bench.workloads import dataset, llm, model, topic_sampler


def _provider_rps(run_dir: Path, provider: str) -> tuple[float, int]:
    attempts = [
        a for a in digest_run(run_dir, timeline_cap=0).attempts if a.resource.startswith(provider)
    ]
    ok = [a for a in attempts if a.outcome == "success"]
    if not ok:
        return 0.0, 0
    span = max(a.completed_at for a in attempts) - min(a.started_at for a in attempts)
    limited = sum(1 for a in attempts if a.outcome == "rate_limited")
    return (len(ok) / span if span > 0 else 0.0), limited


def _skips(run_dir: Path) -> int:
    path = run_dir / "events" / "scheduler.jsonl"
    with path.open(encoding="utf-8") as f:
        return sum(1 for line in f if '"request_pressure_advisory_skipped"' in line)


async def _run(args: argparse.Namespace, solo: bool, workdir: Path, name: str) -> dict[str, Any]:
    b = ProviderScript("prov_b", args.b_capacity, args.latency_ms, seed=args.seed)
    scripts = [b]
    if not solo:
        scripts.append(
            ProviderScript(
                "prov_a",
                args.a_capacity,
                args.latency_ms,
                retry_after_s=args.a_retry_after_s,
                seed=args.seed,
            )
        )
    with provider_fleet(scripts, http=False) as fleet:
        models = [model("b_model", "prov_b", args.b_cap)]
        columns = [topic_sampler()]
        columns += [
            llm(f"b_text{i}", "b_model", f"B{i} on {{{{ topic }}}}.") for i in range(args.b_columns)
        ]
        if not solo:
            models.append(model("a_model", "prov_a", args.a_cap))
            columns += [
                llm(f"a_text{i}", "a_model", f"A{i} on {{{{ topic }}}}.")
                for i in range(args.a_columns)
            ]
        run: dict[str, Any] = {}
        if args.buffer_size:
            run["buffer_size"] = args.buffer_size
        config = dataset(fleet.providers, models, columns, args.seed, run)
        capture = await run_dataset(
            config, args.records, workdir / name, fleet=fleet, hash_output=False
        )
    rps, _ = _provider_rps(capture.run_dir, "prov_b/")
    _, a_limited = _provider_rps(capture.run_dir, "prov_a/")
    out = {
        "b_rps": rps,
        "a_rate_limited": a_limited,
        "skips": _skips(capture.run_dir),
        "wall": capture.measurement.wall_time_seconds,
        "status": capture.status,
        "leaks": capture.leaks(),
    }
    shutil.rmtree(capture.run_dir, ignore_errors=True)
    return out


async def main(args: argparse.Namespace) -> None:
    if args.policy:
        os.environ["ROWLOOM_TASK_ADMISSION_POLICY"] = args.policy
    if args.profile:
        os.environ["ROWLOOM_REQUEST_ADMISSION_PROFILE"] = args.profile
    ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pa-bench-") as tmp:
        for i in range(args.iterations):
            solo = await _run(args, True, Path(tmp), f"solo-{i}")
            mixed = await _run(args, False, Path(tmp), f"mixed-{i}")
            ratio = mixed["b_rps"] / solo["b_rps"] if solo["b_rps"] else 0.0
            ratios.append(ratio)
            print(
                json.dumps(
                    {
                        "iteration": i,
                        "b_solo_rps": round(solo["b_rps"], 2),
                        "b_mixed_rps": round(mixed["b_rps"], 2),
                        "b_throughput_ratio": round(ratio, 3),
                        "a_rate_limited": mixed["a_rate_limited"],
                        "advisory_skip_events": mixed["skips"],
                        "mixed_wall_s": round(mixed["wall"], 2),
                        "status": mixed["status"],
                        "leaks": solo["leaks"] + mixed["leaks"],
                    }
                ),
                flush=True,
            )
    print(
        json.dumps(
            {
                "policy": os.environ.get("ROWLOOM_TASK_ADMISSION_POLICY", "(default)"),
                "profile": os.environ.get("ROWLOOM_REQUEST_ADMISSION_PROFILE", "(default)"),
                "a_columns": args.a_columns,
                "b_columns": args.b_columns,
                "ratio_mean": round(statistics.fmean(ratios), 3),
                "ratio_min": round(min(ratios), 3),
                "ratio_max": round(max(ratios), 3),
            }
        )
    )


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=300)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--a-columns", type=int, default=1)
    p.add_argument("--b-columns", type=int, default=1)
    p.add_argument("--a-capacity", type=int, default=8)
    p.add_argument("--a-cap", type=int, default=32)
    p.add_argument("--a-retry-after-s", type=float, default=2.0)
    p.add_argument("--b-capacity", type=int, default=16)
    p.add_argument("--b-cap", type=int, default=16)
    p.add_argument("--latency-ms", type=float, default=200.0)
    p.add_argument("--buffer-size", type=int, default=0)
    p.add_argument("--policy", choices=("provider_aware", "bounded_borrow"), default=None)
    p.add_argument("--profile", choices=("default", "v1", "no_header_pacing"), default=None)
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_parse()))
