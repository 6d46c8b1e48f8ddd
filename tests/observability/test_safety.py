"""No secret and no prompt text in any run artifact (events, capacity plan, report, manifest,
parquet metadata), on the real `openai` client path against the HTTP mock server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from rowloom.config.dataset import DatasetConfig
from rowloom.errors import NonRetryableTaskError
from rowloom.interface.designer import Designer
from rowloom.models.facade import ModelFacade
from rowloom.observability import json_lines, read_events
from rowloom.simulation.server import MockProviderServer, MockServerOptions

SECRET = "sk-test-7Q2xVb9LmZ4pR1sT8uW3yA6cE0dG5hJ"
MARKER = "PROMPT-MARKER-5c1e9a"


async def refuse_some(row: Mapping[str, Any], facade: ModelFacade) -> str:
    """Drops `glaciers` rows with a message that quotes the prompt marker."""
    if row["topic"] == "glaciers":
        raise NonRetryableTaskError("custom_refused", f"refused because of {MARKER}")
    return await facade.chat("writer", f"{MARKER} again: {row['topic']}")


def _config(url: str) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "mock",
                    "provider_type": "openai",
                    "endpoint": url,
                    "api_key_env": "ROWLOOM_SAFETY_TEST_KEY",
                }
            ],
            "models": [
                {
                    "alias": "writer",
                    "model": "model-x",
                    "provider": "mock",
                    "max_parallel_requests": 6,
                }
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["rivers", "glaciers", "deserts"]},
                },
                {
                    "name": "text",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "system_prompt": f"System {MARKER}.",
                    "prompt": f"{MARKER} about {{{{ topic }}}}.",
                },
                {
                    "name": "custom",
                    "column_type": "custom",
                    "function": refuse_some,
                    "required_columns": ["topic"],
                    "model_aliases": ["writer"],
                },
            ],
            "run": {"buffer_size": 10},
        }
    )


def _without_error_samples(name: str, text: str) -> str:
    """The artifact without its error samples: a dropped row's own error message (here one the
    user's function raised, quoting the prompt) is shown to the user on purpose, secrets
    redacted; nothing else may carry prompt text."""
    if name == "manifest.json":
        data = json.loads(text)
        for group in data["row_groups"].values():
            assert group.pop("errors", []) is not None
        return json.dumps(data)
    if name == "summary.json":
        data = json.loads(text)
        assert data.pop("error_samples")
        return json.dumps(data)
    if name == "report.html":
        start, end = text.index("<!-- errors -->"), text.index("<!-- /errors -->")
        return text[:start] + text[end:]
    return text


def _artifact_texts(run_dir: Path) -> dict[str, str]:
    texts = {
        str(p.relative_to(run_dir)): p.read_text(encoding="utf-8")
        for p in [
            run_dir / "capacity_plan.json",
            run_dir / "report.html",
            run_dir / "manifest.json",
            run_dir / "summary.json",
        ]
    }
    for stream in ("scheduler", "requests"):
        # every column of every event (the files are compressed: scan the decoded values)
        table = read_events(run_dir, stream)
        texts[f"events/{stream}"] = repr(table.to_pylist()) + repr(table.schema)
        texts[f"events/{stream}.jsonl"] = b"\n".join(json_lines(run_dir, [stream])).decode()
    for part in run_dir.glob("data/*.parquet"):
        metadata = pq.read_schema(part).metadata or {}
        texts[str(part.relative_to(run_dir))] = repr(metadata)
    return texts


def test_no_secret_or_prompt_in_any_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROWLOOM_SAFETY_TEST_KEY", SECRET)
    options = MockServerOptions(
        latency_ms=5, capacity=3, retry_after=0.2, api_key=SECRET, models=("model-x",)
    )

    async def main() -> Path:
        async with MockProviderServer(options) as server:
            result = await Designer(tmp_path).acreate(_config(server.url), 30, "safety")
            assert server.stats().unauthorized == 0, "the key reached the provider"
        assert result.summary.row_groups_done == result.summary.row_groups_total
        assert result.summary.dropped_rows.get("custom_refused", 0) > 0  # so: incomplete
        assert result.summary.status == "incomplete"
        assert result.summary.requests_by_outcome.get("rate_limited", 0) > 0
        return result.run_dir

    run_dir = asyncio.run(main())
    texts = _artifact_texts(run_dir)
    assert {
        "events/scheduler",
        "events/requests",
        "capacity_plan.json",
        "report.html",
        "manifest.json",
    } <= set(texts)
    assert any(name.startswith("data/") for name in texts)
    assert "custom_refused" in texts["report.html"], "the scan reads real report content"
    assert "request_rate_limited" in texts["events/requests"], "the scan reads real events"
    for name, text in texts.items():
        assert SECRET not in text, f"the API key leaked into {name}"
        assert MARKER not in _without_error_samples(name, text), f"prompt text leaked into {name}"
