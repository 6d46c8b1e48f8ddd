"""Measure request admission's overload control end to end on the in-process simulated provider.

Each run is a real `DatasetBuilder` run (scheduler, task admission, `ModelRequestExecutor`,
request admission) of one `llm_text` column against a simulated provider on the system clock.
The script wraps the provider client to time every attempt and samples the request limit, then
prints the figures the benchmark scenarios name:

    .venv/bin/python scripts/overload_control.py aimd_convergence [--profile v1] [--records 4000]
    .venv/bin/python scripts/overload_control.py queueing_overload --slots 8 [--rule latency]
    .venv/bin/python scripts/overload_control.py rpm --rpm 1200 [--pacing off]

`--profile v1` selects the V1 request-admission behaviour (AIMD, cooldown blocks every new
admission, no header pacing) through `ROWLOOM_REQUEST_ADMISSION_PROFILE`; `--pacing off` keeps
the default profile but turns header pacing off. For ablations, `--override field=value`
replaces engine-internal `RequestAdmissionConfig` fields (`cooldown_mode=block_all`,
`default_limit_rule=aimd_v1`). Figures:

- goodput_ratio: successful requests per second / (capacity / mean latency), or / (rpm / 60);
- rate_limited_fraction: 429 answers / attempts, whole run and after `--settle` seconds;
- settled_limit: the median request limit after the settle time (queueing_overload);
- p50/p95 latency of successful attempts after the settle time, and the unloaded latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rowloom import DatasetConfig, RunConfig
from rowloom.builder.builder import DatasetBuilder, RunMonitor
from rowloom.config.models import ModelProvider
from rowloom.models.clients import make_model_client
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelClient,
    ProviderError,
    TransportPoolLimits,
)


@dataclass
class Attempt:
    started: float
    ended: float
    outcome: str


@dataclass
class Recorder:
    attempts: list[Attempt] = field(default_factory=list)
    limits: list[tuple[float, int, int]] = field(default_factory=list)  # (t, limit, in_flight)


class RecordingClient:
    """Delegates to the real client and records each attempt's time and outcome."""

    def __init__(self, inner: ModelClient, recorder: Recorder) -> None:
        self._inner = inner
        self._rec = recorder

    @property
    def provider_name(self) -> str:
        return self._inner.provider_name

    @property
    def transport_pool_limits(self) -> TransportPoolLimits | None:
        return self._inner.transport_pool_limits

    async def chat(self, request: ChatRequest) -> ChatResponse:
        started = time.monotonic()
        outcome = "unexpected"
        try:
            response = await self._inner.chat(request)
            outcome = "success"
            return response
        except ProviderError as exc:
            outcome = exc.error_class
            raise
        finally:
            self._rec.attempts.append(Attempt(started, time.monotonic(), outcome))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        return await self._inner.embed(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def dataset(sim: dict[str, Any], model: dict[str, Any]) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [{"name": "sim", "provider_type": "simulated", "simulation": sim}],
            "models": [{"alias": "m", "model": "sim-model", "provider": "sim", **model}],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["a", "b", "c"]},
                },
                {
                    "name": "text",
                    "column_type": "llm_text",
                    "model_alias": "m",
                    "prompt": "Write about {{ topic }}.",
                },
            ],
            "seed": 3,
        }
    )


async def run_once(config: DatasetConfig, records: int) -> tuple[Recorder, dict[str, Any]]:
    rec = Recorder()
    monitor = RunMonitor()

    def factory(provider: ModelProvider, *, max_connections: int, **kw: Any) -> ModelClient:
        return RecordingClient(
            make_model_client(provider, max_connections=max_connections, **kw), rec
        )

    builder = DatasetBuilder(
        config,
        run_config=RunConfig(buffer_size=1000, max_concurrent_row_groups=3, write_events=False),
        monitor=monitor,
        client_factory=factory,
    )
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            admission = monitor.admission
            if admission is not None:
                snap = admission.runtime_snapshot()
                for key, limit in snap.current_limits.items():
                    rec.limits.append((time.monotonic(), limit, snap.in_flight[key]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    sampler = asyncio.create_task(sample())
    try:
        outputs = await builder.build(records, run_dir=None, name="overload")
    finally:
        stop.set()
        await sampler
    admission = monitor.admission
    final = {
        "status": outputs.summary.status,
        "rows": outputs.summary.rows_written,
        "requests_by_outcome": outputs.summary.requests_by_outcome,
        "in_flight_at_end": admission.in_flight_total() if admission else None,
        "waiters_at_end": admission.waiters_total() if admission else None,
    }
    if admission is not None and hasattr(admission, "limit_rules"):
        final["limit_rules"] = {k.as_key_str(): v for k, v in admission.limit_rules().items()}
    return rec, final


def install_overrides(overrides: dict[str, str]) -> None:
    """Replace engine-internal config fields of every run's request admission (ablations)."""
    from rowloom.models.request_admission import RequestAdmissionConfig

    original = RequestAdmissionConfig.from_catalog.__func__  # type: ignore[attr-defined]

    def patched(cls: Any, *args: Any, **kwargs: Any) -> Any:
        config = original(cls, *args, **kwargs)
        typed: dict[str, Any] = {
            k: (v == "true" if v in ("true", "false") else v) for k, v in overrides.items()
        }
        if "default_limit_rule" in typed:  # per-resource rules from the catalog follow it
            typed["limit_rules"] = {r: typed["default_limit_rule"] for r in config.limit_rules}
        return dataclasses.replace(config, **typed)

    RequestAdmissionConfig.from_catalog = classmethod(patched)  # type: ignore[assignment]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize(rec: Recorder, settle: float, physical_rps: float) -> dict[str, Any]:
    if not rec.attempts:
        return {}
    t0 = min(a.started for a in rec.attempts)
    t_end = max(a.ended for a in rec.attempts)
    wall = t_end - t0
    ok = [a for a in rec.attempts if a.outcome == "success"]
    limited = [a for a in rec.attempts if a.outcome == "rate_limited"]
    after = [a for a in rec.attempts if a.started - t0 >= settle]
    ok_after = [a for a in after if a.outcome == "success"]
    limited_after = [a for a in after if a.outcome == "rate_limited"]
    wall_after = max(1e-9, t_end - (t0 + settle))
    lat_after = [a.ended - a.started for a in ok_after]
    limits_after = [lim for t, lim, _ in rec.limits if t - t0 >= settle]
    return {
        "wall_seconds": round(wall, 2),
        "attempts": len(rec.attempts),
        "successes": len(ok),
        "rate_limited": len(limited),
        "other_failures": len(rec.attempts) - len(ok) - len(limited),
        "goodput_ratio": round(len(ok) / wall / physical_rps, 3),
        "rate_limited_fraction": round(len(limited) / len(rec.attempts), 4),
        "after_settle": {
            "settle_seconds": settle,
            "attempts": len(after),
            "goodput_ratio": round(len(ok_after) / wall_after / physical_rps, 3),
            "rate_limited_fraction": round(len(limited_after) / max(1, len(after)), 4),
            "latency_p50_ms": _ms(percentile(lat_after, 50)),
            "latency_p95_ms": _ms(percentile(lat_after, 95)),
            "limit_median": statistics.median(limits_after) if limits_after else None,
            "limit_min": min(limits_after) if limits_after else None,
            "limit_max": max(limits_after) if limits_after else None,
        },
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["aimd_convergence", "queueing_overload", "rpm"])
    parser.add_argument("--profile", choices=["default", "v1"], default="default")
    parser.add_argument("--pacing", choices=["on", "off"], default="on")
    parser.add_argument("--rule", choices=["aimd", "latency"], default=None)
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--capacity", type=int, default=32)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--max-parallel", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--distribution", choices=["fixed", "lognormal"], default="fixed")
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    if args.override:
        install_overrides(dict(o.split("=", 1) for o in args.override))

    if args.profile == "v1":
        os.environ["ROWLOOM_REQUEST_ADMISSION_PROFILE"] = "v1"
    elif args.pacing == "off":
        os.environ["ROWLOOM_REQUEST_ADMISSION_PROFILE"] = "no_header_pacing"
    latency_s = args.latency_ms / 1000
    sim: dict[str, Any] = {
        "latency_ms": args.latency_ms,
        "latency_distribution": args.distribution,
        "retry_after_s": 1.0,
        "seed": args.seed,
    }
    model: dict[str, Any] = {"generation_kind": "chat"}
    if args.scenario == "aimd_convergence":
        sim.update(capacity=args.capacity, overload="reject")
        model["max_parallel_requests"] = args.max_parallel or 2 * args.capacity
        records = args.records or 4000
        physical = args.capacity / latency_s
        unloaded = latency_s
    elif args.scenario == "queueing_overload":
        sim.update(capacity=args.slots, overload="queue")
        model["max_parallel_requests"] = args.max_parallel or 8 * args.slots
        records = args.records or 1500
        physical = args.slots / latency_s
        unloaded = latency_s
    else:
        sim.update(capacity=max(64, args.capacity), overload="reject", rpm=args.rpm)
        model["max_parallel_requests"] = args.max_parallel or 32
        records = args.records or 2 * args.rpm
        physical = args.rpm / 60.0
        unloaded = latency_s
    if args.rule is not None:
        model["limit_rule"] = args.rule
    config = dataset(sim, model)
    rec, final = asyncio.run(run_once(config, records))
    out = {
        "scenario": args.scenario,
        "command": " ".join(["scripts/overload_control.py", *sys.argv[1:]]),
        "profile": args.profile,
        "pacing": args.pacing,
        "overrides": args.override,
        "simulation": sim,
        "model": model,
        "records": records,
        "unloaded_latency_ms": unloaded * 1000,
        **summarize(rec, args.settle, physical),
        "final": final,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
