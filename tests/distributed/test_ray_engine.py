"""Runs the Ray engine's cases (`ray_cases.py`) in a network namespace with only loopback.

Ray's processes listen on every interface and probe for an external address; inside
`unshare -n` (with `lo` up) the only address there is 127.0.0.1, so nothing leaves the machine.
Skipped, with the reason, when the `ray` extra is missing or namespaces are not permitted.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def _namespace_or_skip() -> list[str]:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the ray extra is not installed (pip install 'rowloom[ray]')")
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        pytest.skip("unshare/ip not available: Ray tests run only in a loopback-only namespace")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"network namespaces not permitted here: {probe.stderr.decode().strip()}")
    return [unshare, "-n", "sh", "-c", f'"{ip}" link set lo up && exec "$@"', "sh"]


def _run_cases(marker: str, timeout: float) -> None:
    prefix = _namespace_or_skip()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_NODE_IP_ADDRESS": "127.0.0.1"}
    command = [
        *prefix,
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        marker,
        str(HERE / "ray_cases.py"),
    ]
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout


def test_ray_engine_cases_on_loopback_only() -> None:
    _run_cases("not slow", timeout=400)


@pytest.mark.slow
def test_ray_engine_two_node_cluster_on_loopback_only() -> None:
    _run_cases("slow", timeout=600)
