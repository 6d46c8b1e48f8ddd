"""The driver's row-group bookkeeping and a worker's share link, without Ray."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow as pa
import pytest
from tests.support.waiting import NotifyingSink, Progress, WatchedClock

from rowloom.builder.run_folder import RunRequest, open_run
from rowloom.builder.storage import RunStorage
from rowloom.distributed.dispatch import (
    PartResult,
    RowGroupDispatcher,
    file_checksum,
    fleet_buffer_size,
)
from rowloom.distributed.link import ShareLink, provider_of
from rowloom.distributed.worker import AttemptStorage
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestAdmissionItem,
    RequestDomain,
    RequestReleaseOutcome,
    RequestResourceKey,
)
from rowloom.models.request_admission.shares import ShareGrant, ShareReport
from rowloom.models.resources import ProviderModelKey
from rowloom.observability.events import RequestEventEmitter


def _result(rg: int, attempt: str = "a") -> PartResult:
    return PartResult(rg, attempt, "w1", f"/nowhere/{rg}", 10, "x")


def test_first_completion_commits_and_a_dead_worker_loses_nothing() -> None:
    d = RowGroupDispatcher([0, 1, 2, 3, 4], batch_size=2)
    a = d.next_batch("w1")
    b = d.next_batch("w2")
    assert a is not None and b is not None
    assert (a.row_groups, b.row_groups) == ([0, 1], [2, 3])
    d.fail(b)  # w2 died mid-batch: 2 and 3 run again
    c = d.next_batch("w3")
    assert c is not None and c.row_groups == [2, 3]
    # w1 finished only row group 0: 1 goes back to the queue
    commit, extra = d.complete(a, [_result(0)])
    assert [r.row_group for r in commit] == [0] and not extra
    commit, extra = d.complete(c, [_result(2), _result(3)])
    assert len(commit) == 2
    rest = d.next_batch("w1")
    assert rest is not None and rest.row_groups == [1, 4]
    # a late attempt at a committed group is removed, never committed twice
    commit, extra = d.complete(rest, [_result(1), _result(4), _result(0, "late")])
    assert [r.row_group for r in commit] == [1, 4] and [r.attempt for r in extra] == ["late"]
    assert d.finished and d.committed == {0, 1, 2, 3, 4}
    assert d.requeued == 3 and d.duplicates == 1
    with pytest.raises(ValueError):
        RowGroupDispatcher([], 0)


def test_a_ray_run_without_buffer_size_gets_row_groups_for_every_worker() -> None:
    assert fleet_buffer_size(1000, 4) == 63  # 16 row groups: 4 per worker
    assert fleet_buffer_size(10, 8) == 1
    assert fleet_buffer_size(10_000_000, 2) == 1000  # never above the local default's cap


def test_a_rejected_result_runs_again() -> None:
    d = RowGroupDispatcher([7], batch_size=1)
    batch = d.next_batch("w1")
    assert batch is not None
    (result,), _ = d.complete(batch, [_result(7)])
    d.reject(result)
    again = d.next_batch("w2")
    assert again is not None and again.row_groups == [7] and not d.finished


async def test_attempts_commit_into_place_and_a_resume_removes_the_rest(tmp_path: Path) -> None:
    storage = RunStorage(tmp_path / "run")
    open_run(storage, RunRequest("f", 20, 10, ["a"], {}))
    worker = AttemptStorage(tmp_path / "run", "w1")
    open_run(worker, RunRequest("f", 20, 10, ["a"], {}))
    pending = worker.expect("w1-b1", [0, 1])
    table = pa.table({"a": list(range(10))})
    first = worker.write_row_group(0, table, {"x": 1})
    worker.write_row_group(1, table, {})
    r0, r1 = await asyncio.gather(*pending)
    assert r0.checksum == file_checksum(first) and r0.rows == 10 and r0.dropped == {"x": 1}
    assert r0.attempt == r1.attempt == "w1-b1" and first.name.endswith("w1-b1")
    assert storage.load_manifest() is not None and not storage.load_manifest().row_groups  # type: ignore[union-attr]
    storage.commit_part(0, Path(r0.path), r0.rows, r0.dropped)
    assert [p.name for p in storage.part_paths()] == ["part-00000.parquet"]
    # the driver died before committing row group 1: a resume removes its attempt
    again = RunStorage(tmp_path / "run")
    done = open_run(again, RunRequest("f", 20, 10, ["a"], {}, resume=True)).done
    assert done == {0}
    assert not _exists(r1.path)
    assert again.read_table().num_rows == 10


def _exists(path: str) -> bool:
    return Path(path).exists()


PM = ProviderModelKey("prov", "m")
CHAT = RequestResourceKey(PM, RequestDomain.CHAT)


async def test_link_reports_on_time_and_at_once_and_survives_a_lost_coordinator() -> None:
    progress = Progress()
    clock = WatchedClock(progress)
    config = RequestAdmissionConfig(static_caps={PM: 8}, resources=(CHAT,))
    events = RequestEventEmitter(NotifyingSink(progress), clock.monotonic)
    controller = AdaptiveRequestAdmissionController(config, clock=clock, events=events)
    sent: list[dict[str, ShareReport]] = []
    down = False
    key = CHAT.as_key_str()

    async def send(
        provider: str, worker: str, reports: dict[str, ShareReport]
    ) -> dict[str, ShareGrant]:
        assert provider == "prov" and worker == "w1"
        progress.notify()
        if down:
            raise ConnectionError("coordinator gone")
        sent.append(reports)
        return {k: ShareGrant(3, 1, 5, limit=6) for k in reports}

    link = ShareLink("w1", send, {CHAT.as_key_str(): 8}, clock=clock, interval=0.2)
    link.attach(controller)
    task = progress.spawn(link.run())
    # attaching reports at once, and the grant is applied
    await progress.wait_until(lambda: controller.shares() == {key: 3}, what="first grant")
    assert len(sent) == 1
    await progress.wait_until(lambda: clock.armed_at(clock.monotonic() + 0.2) >= 1, what="timer")
    clock.advance(0.2)
    await progress.wait_until(lambda: len(sent) == 2, what="the report of the interval")
    lease = controller.acquire_sync(RequestAdmissionItem.for_resource(CHAT))
    controller.release(lease, RequestReleaseOutcome.rate_limited(1.0))  # a cut: report now
    await progress.wait_until(lambda: len(sent) == 3, what="the report of the cut")
    assert sent[-1][key].fresh_rate_limited == 1
    down = True
    await progress.wait_until(lambda: clock.armed_at(clock.monotonic() + 0.2) >= 1, what="timer")
    clock.advance(0.2)
    await progress.wait_until(lambda: link.lost == {"prov"}, what="the coordinator lost")
    assert controller.shares()[key] >= 1
    assert [c["share"] for c in link.history.changes] == [3]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert provider_of("provider:prov") == provider_of("prov/m/chat") == "prov"
