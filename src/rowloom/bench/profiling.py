"""Scenarios for what happens after and before a run: `profile_scale` and `estimate_accuracy`.

`profile_scale` writes a synthetic run folder once (`records` rows, ten columns of every kind
the profile treats differently: a weighted category, a uniform and a Poisson number, two text
columns, code, a structured struct, a judge struct, a 16-dimensional embedding, an
expression) and measures `profile_run` over it, then a streamed JSONL and parquet export
(peak RSS beside the data's size shows nothing is loaded whole).

`estimate_accuracy` runs `Designer.estimate` (a pilot) for `records` rows of a two-model
dataset on a simulated provider that answers 429 beyond its capacity, then the real run, and
reports how far the predicted wall time and request count landed from the measured ones.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rowloom.bench.machine import Measurement, measure
from rowloom.bench.scenario import (
    IterationContext,
    IterationResult,
    Knob,
    OracleCheck,
    Scenario,
    Target,
    knob_float,
    knob_int,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer

_VOCAB = pa.array(
    [
        "the",
        "a",
        "of",
        "river",
        "water",
        "mountain",
        "glacier",
        "desert",
        "reef",
        "ocean",
        "system",
        "model",
        "signal",
        "careful",
        "garden",
        "journey",
        "season",
        "metal",
        "story",
        "bridge",
        "market",
        "quiet",
    ]
)


def _words(rng: np.random.Generator, rows: int, count: int) -> pa.Array:
    columns = [_VOCAB.take(pa.array(rng.integers(0, len(_VOCAB), rows))) for _ in range(count)]
    return pc.binary_join_element_wise(*columns, " ")


def _part(rng: np.random.Generator, start: int, rows: int) -> pa.Table:
    ids = pa.array(np.arange(start, start + rows))
    rating = pa.array(rng.integers(1, 6, rows))
    tags = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 2 * rows + 1, 2, dtype=np.int32)),
        _VOCAB.take(pa.array(rng.integers(0, len(_VOCAB), 2 * rows))),
    )
    score = pc.cast(pa.array(rng.integers(1, 4, rows)), pa.string())
    judge = pa.StructArray.from_arrays(
        [pa.StructArray.from_arrays([score, _words(rng, rows, 5)], ["score", "reasoning"])],
        ["quality"],
    )
    vectors = rng.normal(size=(rows, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embedding = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 16 * rows + 1, 16, dtype=np.int32)), pa.array(vectors.ravel())
    )
    text_ids = pc.cast(ids, pa.string())
    return pa.table(
        {
            "category": _VOCAB.take(pa.array(rng.choice(4, rows, p=[0.4, 0.3, 0.2, 0.1]))),
            "uniform": pa.array(rng.uniform(0, 10, rows)),
            "count": pa.array(rng.poisson(3, rows)),
            "text": _words(rng, rows, 40),
            "summary": _words(rng, rows, 12),
            "code": pc.binary_join_element_wise("def f(x):\n    return x + ", text_ids, "\n", ""),
            "record": pa.StructArray.from_arrays(
                [_words(rng, rows, 6), rating, tags], ["title", "rating", "tags"]
            ),
            "verdict": judge,
            "embedding": embedding,
            "label": pc.binary_join_element_wise("id-", text_ids, ""),
        }
    )


PROFILE_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "category",
        "column_type": "sampler",
        "sampler_type": "category",
        "params": {"values": ["the", "a", "of", "river"], "weights": [4, 3, 2, 1]},
    },
    {"name": "uniform", "column_type": "sampler", "sampler_type": "uniform", "params": {}},
    {"name": "count", "column_type": "sampler", "sampler_type": "poisson", "params": {}},
    {"name": "text", "column_type": "llm_text"},
    {"name": "summary", "column_type": "llm_text"},
    {"name": "code", "column_type": "llm_code", "code_lang": "python"},
    {
        "name": "record",
        "column_type": "llm_structured",
        "output_format": {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "rating": {"type": "integer", "maximum": 4},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["title", "rating"],
        },
    },
    {"name": "verdict", "column_type": "llm_judge", "scores": [{"name": "quality"}]},
    {"name": "embedding", "column_type": "embedding"},
    {"name": "label", "column_type": "expression"},
]


def write_profile_run(run_dir: Path, records: int, parts: int, seed: int) -> None:
    """A finished run folder of `records` synthetic rows in `parts` parts (written once)."""
    if (run_dir / "manifest.json").is_file():
        return
    tmp = run_dir.with_name(run_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    size = -(-records // parts)
    groups: dict[str, Any] = {}
    for g, start in enumerate(range(0, records, size)):
        rows = min(size, records - start)
        name = f"part-{g:05d}.parquet"
        pq.write_table(_part(rng, start, rows), tmp / "data" / name)
        groups[str(g)] = {"rows": rows, "dropped": {}, "part": name}
    manifest = {
        "num_records": records,
        "rows_written": records,
        "buffer_size": size,
        "output_columns": [c["name"] for c in PROFILE_COLUMNS],
        "status": "complete",
        "row_groups": groups,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    tmp.rename(run_dir)


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from rowloom.bench.profiling import PROFILE_COLUMNS
from rowloom.profile import profile_run
from rowloom.profile.export import ExportSpec, export_run

def hwm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0

phase, run_dir, workdir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
base = hwm("VmRSS:")
wall, cpu = time.perf_counter(), time.process_time()
out = {}
if phase == "profile":
    profile = profile_run(run_dir, {"columns": PROFILE_COLUMNS})
    out = {"rows": profile["rows"], "columns": len(profile["columns"])}
else:
    fmt = phase.split("_", 1)[1]
    target = workdir / f"export.{fmt}"
    export_run(ExportSpec(run_dir, target, fmt, overwrite=True))
    target.unlink()
out.update(seconds=time.perf_counter() - wall, cpu_seconds=time.process_time() - cpu,
           peak_rss_bytes=hwm("VmHWM:"), base_rss_bytes=base)
print(json.dumps(out))
"""


def _in_child(phase: str, run_dir: Path, workdir: Path) -> dict[str, float]:
    """One phase in a fresh process: its own peak RSS (VmHWM), not this process's history."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, phase, str(run_dir), str(workdir)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


class ProfileScale(Scenario):
    id = "profile_scale"
    shape = "a 1M-row, 10-column run folder (every column kind) profiled, then exported"
    shows = "profile wall time, rows/s and peak RSS; streamed export peak RSS vs data size"
    default_records = 1_000_000
    uses_providers = False
    knobs = (Knob("parts", 20, "parquet parts (row groups) in the run folder"),)
    targets = (
        Target("profile_seconds", "<=", 30.0, label="1M rows x 10 columns profile in <= 30 s"),
    )
    headline = (
        "profile_seconds",
        "profile_rows_per_second",
        "profile_peak_rss_bytes",
        "export_jsonl_seconds",
        "export_jsonl_peak_rss_bytes",
        "export_parquet_seconds",
        "export_parquet_peak_rss_bytes",
        "export_parquet_base_rss_bytes",
        "data_bytes",
    )

    def warmup_context(self, ctx: IterationContext) -> IterationContext:
        """A warm-up profiles a 20,000-row folder."""
        return IterationContext(
            20_000, ctx.seed, ctx.knobs, ctx.http, ctx.workdir, ctx.index, True, ctx.timeline_cap
        )

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        return await asyncio.to_thread(self._iteration, ctx)

    def _iteration(self, ctx: IterationContext) -> IterationResult:
        parts = knob_int(ctx.knobs, "parts")
        run_dir = ctx.workdir.parent / f"profile-run-{ctx.records}-{parts}"
        write_profile_run(run_dir, ctx.records, parts, ctx.seed)
        started = time.perf_counter()
        phases = {
            phase: _in_child(phase, run_dir, ctx.workdir)
            for phase in ("profile", "export_jsonl", "export_parquet")
        }
        profile = phases["profile"]
        metrics: dict[str, float] = {
            "profile_rows_per_second": profile["rows"] / profile["seconds"],
            "data_bytes": float(sum(p.stat().st_size for p in (run_dir / "data").iterdir())),
        }
        for phase, figures in phases.items():
            metrics[f"{phase}_seconds"] = figures["seconds"]
            metrics[f"{phase}_cpu_seconds"] = figures["cpu_seconds"]
            metrics[f"{phase}_peak_rss_bytes"] = figures["peak_rss_bytes"]
            metrics[f"{phase}_base_rss_bytes"] = figures["base_rss_bytes"]
        m = Measurement()
        m.wall_time_seconds = time.perf_counter() - started
        m.cpu_seconds = sum(f["cpu_seconds"] for f in phases.values())
        m.peak_rss_bytes = int(max(f["peak_rss_bytes"] for f in phases.values()))
        m.peak_rss_method = "child VmHWM"
        ok = profile["rows"] == ctx.records and profile["columns"] == len(PROFILE_COLUMNS)
        return IterationResult(
            measurement=m, metrics=metrics, status="complete" if ok else "wrong_profile"
        )

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        return OracleCheck("none", reason="no generation: the run folder is synthetic")


def estimate_config(capacity: int, latency_ms: float, seed: int) -> DatasetConfig:
    """Two models on one simulated provider answering 429 beyond `capacity`: a writer whose
    cap exceeds the capacity (two chained calls per row) and a judge."""
    return DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "sim",
                    "provider_type": "simulated",
                    "simulation": {
                        "capacity": capacity,
                        "latency_ms": latency_ms,
                        "overload": "reject",
                        "retry_after_s": 1,
                        "seed": seed,
                    },
                }
            ],
            "models": [
                {"alias": "writer", "model": "w", "provider": "sim", "max_parallel_requests": 48},
                {"alias": "judge", "model": "j", "provider": "sim", "max_parallel_requests": 16},
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["rivers", "glaciers", "deserts"]},
                },
                _llm("question", "writer", "Ask about {{ topic }}."),
                _llm("answer", "writer", "Answer: {{ question }}"),
                _llm("review", "judge", "Review: {{ answer }}"),
            ],
            "seed": seed,
            "run": {"buffer_size": 100},
        }
    )


def _llm(name: str, alias: str, prompt: str) -> dict[str, Any]:
    return {"name": name, "column_type": "llm_text", "model_alias": alias, "prompt": prompt}


class EstimateAccuracy(Scenario):
    id = "estimate_accuracy"
    shape = "a 50-row pilot predicts a 2,000-row, two-model run on a 429-answering provider"
    shows = "predicted vs measured wall time and requests"
    default_records = 2000
    uses_providers = False
    knobs = (
        Knob("pilot", 50, "rows in the pilot"),
        Knob("capacity", 32, "simulated provider capacity"),
        Knob("latency_ms", 100.0, "simulated latency (ms)", "float"),
    )
    targets = (
        Target("estimate_error_fraction", "<=", 0.20, label="wall time estimate within 20%"),
    )
    headline = (
        "predicted_wall_seconds",
        "measured_wall_seconds",
        "estimate_error_fraction",
        "predicted_requests",
        "measured_requests",
        "pilot_seconds",
    )

    def warmup_context(self, ctx: IterationContext) -> IterationContext:
        """A warm-up estimates and runs 200 rows."""
        return IterationContext(
            200, ctx.seed, ctx.knobs, ctx.http, ctx.workdir, ctx.index, True, ctx.timeline_cap
        )

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        return await asyncio.to_thread(self._iteration, ctx)

    def _iteration(self, ctx: IterationContext) -> IterationResult:
        config = estimate_config(
            knob_int(ctx.knobs, "capacity"), knob_float(ctx.knobs, "latency_ms"), ctx.seed
        )
        folder = ctx.workdir / f"estimate-{ctx.index}"
        designer = Designer(folder)
        started = time.perf_counter()
        estimate = designer.estimate(config, ctx.records, pilot=knob_int(ctx.knobs, "pilot"))
        pilot_seconds = time.perf_counter() - started
        with measure() as m:
            result = designer.create(config, ctx.records, "actual")
        measured = result.summary.wall_seconds
        predicted = estimate.predicted_wall_seconds
        metrics = {
            "predicted_wall_seconds": predicted,
            "measured_wall_seconds": measured,
            "estimate_error_fraction": abs(predicted - measured) / measured,
            "estimate_signed_error_fraction": (predicted - measured) / measured,
            "predicted_requests": float(estimate.predicted_requests),
            "measured_requests": float(result.summary.request_attempts),
            "pilot_seconds": pilot_seconds,
        }
        shutil.rmtree(folder, ignore_errors=True)
        return IterationResult(
            measurement=_with_wall(m, measured),
            metrics=metrics,
            details={"binding": estimate.binding_reason},
            status=result.summary.status,
        )

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        return OracleCheck("none", reason="measures a prediction, not the generated values")


def _with_wall(m: Measurement, wall: float) -> Measurement:
    m.wall_time_seconds = wall
    return m
