"""Load-test `rowloom mock-server` over loopback: server in a child process, client here.

    .venv/bin/python scripts/mock_server_load.py --requests 20000 --concurrency 64
    .venv/bin/python scripts/mock_server_load.py --client adapter   # through OpenAICompatibleClient

The server runs with latency 0 and a capacity above the concurrency, so the figure is the HTTP
path's own throughput. Bounded in count and time; the child is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp

SERVER_CODE = """
import sys
from rowloom.simulation.server import MockServerOptions, serve
serve(MockServerOptions(capacity=int(sys.argv[1]), latency_ms=0.0), "127.0.0.1", 0)
"""
BODY = {
    "model": "simulated-model",
    "messages": [{"role": "user", "content": "Write one sentence about rivers."}],
    "max_tokens": 32,
}


async def _raw_client(url: str, total: int, concurrency: int, deadline: float) -> int:
    connector = aiohttp.TCPConnector(limit=concurrency)
    done = 0
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while done < total and time.monotonic() < deadline:
                done += 1
                async with session.post(f"{url}/chat/completions", json=BODY) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"unexpected status {resp.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def _adapter_client(url: str, total: int, concurrency: int, deadline: float) -> int:
    from rowloom.models.clients.base import ChatRequest
    from rowloom.models.clients.openai_compatible import OpenAICompatibleClient

    client = OpenAICompatibleClient("mock", url, max_connections=concurrency)
    request = ChatRequest(model=BODY["model"], messages=tuple(BODY["messages"]), max_tokens=32)
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < total and time.monotonic() < deadline:
            done += 1
            await client.chat(request)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.aclose()
    return done


async def _stats(url: str) -> dict[str, Any]:
    stats_url = url.removesuffix("/v1") + "/stats"
    async with aiohttp.ClientSession() as session, session.get(stats_url) as response:
        result: dict[str, Any] = await response.json()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--client", choices=["raw", "adapter"], default="raw")
    args = parser.parse_args()

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE, str(args.concurrency * 4)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "rowloom mock-server listening on URL"
        if "listening on" not in line:
            raise RuntimeError(f"mock server did not start: {line!r}")
        url = line.rsplit(" ", 1)[-1].strip()
        run = _raw_client if args.client == "raw" else _adapter_client
        asyncio.run(run(url, 500, args.concurrency, time.monotonic() + 10))  # warm-up
        cpu0, t0 = time.process_time(), time.perf_counter()
        done = asyncio.run(
            run(url, args.requests, args.concurrency, time.monotonic() + args.max_seconds)
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stats = asyncio.run(_stats(url))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(
        json.dumps(
            {
                "client": args.client,
                "requests": done,
                "concurrency": args.concurrency,
                "wall_seconds": round(wall, 3),
                "requests_per_second": round(done / wall, 1),
                "client_cpu_ms_per_request": round(cpu * 1000 / done, 3),
                "cores": os.cpu_count(),
                "server_completed": stats["completed"],
                "server_peak_in_flight": stats["peak_in_flight"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
