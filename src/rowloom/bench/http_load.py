"""`mock_server_load`: the HTTP path's own throughput against `rowloom mock-server`.

The mock server runs in a child process (`MockServerProcess`, 127.0.0.1, latency 0, capacity
four times the concurrency, so it never refuses); here `concurrency` closed-loop workers send
`requests` chat completions over loopback, bounded by `max_seconds`. Two clients can be
measured in one iteration (`clients` knob): `raw`, a bare aiohttp session posting the JSON body
(what loopback HTTP costs at all), and `adapter`, rowloom's `OpenAICompatibleClient` (its
pooled aiohttp session, JSON, classification and headers: what the engine really pays per
request). The client CPU per request is this process's CPU time (the server's is in the
child), so the figure is the engine side's cost; requests/s says how fast one mock server can
feed a benchmark. Every iteration starts from a fresh server and a warm-up of `warmup`
requests per client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp

from rowloom.bench.machine import Measurement, measure
from rowloom.bench.scenario import (
    Gate,
    IterationContext,
    IterationResult,
    Knob,
    OracleCheck,
    Scenario,
    knob_float,
    knob_int,
    knob_str,
    scaled_warmup,
    without_requests,
    without_timeline,
)
from rowloom.models.clients.base import ChatRequest
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient
from rowloom.simulation.process import MockServerProcess
from rowloom.simulation.server import MockServerOptions

CLIENTS = ("raw", "adapter")
MODEL = "simulated-model"
MESSAGES = ({"role": "user", "content": "Write one sentence about rivers."},)
Load = Callable[[str, int, int, float], Awaitable[int]]
Send = Callable[[], Awaitable[None]]


async def _closed_loop(total: int, concurrency: int, deadline: float, send: Send) -> int:
    """`concurrency` workers call `send()` until `total` calls were started or time is up."""
    started = 0

    async def worker() -> None:
        nonlocal started
        while started < total and time.monotonic() < deadline:
            started += 1
            await send()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return started


async def raw_load(url: str, total: int, concurrency: int, deadline: float) -> int:
    """Bare aiohttp POSTs of the chat body; any status but 200 is an error."""
    body = {"model": MODEL, "messages": list(MESSAGES), "max_tokens": 32}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(f"{url}/chat/completions", json=body) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"the mock server answered HTTP {resp.status}")

        return await _closed_loop(total, concurrency, deadline, send)


async def adapter_load(url: str, total: int, concurrency: int, deadline: float) -> int:
    """The same calls through `OpenAICompatibleClient` (the engine's HTTP path)."""
    client = OpenAICompatibleClient("mock", url, max_connections=concurrency)
    request = ChatRequest(model=MODEL, messages=MESSAGES, max_tokens=32)

    async def send() -> None:
        await client.chat(request)

    try:
        return await _closed_loop(total, concurrency, deadline, send)
    finally:
        await client.aclose()


LOADS: dict[str, Load] = {"raw": raw_load, "adapter": adapter_load}


class MockServerLoad(Scenario):
    """Closed-loop chat load on one mock-server child process; raw aiohttp vs the adapter."""

    id = "mock_server_load"
    shape = (
        "20k chat completions from 64 closed-loop workers to one mock-server child process over "
        "loopback (latency 0, never refusing); always HTTP"
    )
    shows = "requests/s and client CPU ms per request: bare aiohttp vs the OpenAI adapter"
    default_records = 0
    uses_providers = False
    knobs = (
        Knob("requests", 20_000, "requests per client and iteration"),
        Knob("concurrency", 64, "closed-loop workers (and connections)"),
        Knob("clients", ",".join(CLIENTS), "clients to measure (raw, adapter)", "str"),
        Knob("max_seconds", 60.0, "time bound per client and iteration", "float"),
        Knob("warmup", 500, "warm-up requests per client before timing"),
    )
    gate = Gate("client_cpu_ms_per_request", 0.10, "HTTP path: client CPU per request within 10%")
    headline = (
        "requests_per_second@*",
        "client_cpu_ms_per_request@*",
        "wall_time_seconds",
        "cpu_seconds",
        "peak_rss_bytes",
    )
    compare_metrics = ("requests_per_second@*", "client_cpu_ms_per_request@*")

    def warmup_context(self, ctx: IterationContext) -> IterationContext:
        """A warm-up iteration sends a tenth of the requests."""
        return scaled_warmup(ctx, "requests")

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        clients = [c for c in knob_str(ctx.knobs, "clients").split(",") if c]
        unknown = set(clients) - set(CLIENTS)
        if unknown:
            raise ValueError(f"unknown clients {sorted(unknown)}; known: raw, adapter")
        concurrency = knob_int(ctx.knobs, "concurrency")
        options = MockServerOptions(capacity=concurrency * 4, latency_ms=0.0, seed=ctx.seed)
        server = MockServerProcess(options)
        await asyncio.to_thread(server.start)
        metrics: dict[str, float] = {}
        total = Measurement()
        try:
            for name in clients:
                figures = await self._measure(server, LOADS[name], ctx)
                for metric, value in figures.items():
                    metrics[f"{metric}@{name}"] = value
                total.wall_time_seconds += figures["wall_seconds"]
                total.cpu_seconds += figures["cpu_seconds"]
            stats = await asyncio.to_thread(server.stats)
        finally:
            await asyncio.to_thread(server.stop)
        metrics["server_completed"] = float(stats["completed"])
        metrics["server_peak_in_flight"] = float(stats["peak_in_flight"])
        metrics["wall_time_seconds"] = total.wall_time_seconds
        metrics["cpu_seconds"] = total.cpu_seconds
        return IterationResult(
            measurement=total,
            metrics=metrics,
            details={"server": stats, "concurrency": concurrency},
            final_task_snapshot={"active_leases": 0, "note": "no scheduler in this scenario"},
            final_request_snapshot=without_requests(
                "no request admission in this scenario", int(stats.get("in_flight", 0))
            ),
            timeline_sampling=without_timeline("no event streams: only HTTP calls"),
        )

    async def _measure(
        self, server: MockServerProcess, load: Load, ctx: IterationContext
    ) -> dict[str, float]:
        concurrency = knob_int(ctx.knobs, "concurrency")
        warmup = knob_int(ctx.knobs, "warmup")
        if warmup:
            await load(server.url, warmup, concurrency, time.monotonic() + 30)
        bound = time.monotonic() + knob_float(ctx.knobs, "max_seconds")
        with measure() as m:
            done = await load(server.url, knob_int(ctx.knobs, "requests"), concurrency, bound)
        return {
            "requests": float(done),
            "requests_per_second": done / m.wall_time_seconds,
            "client_cpu_ms_per_request": 1000 * m.cpu_seconds / max(done, 1),
            "wall_seconds": m.wall_time_seconds,
            "cpu_seconds": m.cpu_seconds,
            "peak_rss_bytes": float(m.peak_rss_bytes),
        }

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        return OracleCheck("none", reason="no dataset: only HTTP calls are timed")
