"""Overload without 429 on a real server: llama.cpp with N slots queues what it cannot serve.

Starts the test suite's llama.cpp server (SmolLM2-135M through xllamacpp; see
tests/integration/llama_server.py), measures the unloaded latency (one request at a time), then
sends `--requests` chat calls from `--callers` concurrent callers through the real stack
(`ModelRequestExecutor`, `AdaptiveRequestAdmissionController`, `OpenAICompatibleClient`) with
`max_parallel_requests = --max-parallel`, once per limit rule, and prints the settled limit,
throughput and latency percentiles. A reference run first fills exactly the server's slots (AIMD,
`max_parallel_requests = slots`, as many callers): the latency with every slot busy and no
server queue.

    .venv/bin/python scripts/llama_overload.py --slots 4 --rules aimd,latency

Requests use temperature 0 and a fixed `max_tokens`, so service times are comparable. The server
binds 127.0.0.1 and is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.models.clients.model_request_executor import ModelRequestExecutor
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from llama_server import (  # type: ignore[import-not-found]
    MODEL_ALIAS,
    missing_requirement,
    start_llama_server,
)

PROMPTS = ("rivers", "volcanoes", "owls", "deserts", "glaciers", "coral reefs", "foxes", "moss")


class TimedClient:
    """Delegates to the real client and records each successful attempt's duration."""

    def __init__(self, inner: OpenAICompatibleClient) -> None:
        self._inner = inner
        self.origin = time.monotonic()
        self.latencies: list[tuple[float, float]] = []  # (completed at, seconds)

    @property
    def provider_name(self) -> str:
        return self._inner.provider_name

    @property
    def transport_pool_limits(self) -> Any:
        return self._inner.transport_pool_limits

    async def chat(self, request: Any) -> Any:
        t0 = time.monotonic()
        response = await self._inner.chat(request)
        done = time.monotonic()
        self.latencies.append((done - self.origin, done - t0))
        return response

    async def embed(self, request: Any) -> Any:
        return await self._inner.embed(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def load(
    url: str, rule: str, *, requests: int, callers: int, max_parallel: int, max_tokens: int
) -> dict[str, Any]:
    catalog = ModelResourceCatalog(
        [
            ModelConfig.model_validate(
                {
                    "alias": "small",
                    "model": MODEL_ALIAS,
                    "provider": "llama",
                    "max_parallel_requests": max_parallel,
                    "limit_rule": rule,
                    "inference_parameters": {
                        "temperature": 0.0,
                        "max_tokens": max_tokens,
                        "timeout": 300,
                    },
                }
            )
        ],
        [ModelProvider(name="llama", provider_type="openai", endpoint=url)],
    )
    config = RequestAdmissionConfig.from_catalog(catalog)
    admission = AdaptiveRequestAdmissionController(config)
    client = OpenAICompatibleClient("llama", url, max_connections=max(max_parallel, callers))
    timed = TimedClient(client)
    executor = ModelRequestExecutor(
        resolver=RequestResourceResolver(catalog), clients={"llama": timed}, admission=admission
    )
    resource = next(iter(config.resources))
    limits: list[tuple[float, int, int]] = []
    issued = 0
    started = time.monotonic()
    timed.origin = started

    async def caller() -> None:
        nonlocal issued
        while issued < requests:
            issued += 1
            topic = PROMPTS[issued % len(PROMPTS)]
            await executor.execute_chat(
                "small", [{"role": "user", "content": f"Write one sentence about {topic}."}]
            )

    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            snap = admission.pressure.snapshot(resource)
            if snap is not None:
                limits.append((time.monotonic() - started, snap.current_limit, snap.in_flight))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)

    sampler = asyncio.create_task(sample())
    try:
        await asyncio.gather(*(caller() for _ in range(callers)))
    finally:
        stop.set()
        await sampler
        admission.shutdown()
        await client.aclose()
    wall = time.monotonic() - started
    latencies = timed.latencies
    settle_after = wall / 3
    tail = [s for t, s in latencies if t >= settle_after]
    tail_limits = [lim for t, lim, _ in limits if t >= settle_after]
    tail_in_flight = [f for t, _, f in limits if t >= settle_after]
    return {
        "rule": rule,
        "requests": requests,
        "wall_seconds": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 3),
        "latency_p50_s": round(percentile(tail, 50), 3),
        "latency_p95_s": round(percentile(tail, 95), 3),
        "settled_limit_median": statistics.median(tail_limits),
        "settled_limit_range": [min(tail_limits), max(tail_limits)],
        "in_flight_median": statistics.median(tail_in_flight),
        "attempts_by_outcome": executor.stats.by_outcome,
        "leases_at_end": admission.in_flight_total(),
        "waiters_at_end": admission.waiters_total(),
    }


async def unloaded(url: str, count: int, max_tokens: int) -> dict[str, float]:
    client = OpenAICompatibleClient("llama", url, max_connections=1)
    from rowloom.models.clients.base import ChatRequest

    times = []
    try:
        for i in range(count):
            request = ChatRequest(
                model=MODEL_ALIAS,
                messages=(
                    {
                        "role": "user",
                        "content": f"Write one sentence about {PROMPTS[i % len(PROMPTS)]}.",
                    },
                ),
                temperature=0.0,
                max_tokens=max_tokens,
            )
            t0 = time.monotonic()
            await client.chat(request)
            times.append(time.monotonic() - t0)
    finally:
        await client.aclose()
    return {
        "p50_s": round(percentile(times, 50), 3),
        "p95_s": round(percentile(times, 95), 3),
        "mean_s": round(statistics.fmean(times), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--max-parallel", type=int, default=16)
    parser.add_argument("--callers", type=int, default=24)
    parser.add_argument("--requests", type=int, default=240)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--rules", default="aimd,latency")
    args = parser.parse_args()
    reason = missing_requirement()
    if reason is not None:
        raise SystemExit(f"llama.cpp server unavailable: {reason}")
    server = start_llama_server(n_parallel=args.slots, n_ctx=512 * args.slots)
    try:
        out: dict[str, Any] = {
            "command": " ".join(["scripts/llama_overload.py", *sys.argv[1:]]),
            "slots": args.slots,
            "max_parallel_requests": args.max_parallel,
            "callers": args.callers,
            "max_tokens": args.max_tokens,
            "unloaded": asyncio.run(unloaded(server.url, 12, args.max_tokens)),
            "slots_full_no_queue": asyncio.run(
                load(
                    server.url,
                    "aimd",
                    requests=max(8, args.requests // 2),
                    callers=args.slots,
                    max_parallel=args.slots,
                    max_tokens=args.max_tokens,
                )
            ),
        }
        runs = []
        for rule in args.rules.split(","):
            runs.append(
                asyncio.run(
                    load(
                        server.url,
                        rule,
                        requests=args.requests,
                        callers=args.callers,
                        max_parallel=args.max_parallel,
                        max_tokens=args.max_tokens,
                    )
                )
            )
        out["runs"] = runs
        print(json.dumps(out, indent=2))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
