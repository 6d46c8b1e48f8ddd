"""Subprocess harness for the reliability tests: run the real `rowloom` console script, watch
its run folder through Linux inotify (no polling), kill it at chosen moments, and check what a
reader can see on disk.

Kill triggers:

- `("time", seconds)`: SIGKILL after a delay (the process may finish first);
- `("part_tmp", k)`: SIGKILL as soon as the k-th hidden part temporary is created, i.e. inside
  the part-write window (between `open` of `.part-NNNNN.parquet.tmp-*` and its rename);
- `("part_visible", k)`: SIGKILL as soon as the k-th part is renamed into place, i.e. after the
  rename and before (or while) the manifest records it;
- `("manifest_tmp", k)`: SIGKILL as soon as the k-th manifest temporary is created.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rowloom.builder.outputs import RunSummary
from rowloom.interface.results import DatasetResult, output_hash

REPO = Path(__file__).resolve().parents[2]
ROWLOOM = str(Path(sys.executable).with_name("rowloom"))
"""The installed console script (there is no `python -m rowloom` entry point)."""

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
_EVENT = struct.Struct("iIII")

Trigger = tuple[str, float]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a `rowloom` child: the repo on PYTHONPATH (for test functions),
    plain wide output, no colour."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    env.update(extra)
    return env


def create_cmd(
    config: Path, n: int, name: str, artifact_dir: Path, *extra: str, resume: bool = False
) -> list[str]:
    cmd = [
        ROWLOOM,
        "create",
        str(config),
        "-n",
        str(n),
        "--name",
        name,
        "--artifact-dir",
        str(artifact_dir),
        "--quiet",
    ]
    if resume:
        cmd.append("--resume")
    return [*cmd, *extra]


def run_create(
    config: Path,
    n: int,
    name: str,
    artifact_dir: Path,
    *extra: str,
    resume: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run `rowloom create` to its end and return its exit code and output."""
    return subprocess.run(
        create_cmd(config, n, name, artifact_dir, *extra, resume=resume),
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --------------------------------------------------------------------------------- inotify


class DirWatcher:
    """Create/rename events of a few directories, read from one inotify descriptor."""

    def __init__(self, *directories: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = int(libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK))
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._dirs: dict[int, Path] = {}
        for d in directories:
            d.mkdir(parents=True, exist_ok=True)
            wd = libc.inotify_add_watch(self._fd, os.fsencode(d), IN_CREATE | IN_MOVED_TO)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch({d}) failed")
            self._dirs[wd] = d

    def fileno(self) -> int:
        return self._fd

    def read(self) -> Iterator[tuple[Path, str, int]]:
        """The events available now: (directory, file name, mask)."""
        try:
            data = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return
        offset = 0
        while offset < len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size
            name = data[offset : offset + length].rstrip(b"\0").decode()
            offset += length
            yield self._dirs.get(wd, Path("?")), name, mask

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _matches(kind: str, name: str, mask: int) -> bool:
    if kind == "part_tmp":
        return bool(mask & IN_CREATE) and name.startswith(".part-")
    if kind == "part_visible":
        return bool(mask & IN_MOVED_TO) and name.startswith("part-")
    if kind == "manifest_tmp":
        return bool(mask & IN_CREATE) and name.startswith(".manifest.json.tmp-")
    raise ValueError(kind)


@dataclass
class KillRecord:
    """What happened to one killed (or not killed) child."""

    trigger: Trigger
    killed: bool
    returncode: int
    seconds: float
    part_temporaries: list[str] = field(default_factory=list)
    other_temporaries: list[str] = field(default_factory=list)
    visible_parts: list[str] = field(default_factory=list)
    manifest_row_groups: list[int] = field(default_factory=list)
    stderr: str = ""

    @property
    def in_part_write(self) -> bool:
        """The kill landed between the creation and the rename of a part temporary."""
        return self.killed and bool(self.part_temporaries)

    @property
    def orphan_parts(self) -> list[str]:
        """Parts renamed into place but not (yet) recorded in the manifest."""
        recorded = {f"part-{rg:05d}.parquet" for rg in self.manifest_row_groups}
        return sorted(set(self.visible_parts) - recorded)


def run_and_kill(
    cmd: Sequence[str], run_dir: Path, trigger: Trigger, timeout: float = 120.0
) -> KillRecord:
    """Start `cmd`, SIGKILL it at `trigger`, wait for it; report what is on disk."""
    data_dir = run_dir / "data"
    watcher = DirWatcher(run_dir, data_dir)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    pidfd = os.pidfd_open(proc.pid)
    killed = False
    try:
        kind, value = trigger
        seen = 0
        deadline = started + (value if kind == "time" else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([pidfd, watcher.fileno()], [], [], remaining)
            if pidfd in ready:
                break  # the child ended before the trigger
            hit = False
            for _d, name, mask in watcher.read():
                if kind != "time" and _matches(kind, name, mask):
                    seen += 1
                    if seen >= value:
                        hit = True
                        break
            if hit:
                break
        if proc.poll() is None and (kind == "time" or seen >= value):
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
        _, stderr = proc.communicate(timeout=timeout)
    finally:
        os.close(pidfd)
        watcher.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    record = KillRecord(trigger, killed, proc.returncode, time.monotonic() - started, stderr=stderr)
    record.part_temporaries = sorted(p.name for p in data_dir.glob(".part-*"))
    record.other_temporaries = sorted(p.name for p in run_dir.glob(".*"))
    record.visible_parts = sorted(p.name for p in data_dir.glob("part-*.parquet"))
    manifest = read_manifest(run_dir)
    if manifest is not None:
        record.manifest_row_groups = sorted(int(k) for k in manifest["row_groups"])
    return record


# ------------------------------------------------------------------------------ checks


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The manifest as JSON; it must always parse (it is replaced atomically)."""
    path = run_dir / "manifest.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_reader_view_consistent(run_dir: Path, columns: Sequence[str], buffer_size: int) -> None:
    """What any reader sees is whole: every visible part reads completely with the run's
    columns, every part the manifest lists exists with the recorded row count, and every
    temporary is a hidden (dot) file."""
    data_dir = run_dir / "data"
    for path in sorted(data_dir.iterdir()) if data_dir.is_dir() else []:
        if path.name.startswith("."):
            continue
        assert path.name.startswith("part-") and path.suffix == ".parquet", path.name
        table = pq.read_table(path)
        assert table.column_names == list(columns), path.name
        assert 0 < table.num_rows <= buffer_size, (path.name, table.num_rows)
    manifest = read_manifest(run_dir)
    if manifest is None:
        return
    for rg, rec in manifest["row_groups"].items():
        part = data_dir / rec["part"]
        assert part.name == f"part-{int(rg):05d}.parquet"
        assert pq.read_metadata(part).num_rows == rec["rows"], rg
    for path in run_dir.iterdir():
        if path.is_file() and path.name != "manifest.json":
            allowed = (".json", ".html", ".yaml")
            assert path.name.startswith(".") or path.suffix in allowed, path.name


def dataset(run_dir: Path) -> tuple[str, dict[str, list[Any]]]:
    """(output hash, columns) of a run folder, read the way users read it."""
    result = DatasetResult(run_dir, RunSummary(name="", engine="", num_records=0), {})
    columns = result.columns()
    return output_hash(columns), columns
