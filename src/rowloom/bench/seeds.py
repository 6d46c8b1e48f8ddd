"""`seed_stream`: a 10M-row parquet seed is streamed, never loaded whole.

The seed file (`seed_rows` rows, row groups of `row_group_rows`, three columns) is written once
into the work folder, in pieces. One iteration has three measured phases:

- `pass`: every seed row through `SeedDataset.take` in dataset-row order (`buffer_size` rows at
  a time) with the chosen sampling: seed rows/s and peak RSS of the seed layer alone;
- `run`: a dataset of `records` rows whose columns read the seed (templates over undeclared
  seed columns), through the engine: cells/s and peak RSS;
- `whole`: `pyarrow.parquet.read_table` of the same file in a child process: the peak RSS of
  loading it whole (and the child's RSS before), the figure streaming avoids (a reference).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rowloom.bench.machine import Measurement, measure
from rowloom.bench.scenario import (
    RUN_KNOBS,
    DatasetScenario,
    IterationContext,
    IterationResult,
    Knob,
    KnobValue,
    OracleCheck,
    Target,
    knob_int,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.config.models import ModelProvider
from rowloom.config.seed import SeedConfig
from rowloom.seeds import open_seed

WRITE_ROWS = 262_144


def write_seed(path: Path, rows: int, row_group_rows: int) -> None:
    """A parquet seed of `rows` rows (id, topic, text) written piece by piece."""
    schema = pa.schema([("id", pa.int64()), ("topic", pa.string()), ("text", pa.string())])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, WRITE_ROWS):
            ids = pa.array(range(start, min(rows, start + WRITE_ROWS)), pa.int64())
            topic = pc.binary_join_element_wise(
                "topic-", pc.cast(pc.bit_wise_and(ids, 1023), pa.string()), ""
            )
            text = pc.binary_join_element_wise(
                "seed row number ", pc.cast(ids, pa.string()), " with some text", ""
            )
            table = pa.Table.from_arrays([ids, topic, text], schema=schema)
            writer.write_table(table, row_group_size=row_group_rows)
    tmp.replace(path)


class SeedStream(DatasetScenario):
    id = "seed_stream"
    shape = "a 10M-row parquet seed: a full streamed pass, a seeded run, and a whole-file read"
    shows = "seed rows/s, peak RSS streaming vs loading the file whole"
    default_records = 200_000
    uses_providers = False
    hash_outputs = False
    buffer_size = 10_000
    knobs = (
        Knob("seed_rows", 10_000_000, "rows in the seed file"),
        Knob("row_group_rows", 131_072, "rows per parquet row group of the seed file"),
        Knob(
            "sampling", "shuffle", "ordered or shuffle", kind="str", choices=("ordered", "shuffle")
        ),
        *RUN_KNOBS,
    )
    targets = (Target("pass_peak_rss_bytes", "<=", 1.0e9, label="streamed pass peak RSS <= 1 GB"),)
    headline = (
        "seed_rows",
        "pass_seed_rows_per_second",
        "pass_peak_rss_bytes",
        "pass_base_rss_bytes",
        "run_cells_per_second",
        "run_peak_rss_bytes",
        "whole_peak_rss_bytes",
        "whole_base_rss_bytes",
        "seed_file_bytes",
        "wall_time_seconds",
    )

    def _seed_path(self, workdir: Path, knobs: Mapping[str, KnobValue]) -> Path:
        rows, groups = knob_int(knobs, "seed_rows"), knob_int(knobs, "row_group_rows")
        path = workdir.parent / f"seed-{rows}-{groups}.parquet"
        if not path.exists():
            write_seed(path, rows, groups)
        return path

    def _seed_config(self, knobs: Mapping[str, KnobValue], path: Path) -> dict[str, Any]:
        return {
            "source": {"seed_type": "local", "path": str(path)},
            "sampling_strategy": str(knobs.get("sampling") or "shuffle"),
        }

    def build_config(
        self, knobs: Mapping[str, KnobValue], providers: Sequence[ModelProvider], seed: int
    ) -> DatasetConfig:
        path = Path(str(knobs["seed_path"]))
        return DatasetConfig.from_dict(
            {
                "seed_config": self._seed_config(knobs, path),
                "columns": [
                    {"name": "line", "column_type": "expression", "expr": "{{ topic }}: {{ id }}"},
                    {"name": "text", "column_type": "seed_dataset", "drop": True},
                ],
                "seed": seed,
                "run": self.run_settings(knobs),
            }
        )

    def _pass(self, knobs: Mapping[str, KnobValue], path: Path, seed: int) -> IterationResult:
        config = SeedConfig.model_validate(self._seed_config(knobs, path))
        step = int(knobs.get("buffer_size") or self.buffer_size or 10_000)
        base = psutil.Process().memory_info().rss
        with measure() as m:
            dataset = open_seed(config, seed)
            total = dataset.num_rows
            checksum = 0
            for start in range(0, total, step):
                checksum += sum(dataset.column("id", range(start, min(total, start + step))))
            dataset.close()
        complete = checksum == total * (total - 1) // 2  # every row exactly once
        return IterationResult(
            measurement=m,
            metrics={"seed_rows_per_second": total / m.wall_time_seconds, "base_rss_bytes": base},
            status="complete" if complete else "wrong_rows",
        )

    def _whole(self, path: Path) -> IterationResult:
        """`read_table` in a child process (Arrow keeps freed memory, which would inflate this
        process's later peaks): the child's peak RSS, and its RSS before the read."""
        script = (
            "import sys, pyarrow.parquet as pq\n"
            "def hwm(key):\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith(key): return int(line.split()[1]) * 1024\n"
            "    return 0\n"
            "before = hwm('VmRSS:')\n"
            "rows = pq.read_table(sys.argv[1]).num_rows\n"
            "print(rows, before, hwm('VmHWM:'))\n"
        )
        with measure() as m:
            done = subprocess.run(
                [sys.executable, "-c", script, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
        rows, before, peak = (int(v) for v in done.stdout.split())
        m.peak_rss_bytes, m.peak_rss_method = peak, "child VmHWM"
        return IterationResult(
            measurement=m, metrics={"rows": float(rows), "base_rss_bytes": float(before)}
        )

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        path = await asyncio.to_thread(self._seed_path, ctx.workdir, ctx.knobs)
        knobs = {**ctx.knobs, "seed_path": str(path)}
        started = time.perf_counter()
        phases = {"pass": await asyncio.to_thread(self._pass, knobs, path, ctx.seed)}
        rctx = IterationContext(
            ctx.records, ctx.seed, knobs, ctx.http, ctx.workdir, ctx.index, ctx.warmup
        )
        capture, config, _ = await self.run_once(rctx, f"run-{ctx.index}")
        run = await asyncio.to_thread(self.analyse, rctx, capture, config)
        run.metrics["cells_per_second"] = ctx.records * 3 / capture.measurement.wall_time_seconds
        phases["run"] = run
        phases["whole"] = await asyncio.to_thread(self._whole, path)
        return self._combine(phases, path, knob_int(ctx.knobs, "seed_rows"), started)

    def _combine(
        self, phases: dict[str, IterationResult], path: Path, seed_rows: int, started: float
    ) -> IterationResult:
        total = Measurement()
        metrics: dict[str, float] = {"seed_rows": float(seed_rows)}
        for name, res in phases.items():
            total.cpu_seconds += res.measurement.cpu_seconds
            total.peak_rss_method = res.measurement.peak_rss_method
            metrics[f"{name}_peak_rss_bytes"] = float(res.measurement.peak_rss_bytes)
            metrics[f"{name}_wall_time_seconds"] = res.measurement.wall_time_seconds
            metrics.update({f"{name}_{k}": v for k, v in res.metrics.items()})
        streamed = ("pass", "run")
        total.peak_rss_bytes = max(phases[p].measurement.peak_rss_bytes for p in streamed)
        total.wall_time_seconds = time.perf_counter() - started
        metrics["seed_file_bytes"] = float(path.stat().st_size)
        metrics["wall_time_seconds"] = total.wall_time_seconds
        metrics["cpu_seconds"] = total.cpu_seconds
        metrics["peak_rss_bytes"] = float(total.peak_rss_bytes)
        run = phases["run"]
        return IterationResult(
            measurement=total,
            metrics=metrics,
            details={name: res.details for name, res in phases.items()},
            timeline=run.timeline,
            timeline_sampling=run.timeline_sampling,
            final_task_snapshot=run.final_task_snapshot,
            final_request_snapshot=run.final_request_snapshot,
            output_hashes={"run_async": None},
            leaks=run.leaks,
            capacity_plan=run.capacity_plan,
            status=",".join(f"{name}:{r.status}" for name, r in phases.items()),
        )

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        """The sequential oracle and an async run of the seeded dataset at 5,000 records."""
        path = await asyncio.to_thread(self._seed_path, ctx.workdir, ctx.knobs)
        knobs = {**ctx.knobs, "seed_path": str(path)}
        small = IterationContext(
            min(ctx.records, 5_000), ctx.seed, knobs, ctx.http, ctx.workdir, -1
        )
        check = await super().oracle(small)
        if check.mode == "reduced":
            return check
        capture, _, _ = await self.run_once(small, "oracle-async", hash_output=True)
        shutil.rmtree(capture.run_dir, ignore_errors=True)
        return OracleCheck(
            "reduced",
            small.records,
            check.oracle_hash,
            capture.output_hash,
            reason="iterations are not hashed (the pass phase reads the whole seed); the "
            f"sequential oracle and an async run are compared at {small.records} records",
        )
