"""CPU cost of the event sinks: the same run with events written (JSONL sinks, the report read
from them) and with `RunConfig.write_events=False`, paired on one machine.

    .venv/bin/python scripts/sink_overhead.py [--rows 3000] [--pairs 5] [--profile out.prof]

The simulated provider answers at once (latency 0), so the run is CPU-bound and the ratio is
the sinks' share of the engine's own work. `--http` runs the same dataset against `rowloom
mock-server` (latency 0, in a child process whose CPU is not counted) through the OpenAI
adapter, as a real run would: the engine's CPU then includes the HTTP client.
Prints per-pair CPU seconds, the median ratio, and the part of the overhead spent writing the
report at the end. `--profile` writes a cProfile of one events-on run.

    .venv/bin/python scripts/sink_overhead.py --rows 3000 --pairs 3 --http
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.interface.report import write_report

SERVER_CODE = """
from rowloom.simulation.server import MockServerOptions, serve
serve(MockServerOptions(capacity=1000, latency_ms=0.0), "127.0.0.1", 0)
"""


@contextmanager
def mock_server() -> Iterator[str]:
    """`rowloom mock-server` in a child process on 127.0.0.1; its base URL. Always stopped."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "rowloom mock-server listening on URL"
        if "listening on" not in line:
            raise RuntimeError(f"mock server did not start: {line!r}")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def config(write_events: bool, url: str | None) -> DatasetConfig:
    provider = (
        {"name": "sim", "provider_type": "openai", "endpoint": url}
        if url
        else {
            "name": "sim",
            "provider_type": "simulated",
            "simulation": {"capacity": 1000, "latency_ms": 0, "seed": 1},
        }
    )
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


def run_once(root: Path, rows: int, write_events: bool, url: str | None) -> float:
    """CPU seconds of one `create` run (the process's, threads included)."""
    designer = Designer(root)
    start = time.process_time()
    asyncio.run(designer.acreate(config(write_events, url), rows, f"run-{write_events}"))
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--http", action="store_true", help="through mock-server over HTTP")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _endpoint(args.http) as url:
        root = Path(tmp)
        run_once(root, max(100, args.rows // 10), True, url)  # warm-up: imports, caches
        ratios, on_runs, off_runs = [], [], []
        for i in range(args.pairs):
            off = run_once(root, args.rows, False, url)
            on = run_once(root, args.rows, True, url)
            off_runs.append(off)
            on_runs.append(on)
            ratios.append(on / off)
            print(
                f"pair {i + 1}: events off {off:.3f} s CPU, on {on:.3f} s CPU, "
                f"overhead {100 * (on / off - 1):+.1f}%"
            )
        start = time.process_time()
        write_report(root / "run-True")
        report_cpu = time.process_time() - start
        events = sum(
            p.read_text().count("\n") for p in (root / "run-True" / "events").glob("*.jsonl")
        )
        median = statistics.median(ratios)
        print(f"rows {args.rows}, events per run {events}")
        print(
            f"median overhead {100 * (median - 1):+.1f}% "
            f"(events on {statistics.median(on_runs):.3f} s, off "
            f"{statistics.median(off_runs):.3f} s CPU)"
        )
        print(
            f"of which writing report.html from the events: {report_cpu:.3f} s CPU "
            f"({100 * report_cpu / statistics.median(off_runs):.1f}% of an events-off run)"
        )
        if args.profile is not None:
            profiler = cProfile.Profile()
            profiler.enable()
            run_once(root, args.rows, True, url)
            profiler.disable()
            profiler.dump_stats(args.profile)
            print(f"profile written to {args.profile}")


@contextmanager
def _endpoint(http: bool) -> Iterator[str | None]:
    if not http:
        yield None
        return
    with mock_server() as url:
        yield url


if __name__ == "__main__":
    main()
