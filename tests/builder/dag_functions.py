"""Deterministic custom-column functions used by the engine-equivalence tests."""

from __future__ import annotations

from typing import Any


async def join_with_model(row: dict[str, Any], facade: Any) -> str:
    """Calls the model 0, 1 or 2 times depending on the row, then joins the answers."""
    text = "|".join(str(row[k]) for k in sorted(row))
    calls = len(text) % 3
    answers = [await facade.chat("m", f"{text} #{i}") for i in range(calls)]
    return text + "".join(a[:8] for a in answers)
