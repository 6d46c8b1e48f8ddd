"""Deterministic custom-column functions for the reliability tests (imported by config path)."""

from __future__ import annotations

import hashlib
from typing import Any

BLOB_BYTES = 32_000
"""Incompressible bytes per row, so each parquet part takes a few milliseconds to write."""


def blob(row: dict[str, Any], facade: Any) -> str:
    """A hex string derived from the row id only (same row -> same blob, in any run)."""
    return hashlib.shake_256(str(row["row_id"]).encode()).hexdigest(BLOB_BYTES)
