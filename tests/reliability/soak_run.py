"""One fault-soak run in its own process, so its peak RSS is the run's and nothing else's.

Usage: `python soak_run.py URL ROWS ARTIFACT_DIR OUT_JSON [--events]`. Runs a dataset through
`DatasetBuilder` against the OpenAI-compatible server at URL and writes a JSON report: the
run summary, request and task leases and waiters left at the end, the dataset's row and id
counts, wall time, peak RSS, and RSS at each checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rowloom import DatasetConfig
from rowloom.builder.builder import DatasetBuilder
from rowloom.builder.outputs import RunMonitor

PAGE = 4096


def peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM). `ru_maxrss` is not used: Linux carries it across
    exec, so a child of a large test process would report its parent's peak."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def soak_config(url: str, *, events: bool) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [{"name": "flaky", "provider_type": "openai", "endpoint": url}],
            "models": [
                {
                    "alias": "w",
                    "model": "simulated-model",
                    "provider": "flaky",
                    "max_parallel_requests": 96,
                    "inference_parameters": {"max_tokens": 16, "timeout": 0.5},
                }
            ],
            "columns": [
                {"name": "row_id", "column_type": "sampler", "sampler_type": "uuid"},
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["rivers", "lakes", "caves", "dunes", "reefs"]},
                },
                {
                    "name": "text",
                    "column_type": "llm_text",
                    "model_alias": "w",
                    "prompt": "One line about {{ topic }} for {{ row_id }}.",
                },
                {
                    "name": "size",
                    "column_type": "expression",
                    "expr": "{{ text|length }}",
                    "dtype": "int",
                },
            ],
            "seed": 5,
            "run": {"buffer_size": 250, "max_concurrent_row_groups": 4, "write_events": events},
        }
    )


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


class RssMonitor(RunMonitor):
    """Records (rows done, RSS in MB) at every checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[tuple[int, float]] = []

    def on_checkpoint(self, row_group: int, rows: int) -> None:
        super().on_checkpoint(row_group, rows)
        self.samples.append((self.rows_written, round(rss_mb(), 1)))


async def main(url: str, rows: int, artifacts: Path, events: bool) -> dict[str, Any]:
    monitor = RssMonitor()
    builder = DatasetBuilder(soak_config(url, events=events), monitor=monitor)
    started = time.monotonic()
    outputs = await builder.build(rows, run_dir=artifacts / "soak", name="soak")
    wall = time.monotonic() - started
    assert monitor.admission is not None and monitor.task_admission is not None
    task_view = monitor.task_admission.view()
    parts = [
        artifacts / "soak" / "data" / p.name
        for p in sorted((artifacts / "soak" / "data").glob("part-*.parquet"))
    ]
    ids: list[str] = []
    for part in parts:
        ids.extend(pq.read_table(part, columns=["row_id"]).column(0).to_pylist())
    return {
        "summary": outputs.summary.to_dict(),
        "wall_seconds": round(wall, 1),
        "request_in_flight": monitor.admission.in_flight_total(),
        "request_waiters": monitor.admission.waiters_total(),
        "task_leases": task_view.active_leases,
        "task_leased": sum(task_view.leased.values()),
        "rows_in_parts": len(ids),
        "unique_ids": len(set(ids)),
        "peak_rss_mb": round(peak_rss_kib() / 1024, 1),
        "rss_samples": monitor.samples,
    }


if __name__ == "__main__":
    url, n, artifact_dir, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    report = asyncio.run(main(url, n, artifact_dir, "--events" in sys.argv[5:]))
    Path(out).write_text(json.dumps(report, indent=2), encoding="utf-8")
