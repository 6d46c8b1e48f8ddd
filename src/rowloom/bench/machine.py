"""What a benchmark ran on and how it was measured: machine facts, source revision, peak RSS.

Peak RSS per iteration uses Linux's `VmHWM` after resetting it through `/proc/self/clear_refs`
(writing `5`); where that is unavailable the process-lifetime maximum (`ru_maxrss`) is
reported and `method` says so.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HWM = re.compile(r"^VmHWM:\s+(\d+)\s+kB", re.MULTILINE)
ENVIRONMENT_KNOBS = ("PYTHONHASHSEED", "PYTHONOPTIMIZE", "OMP_NUM_THREADS", "ROWLOOM_")
"""Environment variables recorded with every result (a trailing `_` is a prefix)."""


def machine_info() -> dict[str, Any]:
    """cpu model, core count, Python version and platform of this machine."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where unavailable): other work on the
    machine shows up here and in the noise of every timing."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def environment_knobs() -> dict[str, str]:
    """The recorded environment variables that can change timings (never secrets)."""
    out: dict[str, str] = {}
    for name, value in sorted(os.environ.items()):
        for knob in ENVIRONMENT_KNOBS:
            hit = name.startswith(knob) if knob.endswith("_") else name == knob
            if hit and "KEY" not in name and "TOKEN" not in name and "SECRET" not in name:
                out[name] = value
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def source_revision() -> dict[str, Any]:
    """The git commit of the rowloom source being measured, and whether the tree is dirty."""
    root = Path(__file__).resolve().parents[3]
    try:
        sha = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no", "--", "src"))
    except (OSError, subprocess.CalledProcessError):
        return {"sha": None, "dirty": None, "source": str(root)}
    return {"sha": sha, "dirty": dirty, "source": str(root)}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout.strip()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes(reset_ok: bool) -> tuple[int, str]:
    """Peak RSS since the last reset (`VmHWM`), or the lifetime maximum, with the method."""
    if reset_ok:
        try:
            match = _HWM.search(Path("/proc/self/status").read_text(encoding="ascii"))
        except OSError:
            match = None
        if match:
            return int(match.group(1)) * 1024, "vmhwm_since_reset"
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "process_lifetime_max"


@dataclass(slots=True)
class Measurement:
    """Wall time, process CPU time (all threads) and peak RSS of one measured block."""

    wall_time_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    peak_rss_method: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def measure() -> Iterator[Measurement]:
    """Measure the enclosed block (the result is filled in when the block ends)."""
    out = Measurement()
    reset_ok = reset_peak_rss()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out.wall_time_seconds = time.perf_counter() - wall0
        out.cpu_seconds = time.process_time() - cpu0
        out.peak_rss_bytes, out.peak_rss_method = peak_rss_bytes(reset_ok)
