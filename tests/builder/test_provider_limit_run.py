"""Two models on one provider that is smaller than their caps together: a whole run learns the
provider's limit, shows it in the capacity plan and the events, and loses nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rowloom.bench.baselines import no_provider_limit
from rowloom.builder.builder import DatasetBuilder
from rowloom.builder.options import EngineOptions
from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.interface.report import load_report
from rowloom.observability import iter_event_dicts

CAPACITY = 4


def config() -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "shared",
                    "provider_type": "simulated",
                    "simulation": {
                        "capacity": CAPACITY,
                        "latency_ms": 20,
                        "overload": "reject",
                        "retry_after_s": 0.2,
                        "seed": 3,
                    },
                }
            ],
            "models": [
                {"alias": "writer", "model": "w", "provider": "shared", "max_parallel_requests": 8},
                {"alias": "judge", "model": "j", "provider": "shared", "max_parallel_requests": 8},
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["a", "b", "c"]},
                },
                {
                    "name": "answer",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": "Write about {{ topic }}.",
                },
                {
                    "name": "check",
                    "column_type": "llm_text",
                    "model_alias": "judge",
                    "prompt": "Check: {{ topic }}",
                },
            ],
            "run": {"buffer_size": 40},
        }
    )


def provider_limit_events(run_dir: Path) -> list[dict[str, Any]]:
    events = iter_event_dicts(run_dir, ["requests"])
    return [e for e in events if e.get("reason") == "provider_limit"]


def test_a_shared_provider_gets_a_learned_limit_near_its_capacity(tmp_path: Path) -> None:
    result = Designer(tmp_path).create(config(), 120, "shared")
    assert result.summary.status == "complete"
    assert result.summary.rows_written == 120 and not result.summary.dropped_rows
    plan = result.capacity_plan
    assert plan["configured"]["request_provider_limits"]["value"] is True
    limit = plan["runtime_snapshot"]["provider_limits"]["shared"]
    assert 1 <= limit <= CAPACITY + 1  # starts at 8, slow-starts toward 16; holds at 4, probes 5
    decreases = [
        e for e in provider_limit_events(result.run_dir) if e["event_kind"].endswith("decreased")
    ]
    # The first model alone overruns the provider: the 429 ends the slow start at its first
    # step, before the second model's requests could add a burst of their own.
    assert decreases and decreases[0]["diagnostics"]["before"] == 8
    assert decreases[0]["diagnostics"]["phase"] == "slow_start"
    assert all(e["diagnostics"]["provider"] == "shared" for e in decreases)
    # The report's per-resource limit lines are the resources' own limits, never the provider's.
    view = load_report(result.run_dir).view
    assert view.limit_changes
    for _, key, _, before, after in view.limit_changes:
        assert key.startswith("shared/")
        assert all(v is None or v <= 8 for v in (before, after)), (key, before, after)


async def test_without_the_provider_limit_the_plan_says_so(
    tmp_path: Path,
) -> None:
    options = EngineOptions(request_admission=no_provider_limit)
    result = await DatasetBuilder(config(), options=options).build(
        40, run_dir=tmp_path / "off", name="off"
    )
    assert result.summary.status == "complete"
    plan = result.capacity_plan
    assert plan["configured"]["request_provider_limits"]["value"] is False
    assert plan["runtime_snapshot"]["provider_limits"] == {}
    assert provider_limit_events(tmp_path / "off") == []
