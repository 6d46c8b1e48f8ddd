"""AsyncCapacityPlan: the spec's schema, value sources, and what the run really reached."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rowloom.capacity import (
    AsyncCapacityPlan,
    SchedulerMaxima,
    build_capacity_plan,
    run_config_sources,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RunConfig
from rowloom.interface.designer import Designer
from rowloom.models.request_admission import RequestResourceKey

SPEC_CONFIGURED = {
    "buffer_size",
    "row_group_admission",
    "submission_capacity",
    "task_resource_limits",
    "request_resources",
    "provider_model_static_caps",
    "request_domain_initial_limits",
    "request_admission_config",
    "transport_pool_limits",
}
SPEC_RUNTIME = {
    "request_domain_current_limits",
    "request_domain_effective_max",
    "request_domain_blocked_until",
    "provider_model_aggregate_in_flight",
}
SPEC_OBSERVED = {
    "row_groups_in_flight",
    "queued_tasks_by_group",
    "task_leases_by_resource",
    "request_waiters_by_resource",
    "request_in_flight_by_resource",
    "provider_model_aggregate_in_flight",
    "request_domain_current_limits",
    "transport_pool_utilization",
}
SPEC_RA_CONFIG = {
    "resources",
    "initial_limits",
    "max_limit_clamps",
    "cooldown_seconds",
    "multiplicative_decrease_factor",
    "additive_increase_step",
    "successes_until_increase",
    "startup_ramp_seconds",
    "provider_slow_start_successes",
    "default_queue_wait_timeout_seconds",
}
SOURCES = {
    "default",
    "run_config",
    "dataset_builder",
    "model_metadata",
    "engine_internal_config",
    "adapter_config",
    "environment",
    "runtime_snapshot",
    "benchmark_override",
}


def config(run: dict[str, Any] | None = None) -> DatasetConfig:
    data: dict[str, Any] = {
        "providers": [
            {
                "name": "sim",
                "provider_type": "simulated",
                "simulation": {"capacity": 64, "latency_ms": 2, "seed": 1},
            }
        ],
        "models": [
            {"alias": "writer", "model": "sim-8b", "provider": "sim", "max_parallel_requests": 8},
            {"alias": "editor", "model": "sim-8b", "provider": "sim", "max_parallel_requests": 5},
            {
                "alias": "embedder",
                "model": "sim-embed",
                "provider": "sim",
                "generation_kind": "embedding",
                "max_parallel_requests": 4,
            },
        ],
        "columns": [
            {
                "name": "topic",
                "column_type": "sampler",
                "sampler_type": "category",
                "params": {"values": ["a", "b"]},
            },
            {
                "name": "draft",
                "column_type": "llm_text",
                "model_alias": "writer",
                "prompt": "Write about {{ topic }}.",
            },
            {
                "name": "edit",
                "column_type": "llm_text",
                "model_alias": "editor",
                "prompt": "Improve: {{ draft }}",
            },
            {
                "name": "vec",
                "column_type": "embedding",
                "model_alias": "embedder",
                "target_column": "draft",
            },
        ],
    }
    if run is not None:
        data["run"] = run
    return DatasetConfig.from_dict(data)


def _values(node: Any) -> list[dict[str, Any]]:
    """Every CapacityValue-shaped object in a JSON tree."""
    if isinstance(node, dict):
        if {"value", "source", "fallback_from", "missing_reason"} == set(node):
            return [node]
        return [v for child in node.values() for v in _values(child)]
    if isinstance(node, list):
        return [v for child in node for v in _values(child)]
    return []


def test_a_run_writes_the_plan_with_the_spec_schema(tmp_path: Path) -> None:
    cfg = config({"buffer_size": 10, "request_admission": {"cooldown_seconds": 0.5}})
    result = Designer(tmp_path).create(cfg, 30, "plan")
    plan = json.loads(result.capacity_plan_path.read_text())
    assert plan == result.capacity_plan
    assert set(plan["configured"]) >= SPEC_CONFIGURED
    assert set(plan["runtime_snapshot"]) >= SPEC_RUNTIME
    assert set(plan["observed_maxima"]) == SPEC_OBSERVED
    assert set(plan["configured"]["request_admission_config"]) == SPEC_RA_CONFIG
    assert "row_groups_in_flight" not in json.dumps(plan["configured"])
    values = _values(plan)
    assert values and {v["source"] for v in values} <= SOURCES
    for v in values:
        assert v["value"] is not None or v["missing_reason"], v


def test_sources_say_where_each_value_came_from(tmp_path: Path) -> None:
    cfg = config({"buffer_size": 10, "request_admission": {"cooldown_seconds": 0.5}})
    c = Designer(tmp_path).create(cfg, 30, "plan").capacity_plan["configured"]
    assert c["buffer_size"] == _v(10, "run_config")
    assert c["row_group_admission"]["row_group_concurrency"] == _v(3, "default")
    assert c["submission_capacity"]["source"] == "engine_internal_config"
    assert c["submission_capacity"]["value"] >= 1
    assert c["task_resource_limits"]["local"]["source"] == "engine_internal_config"
    ra = c["request_admission_config"]
    assert ra["cooldown_seconds"] == _v(0.5, "run_config")
    assert ra["multiplicative_decrease_factor"] == _v(0.75, "default")
    assert ra["successes_until_increase"] == _v(25, "default")
    # two aliases on one endpoint: the minimum cap, every alias and raw cap recorded
    assert c["provider_model_static_caps"]["sim/sim-8b"] == {
        "cap": 5,
        "aliases": ["editor", "writer"],
        "raw_caps": {"editor": 5, "writer": 8},
        "merge_rule": "min_same_endpoint",
    }
    assert c["request_resources"] == ["sim/sim-8b/chat", "sim/sim-embed/embedding"]
    assert c["request_domain_initial_limits"]["sim/sim-8b/chat"] == _v(5, "model_metadata")
    assert c["request_limit_rules"]["sim/sim-8b/chat"]["value"].startswith("aimd")
    pool = c["transport_pool_limits"]["sim"]
    assert pool["value"] is None and "no transport pool" in pool["missing_reason"]


def test_observed_maxima_stay_within_the_configured_limits(tmp_path: Path) -> None:
    result = Designer(tmp_path).create(config({"buffer_size": 10}), 40, "plan")
    plan = result.capacity_plan
    om, c = plan["observed_maxima"], plan["configured"]
    assert 1 <= om["row_groups_in_flight"] <= 3
    assert 1 <= om["task_leases_by_resource"]["submission"] <= c["submission_capacity"]["value"]
    assert om["request_in_flight_by_resource"]["sim/sim-8b/chat"] <= 5
    assert om["provider_model_aggregate_in_flight"]["sim/sim-8b"] <= 5
    assert om["request_domain_current_limits"]["sim/sim-8b/chat"] == 5
    assert sum(om["queued_tasks_by_group"].values()) > 0
    rt = plan["runtime_snapshot"]
    assert rt["provider_model_aggregate_in_flight"] == {"sim/sim-8b": 0, "sim/sim-embed": 0}
    assert rt["request_domain_current_limits"]["sim/sim-embed/embedding"] <= 4


def test_preview_and_sequential_runs_carry_a_plan(tmp_path: Path) -> None:
    preview = Designer(tmp_path).preview(config(), 3)
    buffer = preview.capacity_plan["configured"]["buffer_size"]
    # no buffer_size in the config: the builder sizes row groups to the run
    assert buffer["source"] == "dataset_builder" and buffer["value"] >= 3
    seq = Designer(tmp_path, engine="sequential").create(config(), 5, "seq").capacity_plan
    assert seq["engine"] == "sequential"
    rg = seq["configured"]["row_group_admission"]["row_group_concurrency"]
    assert rg["value"] == 1 and rg["fallback_from"] == "default" and rg["missing_reason"]
    sub = seq["configured"]["submission_capacity"]
    assert sub["value"] is None and "sequential" in sub["missing_reason"]
    assert seq["observed_maxima"]["row_groups_in_flight"] is None


@dataclass(frozen=True)
class _Pool:
    max_connections: int | None
    max_keepalive_connections: int | None
    kind: str = "httpx"
    extra: Mapping[str, Any] = field(default_factory=dict)


def test_the_pure_builder_reads_pools_rules_and_missing_controllers() -> None:
    cfg = DatasetConfig.from_dict(
        {
            "providers": [
                {"name": "local", "provider_type": "openai", "endpoint": "http://127.0.0.1:9/v1"}
            ],
            "models": [
                {
                    "alias": "w",
                    "model": "m",
                    "provider": "local",
                    "max_parallel_requests": 4,
                    "limit_rule": "latency",
                }
            ],
            "columns": [
                {"name": "t", "column_type": "llm_text", "model_alias": "w", "prompt": "hi"}
            ],
        }
    )
    plan = build_capacity_plan(
        config=cfg,
        run_config=RunConfig(),
        transport_pools={"local": _Pool(16, 16)},
        scheduler=SchedulerMaxima(2, {"g": 5}),
    )
    assert isinstance(plan, AsyncCapacityPlan)
    j = plan.as_json()
    json.dumps(j)
    assert j["configured"]["transport_pool_limits"]["local"] == _v(
        {"kind": "httpx", "max_connections": 16, "max_keepalive_connections": 16},
        "adapter_config",
    )
    assert j["configured"]["submission_capacity"]["missing_reason"]
    assert j["configured"]["request_admission_config"] is None
    assert j["runtime_snapshot"]["missing_reason"]
    assert j["observed_maxima"]["row_groups_in_flight"] == 2
    assert j["observed_maxima"]["transport_pool_utilization"]["local"]["value"] == 0.0

    from rowloom.models.request_admission import RequestAdmissionConfig
    from rowloom.models.resources import ModelResourceCatalog

    catalog = ModelResourceCatalog(cfg.models, cfg.providers)
    ra = RequestAdmissionConfig.from_catalog(catalog)
    view = _capacity_view(ra)
    plan = build_capacity_plan(
        config=cfg,
        run_config=RunConfig(),
        request_admission=view,
        limit_rules={RequestResourceKey.of("local", "m", "chat"): "aimd"},
    )
    rule = plan.as_json()["configured"]["request_limit_rules"]["local/m/chat"]
    assert rule["value"] == "aimd" and rule["fallback_from"] == "model_metadata"
    assert "latency" in rule["missing_reason"]


def test_run_config_sources_follow_explicitly_set_fields() -> None:
    sources = run_config_sources(RunConfig(buffer_size=10))
    assert sources["buffer_size"] == "run_config"
    assert sources["max_concurrent_row_groups"] == "default"
    plan = build_capacity_plan(
        config=config(),
        run_config=RunConfig(buffer_size=10),
        sources={"buffer_size": "benchmark_override"},
    )
    assert plan.configured.buffer_size.source == "benchmark_override"


def _capacity_view(ra: Any) -> Any:
    from rowloom.models.request_admission import AdaptiveRequestAdmissionController

    async def make() -> Any:
        return AdaptiveRequestAdmissionController(ra).capacity_view()

    return asyncio.run(make())


def _v(value: Any, source: str) -> dict[str, Any]:
    return {"value": value, "source": source, "fallback_from": None, "missing_reason": None}
