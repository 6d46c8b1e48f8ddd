"""Token usage and cost: booked per column and model, persisted per row group, summed over
resumed sessions; inference-parameter distributions drawn per request, deterministically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rowloom.config.dataset import DatasetConfig
from rowloom.config.models import InferenceParameters, ManualDistribution, UniformDistribution
from rowloom.interface.designer import Designer
from rowloom.models.clients.base import TokenUsage
from rowloom.models.clients.model_request_executor import sample_parameter
from rowloom.models.usage import CallTag, UsageCounts, UsageLedger, UsageTotals, usage_report
from rowloom.simulation.server import MockProviderServer, MockServerOptions


def config(endpoint: str | None = None, *, fail_column: bool = False) -> DatasetConfig:
    provider: dict[str, Any] = (
        {"name": "p", "provider_type": "openai", "endpoint": endpoint}
        if endpoint
        else {"name": "p", "provider_type": "simulated", "simulation": {"latency_ms": 0}}
    )
    columns: list[dict[str, Any]] = [
        {
            "name": "n",
            "column_type": "sampler",
            "sampler_type": "uniform",
            "params": {"low": 0, "high": 10_000, "integer": True},
        },
        {
            "name": "q",
            "column_type": "llm_text",
            "model_alias": "writer",
            "prompt": "Ask about {{ n }}.",
        },
        {
            "name": "a",
            "column_type": "llm_text",
            "model_alias": "judge",
            "prompt": "Answer {{ q }}",
        },
    ]
    if fail_column:
        columns.append(
            {
                "name": "f",
                "column_type": "custom",
                "required_columns": ["n", "a"],
                "function": "tests.models.usage_functions:fail_on_row",
            }
        )
    return DatasetConfig.from_dict(
        {
            "providers": [provider],
            "models": [
                {
                    "alias": "writer",
                    "model": "w",
                    "provider": "p",
                    "max_parallel_requests": 4,
                    "price": {"prompt_per_million": 1.0, "completion_per_million": 4.0},
                    "inference_parameters": {
                        "temperature": {
                            "distribution_type": "uniform",
                            "params": {"low": 0.2, "high": 0.9},
                        },
                        "max_tokens": 16,
                    },
                },
                {"alias": "judge", "model": "j", "provider": "p", "max_parallel_requests": 4},
            ],
            "columns": columns,
            "seed": 5,
            "run": {"buffer_size": 4, "max_concurrent_row_groups": 1},
        }
    )


def test_ledger_books_per_row_group_and_takes_each_once() -> None:
    ledger = UsageLedger()
    ledger.record(CallTag("q", 0, 1), "w", TokenUsage(10, 5, 2))
    ledger.record(CallTag("q", 1, 5), "w", TokenUsage(1, 1, 0))
    ledger.record(CallTag("a", 0, 1), "j", None)
    first = ledger.take(0)
    assert first.as_json() == {
        "a": {
            "j": {"requests": 1, "prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}
        },
        "q": {
            "w": {"requests": 1, "prompt_tokens": 10, "completion_tokens": 5, "reasoning_tokens": 2}
        },
    }
    assert not ledger.take(0)
    assert ledger.take_rest().total() == UsageCounts(1, 1, 1, 0)
    assert ledger.session.total() == UsageCounts(3, 11, 6, 2)
    assert UsageTotals.from_json(first.as_json()).as_json() == first.as_json()


def test_cost_needs_a_price_and_lists_unpriced_models() -> None:
    totals = UsageTotals()
    totals.add("q", "w", UsageCounts(2, 1_000_000, 500_000, 0))
    totals.add("a", "j", UsageCounts(1, 10, 10, 0))
    from rowloom.config.models import ModelPrice

    report = usage_report(totals, {"w": ModelPrice(prompt_per_million=1, completion_per_million=4)})
    assert report["by_model"]["w"]["estimated_cost"] == pytest.approx(3.0)
    assert "estimated_cost" not in report["by_model"]["j"]
    assert report["total"]["estimated_cost"] == pytest.approx(3.0)
    assert report["unpriced_models"] == ["j"]
    assert report["by_column"]["q"]["estimated_cost"] == pytest.approx(3.0)
    assert report["currency"] == "USD"


def test_distributions_validate_ranges_and_draw_deterministically() -> None:
    uniform = UniformDistribution.model_validate(
        {"distribution_type": "uniform", "params": {"low": 0.1, "high": 0.3}}
    )
    manual = ManualDistribution.model_validate(
        {"distribution_type": "manual", "params": {"values": [0.0, 1.0], "weights": [1, 3]}}
    )
    msgs = [{"role": "user", "content": "hi"}]
    draws = [
        sample_parameter(uniform, 1, "temperature", "w", CallTag("c", 0, i), msgs)
        for i in range(200)
    ]
    assert all(0.1 <= d < 0.3 for d in draws)
    assert len(set(draws)) == 200  # every row gets its own draw
    again = sample_parameter(uniform, 1, "temperature", "w", CallTag("c", 0, 7), msgs)
    assert again == draws[7]  # a retry or rerun of the same request sends the same value
    other_seed = sample_parameter(uniform, 2, "temperature", "w", CallTag("c", 0, 7), msgs)
    assert other_seed != draws[7]
    ones = [sample_parameter(manual, 1, "top_p", "w", CallTag("c", 0, i), msgs) for i in range(400)]
    assert set(ones) == {0.0, 1.0} and 0.65 < sum(ones) / 400 < 0.85
    with pytest.raises(ValueError, match="temperature must be within"):
        InferenceParameters.model_validate(
            {"temperature": {"distribution_type": "uniform", "params": {"low": 1, "high": 3}}}
        )
    with pytest.raises(ValueError, match="top_p must be within"):
        InferenceParameters.model_validate(
            {"top_p": {"distribution_type": "manual", "params": {"values": [0.5, 1.5]}}}
        )


class SpyServer(MockProviderServer):
    """The mock server, recording the temperature each request to model `w` carries."""

    seen: list[float]

    async def _chat(self, request: Any) -> Any:
        body = await request.json()
        if body.get("model") == "w":
            self.seen.append(body["temperature"])
        return await super()._chat(request)


async def test_sampled_temperatures_reach_the_provider_over_http() -> None:
    async with SpyServer(MockServerOptions(latency_ms=0)) as server:
        server.seen = seen = []
        cfg = config(server.url)
        first = await Designer().apreview(cfg, 8)
        again = await Designer().apreview(cfg, 8)
    assert len(seen) == 16 and all(0.2 <= t < 0.9 for t in seen)
    assert sorted(seen[:8]) == sorted(seen[8:])  # the same draws on a rerun
    assert len(set(seen[:8])) == 8
    assert first.data == again.data


async def test_usage_in_summary_manifest_and_report_over_http(tmp_path: Path) -> None:
    async with MockProviderServer(MockServerOptions(latency_ms=0)) as server:
        result = await Designer(tmp_path).acreate(config(server.url), 10, "run")
    usage = result.summary.token_usage
    assert usage["by_model"]["writer"]["requests"] == 10
    assert usage["by_model"]["judge"]["requests"] == 10
    assert set(usage["by_column"]) == {"q", "a"}
    writer = usage["by_model"]["writer"]
    expected = (writer["prompt_tokens"] * 1.0 + writer["completion_tokens"] * 4.0) / 1e6
    assert writer["estimated_cost"] == pytest.approx(expected)
    assert usage["unpriced_models"] == ["judge"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    per_group = [rg["usage"] for rg in manifest["row_groups"].values()]
    assert len(per_group) == 3
    assert sum(g["q"]["writer"]["requests"] for g in per_group) == 10
    assert manifest["token_usage"]["total"]["total_tokens"] == usage["total"]["total_tokens"]
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Token usage" in html and "writer" in html


async def test_resumed_run_adds_up_without_losing_or_double_counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = await Designer(tmp_path).acreate(config(fail_column=True), 12, "fresh")
    fresh_total = UsageCounts.from_json(fresh.summary.token_usage["total"])
    assert fresh_total.requests == 24
    # The first value of the 3rd row group fails: groups 0 and 1 are kept, group 2 is lost.
    target = fresh.to_pandas()["n"].iloc[8]
    monkeypatch.setenv("ROWLOOM_TEST_FAIL_ROW", str(target))
    with pytest.raises(Exception, match="planned failure"):
        await Designer(tmp_path).acreate(config(fail_column=True), 12, "run")
    stopped = json.loads((tmp_path / "run" / "manifest.json").read_text())
    kept = UsageCounts.from_json(stopped["token_usage"]["total"])
    assert stopped["status"] == "incomplete" and len(stopped["row_groups"]) == 2
    assert kept.requests > 16  # two kept groups (16) plus the discarded work of group 2
    monkeypatch.delenv("ROWLOOM_TEST_FAIL_ROW")
    resumed = await Designer(tmp_path).acreate(config(fail_column=True), 12, "run", resume=True)
    total = UsageCounts.from_json(resumed.summary.token_usage["total"])
    discarded = UsageCounts.from_json(
        json.loads((tmp_path / "run" / "manifest.json").read_text())["discarded_usage"]["q"][
            "writer"
        ]
    ) + UsageCounts.from_json(
        json.loads((tmp_path / "run" / "manifest.json").read_text())["discarded_usage"]
        .get("a", {})
        .get("judge", {})
    )
    assert discarded.requests == kept.requests - 16
    assert total == fresh_total + discarded


def test_live_progress_line_shows_tokens_and_cost() -> None:
    from types import SimpleNamespace

    from rowloom.builder.builder import RunMonitor
    from rowloom.config.models import ModelPrice
    from rowloom.interface.progress import ProgressDisplay

    monitor = RunMonitor()
    ledger = UsageLedger()
    monitor.executor = SimpleNamespace(  # type: ignore[assignment]
        usage=ledger,
        stats=SimpleNamespace(attempts=3),
        attempts_in_flight=0,
        stragglers_cancelled=0,
        oldest_attempt_age=lambda: None,
    )
    display = ProgressDisplay(monitor, mode="quiet")
    assert "tokens" not in display.headline()
    ledger.record(CallTag("q", 0, 0), "w", TokenUsage(12_300, 4_500, 1_200))
    monitor.prices = {"w": ModelPrice(prompt_per_million=1, completion_per_million=2)}
    line = display.headline()
    assert "tokens 12.3k in / 4.5k out (1.2k reasoning)  ~0.0213" in line
