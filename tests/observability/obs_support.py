"""Shared helpers for observability tests: simulated-provider configs, runs, event loading."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rowloom.config.dataset import DatasetConfig
from rowloom.errors import NonRetryableTaskError, RetryableTaskError
from rowloom.interface.designer import Designer
from rowloom.interface.results import DatasetResult
from rowloom.models.facade import ModelFacade
from rowloom.observability import iter_event_dicts


def sim_config(
    *,
    capacity: int = 64,
    latency_ms: float = 2.0,
    retry_after_s: float = 1.0,
    max_parallel: int = 8,
    columns: list[dict[str, Any]] | None = None,
    run: dict[str, Any] | None = None,
    fail_rate: float = 0.0,
    extra_models: list[dict[str, Any]] | None = None,
    provider: dict[str, Any] | None = None,
) -> DatasetConfig:
    """One simulated provider, one `writer` model, a sampler and one llm column by default."""
    cols = columns or [
        {
            "name": "topic",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": ["rivers", "glaciers"]},
        },
        {
            "name": "text",
            "column_type": "llm_text",
            "model_alias": "writer",
            "prompt": "Write about {{ topic }}.",
        },
    ]
    data: dict[str, Any] = {
        "providers": [
            provider
            or {
                "name": "sim",
                "provider_type": "simulated",
                "simulation": {
                    "capacity": capacity,
                    "latency_ms": latency_ms,
                    "overload": "reject",
                    "retry_after_s": retry_after_s,
                    "fail_rate": fail_rate,
                    "seed": 7,
                },
            }
        ],
        "models": [
            {
                "alias": "writer",
                "model": "sim-writer-8b",
                "provider": "sim",
                "max_parallel_requests": max_parallel,
            },
            *(extra_models or []),
        ],
        "columns": cols,
        "seed": 11,
    }
    if run is not None:
        data["run"] = run
    return DatasetConfig.from_dict(data)


async def create(tmp: Path, config: DatasetConfig, n: int, name: str = "run") -> DatasetResult:
    return await Designer(tmp).acreate(config, n, name)


def read_events(run_dir: Path, stream: str) -> list[dict[str, Any]]:
    """One stream of a run folder as its events' JSON objects, in order."""
    return list(iter_event_dicts(run_dir, [stream]))


def kinds(run_dir: Path) -> tuple[set[str], set[str]]:
    return (
        {e["event_kind"] for e in read_events(run_dir, "scheduler")},
        {e["event_kind"] for e in read_events(run_dir, "requests")},
    )


# --- custom column functions (module level: configs reference them by import path) -------------

_SEEN: dict[str, int] = {}


def reset_seen() -> None:
    _SEEN.clear()


async def flaky_then_ok(row: Mapping[str, Any], facade: ModelFacade) -> str:
    """Fails once (retryable) for `glaciers` rows, drops `rivers-3`-like rows, else one call."""
    key = str(row["key"])
    _SEEN[key] = _SEEN.get(key, 0) + 1
    if key.endswith("7"):
        raise NonRetryableTaskError("custom_refused", "this row is not wanted")
    if key.endswith("3") and _SEEN[key] == 1:
        raise RetryableTaskError("custom_flaky", "try again later")
    return await facade.chat("writer", f"Say something about {key}.")


async def bursts(row: Mapping[str, Any], facade: ModelFacade) -> str:
    """Two bursts above the provider's capacity, then a sequential tail that lets AIMD recover
    past the last 429 ceiling and back to its maximum."""
    await asyncio.gather(*(facade.chat("writer", f"burst one {i}") for i in range(8)))
    await asyncio.gather(*(facade.chat("writer", f"burst two {i}") for i in range(6)))
    for i in range(40):
        await facade.chat("writer", f"tail {i}")
    return "done"


_STARTED: list[asyncio.Event] = []


def started_event() -> asyncio.Event:
    """Set once a `slow_forever` call has started its model calls (create it inside the loop)."""
    if not _STARTED:
        _STARTED.append(asyncio.Event())
    return _STARTED[0]


def reset_started() -> None:
    _STARTED.clear()


async def settle(rounds: int = 10) -> None:
    """Yield to the loop so woken tasks run (not a timing wait)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def slow_forever(row: Mapping[str, Any], facade: ModelFacade) -> str:
    """Starts several calls on a one-slot provider, so most of them queue (for cancellation)."""
    calls = [asyncio.ensure_future(facade.chat("writer", f"wait {i}")) for i in range(6)]
    started_event().set()
    results = await asyncio.gather(*calls)
    return results[0]
