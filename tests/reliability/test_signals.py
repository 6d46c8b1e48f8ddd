"""SIGINT / SIGTERM: a graceful stop checkpoints the finished row groups, says what is
incomplete, exits 1, and `--resume` completes the run with the uninterrupted run's hash."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

import pytest
from tests.reliability.conftest import (
    CRASH_BUFFER,
    CRASH_COLUMNS,
    CRASH_GROUPS,
    CRASH_ROWS,
    Baseline,
)
from tests.reliability.harness import (
    IN_MOVED_TO,
    DirWatcher,
    assert_reader_view_consistent,
    child_env,
    create_cmd,
    dataset,
    read_manifest,
    run_create,
)

from rowloom.interface.results import DatasetResult


def start_and_signal(
    cmd: list[str], run_dir: Path, sig: int, after_parts: int
) -> subprocess.CompletedProcess[str]:
    """Start `cmd`; send `sig` once `after_parts` parts are in place; wait for the exit."""
    watcher = DirWatcher(run_dir, run_dir / "data")
    proc = subprocess.Popen(
        cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    pidfd = os.pidfd_open(proc.pid)
    try:
        seen = 0
        while seen < after_parts:
            ready, _, _ = select.select([pidfd, watcher.fileno()], [], [], 60)
            assert ready and pidfd not in ready, "the run ended before the signal"
            seen += sum(
                1
                for _d, name, mask in watcher.read()
                if mask & IN_MOVED_TO and name.startswith("part-")
            )
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(pidfd)
        watcher.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_graceful_stop_then_resume(crash_baseline: Baseline, tmp_path: Path, sig: int) -> None:
    artifacts = tmp_path / "artifacts"
    run_dir = artifacts / "run"
    stopped = start_and_signal(
        create_cmd(crash_baseline.config, CRASH_ROWS, "run", artifacts), run_dir, sig, 3
    )
    assert stopped.returncode == 1, stopped.stderr
    manifest = read_manifest(run_dir)
    assert manifest is not None
    assert manifest["status"] == "incomplete"
    assert manifest["incomplete_reason"] == "cancelled"
    done = len(manifest["row_groups"])
    assert 3 <= done < CRASH_GROUPS
    # The message says what is saved, what is incomplete, and how to finish.
    err = " ".join(stopped.stderr.split())
    assert "stopped" in err and "--resume" in err
    assert f"{done} of {CRASH_GROUPS} row groups" in err
    assert f"{CRASH_GROUPS - done} incomplete" in err
    # Graceful: every part on disk is recorded (no orphan), nothing temporary is left.
    assert_reader_view_consistent(run_dir, CRASH_COLUMNS, CRASH_BUFFER)
    on_disk = sorted(p.name for p in (run_dir / "data").iterdir())
    assert on_disk == sorted(rec["part"] for rec in manifest["row_groups"].values())

    resumed = run_create(crash_baseline.config, CRASH_ROWS, "run", artifacts, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert DatasetResult.open(run_dir).summary.request_attempts == (
        (CRASH_GROUPS - done) * CRASH_BUFFER
    )
    digest, columns = dataset(run_dir)
    assert digest == crash_baseline.output_hash
    assert tuple(columns["row_id"]) == crash_baseline.row_ids
