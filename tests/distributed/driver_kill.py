"""A custom column that kills the Ray run's driver once (imported by the driver and workers
through PYTHONPATH; used by `ray_cases.py`).

The first time any worker generates a row after the run's manifest records `KILL_AFTER`
committed row groups, it SIGKILLs the driver (the process `ROWLOOM_TEST_DRIVER_PID` names),
as if the driver's machine died mid-run. A marker file makes it happen once: a resumed run
finds the marker and generates normally.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

KILL_AFTER = 2
"""Committed row groups in the manifest before the driver is killed."""


def kill_driver_once(row: dict[str, Any], *_: Any) -> str:
    """The row's topic, upper-cased; kills the driver once (see the module docstring)."""
    marker = Path(os.environ["ROWLOOM_TEST_DRIVER_MARKER"])
    manifest = Path(os.environ["ROWLOOM_TEST_RUN_DIR"]) / "manifest.json"
    if not marker.exists() and manifest.exists():
        committed = json.loads(manifest.read_text(encoding="utf-8")).get("row_groups") or {}
        if len(committed) >= KILL_AFTER:
            marker.write_text("killed", encoding="utf-8")
            os.kill(int(os.environ["ROWLOOM_TEST_DRIVER_PID"]), signal.SIGKILL)
    return str(row["topic"]).upper()
