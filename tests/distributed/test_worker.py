"""A Ray worker's engine without Ray: one engine for the whole run, batches fed into it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tests.generators.test_media_runs import (
    assert_images_match,
    dataset_of,
    images_of,
)
from tests.generators.test_media_runs import config as image_config

from rowloom.builder.run_folder import RunRequest, open_run
from rowloom.builder.storage import RunStorage
from rowloom.config.dataset import DatasetConfig
from rowloom.distributed.coordinator import ShareCoordinator, ShareKeyConfig
from rowloom.distributed.dispatch import PartResult, commit_attempt, remove_attempt
from rowloom.distributed.worker import FleetWorker
from rowloom.errors import NonRetryableTaskError
from rowloom.interface.designer import Designer
from rowloom.models.request_admission.shares import ShareGrant, ShareReport


def _config() -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "sim",
                    "provider_type": "simulated",
                    "simulation": {"capacity": 16, "latency_ms": 2, "seed": 3},
                }
            ],
            "models": [
                {
                    "alias": "writer",
                    "model": "sim-writer-8b",
                    "provider": "sim",
                    "max_parallel_requests": 8,
                }
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["rivers", "glaciers", "dunes"]},
                },
                {
                    "name": "text",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": "Write about {{ topic }}.",
                },
            ],
            "seed": 5,
            "run": {"buffer_size": 5, "max_concurrent_row_groups": 1, "write_events": True},
        }
    )


KEY = "sim/sim-writer-8b/chat"


def _files(paths: list[str]) -> bool:
    return all(Path(p).is_file() for p in paths)


def _worker_folder(folder: Path) -> bool:
    """One engine: one folder with one event log (no batch-* folders)."""
    return (folder / "events").is_dir() and not list(folder.glob("batch-*"))


async def test_one_engine_runs_every_batch_fed_to_it(tmp_path: Path) -> None:
    config = _config()
    coordinator = ShareCoordinator({KEY: ShareKeyConfig(8)})
    sent: list[str] = []

    async def send(provider: str, worker: str, reports: dict[str, ShareReport]) -> Any:
        sent.append(provider)
        grants: dict[str, ShareGrant] = coordinator.report(worker, reports, time.monotonic())
        return grants

    run_dir = tmp_path / "fleet"
    worker = FleetWorker("w1", config, config.run_config, 20, run_dir, send, {KEY: 8})
    worker.start()
    # two batches in flight at once: the second is fed while the first runs
    first, second = await asyncio.gather(worker.run_batch(1, [0, 1]), worker.run_batch(2, [3]))
    third = await worker.run_batch(3, [2])
    closed = await worker.close()
    results = [*first["results"], *second["results"], *third["results"]]
    assert sorted(r.row_group for r in results) == [0, 1, 2, 3]
    assert {r.attempt for r in results} == {"w1-b1", "w1-b2", "w1-b3"}
    assert all(r.rows == 5 for r in results) and _files([r.path for r in results])
    assert third["requests"]["attempts"] == 20 and closed["requests"]["attempts"] == 20
    assert sent and set(sent) == {"sim"}
    # one engine: one worker folder with one event log, not one per batch
    assert _worker_folder(run_dir / "workers" / "w1")
    # the attempts hold exactly the async engine's rows
    await Designer(tmp_path).acreate(config, 20, "local")
    local = RunStorage(tmp_path / "local").read_table()
    by_group = {r.row_group: pq.read_table(r.path) for r in results}
    fleet = pa.concat_tables([by_group[rg] for rg in sorted(by_group)])
    assert fleet.equals(local)


async def test_a_worker_that_lost_its_coordinator_keeps_generating(tmp_path: Path) -> None:
    config = _config()

    async def lost(provider: str, worker: str, reports: dict[str, ShareReport]) -> Any:
        raise ConnectionError("no coordinator")

    worker = FleetWorker(
        "w1", config, config.run_config, 10, tmp_path / "r", lost, {KEY: 8}, shared=True
    )
    worker.start()
    # the coordinator is lost: the worker keeps going on its last (orphan) shares
    out = await asyncio.wait_for(worker.run_batch(1, [0, 1]), 60)
    assert sorted(r.row_group for r in out["results"]) == [0, 1]
    await worker.close()
    assert worker.link.history.lost >= 1


DROP_ROW: dict[str, int | None] = {"n": None}


def _drop_one(row: dict[str, Any], *_: Any) -> str:
    """Drops the row whose `n` is `DROP_ROW["n"]` (an attempt that loses a row)."""
    if row["n"] == DROP_ROW["n"]:
        raise NonRetryableTaskError("planned_drop", "this attempt drops the row")
    return str(row["n"])


async def test_two_attempts_at_a_group_keep_their_image_files_apart(tmp_path: Path) -> None:
    """Two workers run the same row group; the second drops a row (discarding its image). The
    committed attempt's rows still point at files that exist and are its own, and removing the
    other attempt removes only its files."""
    spec = json.loads(image_config().to_json())
    spec["columns"].append(
        {"name": "tag", "column_type": "custom", "function": _drop_one, "required_columns": ["n"]}
    )
    config = DatasetConfig.from_dict(spec)
    run_dir = tmp_path / "fleet"
    storage = RunStorage(run_dir)
    open_run(storage, RunRequest("fleet", 3, 3, [], {}))

    async def alone(provider: str, worker: str, reports: dict[str, ShareReport]) -> Any:
        raise ConnectionError("no coordinator: each keeps its own limits")

    async def attempt(name: str) -> PartResult:
        worker = FleetWorker(name, config, config.run_config, 3, run_dir, alone, {}, shared=False)
        worker.start()
        (result,) = (await worker.run_batch(1, [0]))["results"]
        await worker.close()
        return result

    first = await attempt("w1")
    assert commit_attempt(storage, first)
    committed = dataset_of(run_dir)
    DROP_ROW["n"] = int(committed["n"].iloc[1])
    try:
        late = await attempt("w2")  # the late attempt drops that row, with its picture
    finally:
        DROP_ROW["n"] = None
    assert late.rows == 2 and late.dropped == {"planned_drop": 1}
    remove_attempt(late)
    assert_images_match(run_dir, committed, "A watercolour")
    assert sorted(p.relative_to(run_dir).as_posix() for p in images_of(run_dir)) == sorted(
        committed["picture"]
    )
    assert not list((run_dir / "workers" / "w2").rglob("*.png"))
