"""Custom-column functions for the token-usage tests."""

from __future__ import annotations

import os
from typing import Any


def fail_on_row(row: dict[str, Any], facade: Any) -> str:
    """Raises for the row whose `n` equals $ROWLOOM_TEST_FAIL_ROW (stops the run)."""
    if str(row["n"]) == os.environ.get("ROWLOOM_TEST_FAIL_ROW", ""):
        raise RuntimeError("planned failure")
    return str(row["n"])
