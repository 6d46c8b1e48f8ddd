"""Every `rowloom` command pays for what the CLI imports at start-up: heavy libraries that only
some commands need are imported where they are used."""

from __future__ import annotations

import subprocess
import sys

LAZY = ("pandas", "aiohttp", "huggingface_hub", "ray", "mcp", "sqlglot", "datasketch")


def test_the_cli_starts_without_the_heavy_optional_libraries() -> None:
    code = (
        "import sys, rowloom.interface.cli\n"
        f"print(','.join(m for m in {LAZY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "", f"imported at CLI start-up: {out.stdout.strip()}"
