"""Custom column functions the benchmark scenarios use (importable, so configs serialise).

- `dynamic_calls`: 0, 1 or many model calls per row, decided by the row's `calls` value
  (several calls run concurrently inside one task).
- `flaky_review`: deterministic failures keyed by the row's `rid`: some rows are rejected
  (non-retryable: the row is dropped), some fail their first attempt (retryable: salvaged).
  `reset_flaky()` forgets the attempts; the harness calls it before every run.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter
from collections.abc import Mapping
from typing import Any

from rowloom.errors import NonRetryableTaskError, RetryableTaskError
from rowloom.models.facade import ModelFacade

_ATTEMPTS: Counter[str] = Counter()
REJECT_EVERY = 17
"""Rows whose `rid` hash is divisible by this are rejected (dropped)."""
FLAKY_EVERY = 5
"""Rows whose `rid` hash is divisible by this fail their first attempt (salvaged)."""


async def dynamic_calls(row: Mapping[str, Any], facade: ModelFacade) -> str:
    """`row["calls"]` chat calls through the `writer` alias (0, 1 or many), answers joined."""
    calls = int(row["calls"])
    topic = row["topic"]
    if calls <= 1:
        answers = [await facade.chat("writer", f"One fact about {topic}.") for _ in range(calls)]
    else:
        prompts = [f"Fact {i + 1} of {calls} about {topic}." for i in range(calls)]
        answers = list(await asyncio.gather(*(facade.chat("writer", p) for p in prompts)))
    return "\n".join(answers)


def reset_flaky() -> None:
    """Forget every attempt `flaky_review` has seen."""
    _ATTEMPTS.clear()


async def flaky_review(row: Mapping[str, Any], facade: ModelFacade) -> str:
    """A review of `row["text"]`, failing deterministically for some rows (see module doc)."""
    rid = str(row["rid"])
    h = zlib.crc32(rid.encode())
    if h % REJECT_EVERY == 0:
        raise NonRetryableTaskError("bench_rejected", "rejected by the benchmark's rule")
    _ATTEMPTS[rid] += 1
    if h % FLAKY_EVERY == 0 and _ATTEMPTS[rid] == 1:
        raise RetryableTaskError("bench_flaky", "first attempt fails by the benchmark's rule")
    return await facade.chat("writer", f"Review this in one line: {row['text']}")
