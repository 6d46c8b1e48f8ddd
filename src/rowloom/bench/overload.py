"""The scenarios where providers push back: AIMD convergence against a 429-ing provider,
the ramp of two models sharing a provider that accepts half their caps (issue 17), queueing
overload, and cross-provider cooldown (one provider's 429s must not slow another).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rowloom.bench.events import digest_run
from rowloom.bench.providers import ProviderScript
from rowloom.bench.scenario import (
    DEFAULT_HEADLINE,
    RUN_KNOBS,
    DatasetScenario,
    IterationContext,
    IterationResult,
    Knob,
    KnobValue,
    Target,
    knob_float,
    knob_int,
    knob_str,
)
from rowloom.bench.workloads import (
    CPU_OVER_HTTP,
    PROVIDER_KNOBS,
    E2EDualModel,
    dataset,
    llm,
    model,
    one_provider,
    topic_sampler,
    writer_dataset,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.config.models import ModelProvider
from rowloom.observability.view import CorrelatedRuntimeView


class AimdConvergence(DatasetScenario):
    id = "aimd_convergence"
    shape = (
        "one model configured at 2C against a provider with capacity C that answers 429 beyond it"
    )
    shows = "time to settle, 429 fraction after settling, goodput ratio"
    default_records = 2400
    knobs = (
        *PROVIDER_KNOBS,
        Knob("configured_max", 64, "max_parallel_requests (2C)"),
        Knob("retry_after_s", 1.0, "Retry-After sent with a 429", "float"),
        *RUN_KNOBS,
    )
    targets = (
        Target(
            "goodput_ratio",
            ">=",
            0.90,
            label="aimd_convergence goodput ratio (capacity 32, "
            "configured max 64, Retry-After 1 s)",
        ),
        Target(
            "rate_limited_fraction_after_settling",
            "<=",
            0.01,
            label="rate_limited_fraction after settling",
        ),
        CPU_OVER_HTTP,
    )
    compare_metrics = (
        "rate_limited_fraction",
        "rate_limited_requests",
        "time_to_settle_seconds",
        "settled_limit",
    )

    def provider_scripts(self, knobs: Mapping[str, KnobValue], seed: int) -> list[ProviderScript]:
        return [one_provider(knobs, seed, retry_after_s=knob_float(knobs, "retry_after_s"))]

    def build_config(
        self, knobs: Mapping[str, KnobValue], providers: Sequence[ModelProvider], seed: int
    ) -> DatasetConfig:
        columns = [topic_sampler(), llm("text", "writer", "A line on {{ topic }}.")]
        return writer_dataset(self, knobs, providers, columns, seed, cap_knob="configured_max")


class Ramp(E2EDualModel):
    """`e2e_dual_model` with caps 32 + 32 on one provider of 32 that answers 429 with
    Retry-After 1 s beyond it: what the start of a run costs when the configured caps exceed
    what the provider accepts (the whole run counts, first cascade included)."""

    id = "ramp"
    shape = (
        "generate -> judge on two models of 32 sharing one provider of 32 (200 ms) that "
        "answers 429 with Retry-After beyond it"
    )
    shows = "goodput ratio and 429 fraction over the whole run, start included"
    knobs = (
        *(
            replace(k, default=32) if k.name in ("writer_cap", "judge_cap") else k
            for k in E2EDualModel.knobs
        ),
        Knob("retry_after_s", 1.0, "Retry-After sent with a 429", "float"),
    )
    targets = (
        Target(
            "goodput_ratio",
            ">=",
            0.93,
            label="ramp goodput ratio, whole run (caps 32 + 32, capacity 32, Retry-After 1 s)",
        ),
        Target(
            "rate_limited_fraction",
            "<=",
            0.01,
            label="ramp rate_limited_fraction, whole run",
        ),
        CPU_OVER_HTTP,
    )
    compare_metrics = (
        "rate_limited_fraction",
        "rate_limited_requests",
        "goodput_ratio",
        "engine_wall_seconds",
    )

    def provider_scripts(self, knobs: Mapping[str, KnobValue], seed: int) -> list[ProviderScript]:
        retry_after = knob_float(knobs, "retry_after_s")
        scripts = super().provider_scripts(knobs, seed)
        return [replace(s, retry_after_s=retry_after) for s in scripts]


class QueueingOverload(DatasetScenario):
    id = "queueing_overload"
    shape = "a provider that queues instead of answering 429 (like vLLM or llama.cpp)"
    shows = "settled limit vs the provider's slots, p95 latency vs unloaded"
    default_records = 800
    knobs = (
        Knob("slots", 8, "requests the server serves at once (the rest queue)"),
        Knob("latency_ms", 100.0, "service time per request (fixed)", "float"),
        Knob("configured_max", 64, "max_parallel_requests of the model"),
        Knob(
            "limit_rule", "latency", "the model's adaptive limit rule", "str", ("aimd", "latency")
        ),
        *RUN_KNOBS,
    )
    targets = (
        Target(
            "settled_limit_over_slots",
            "between",
            1.0,
            2.0,
            label="settled limit within [slots, 2 x slots]",
        ),
        Target(
            "p95_latency_over_unloaded*",
            "<=",
            2.0,
            label="p95 latency <= 2x unloaded (whole run; and requests started in its second half)",
        ),
        CPU_OVER_HTTP,
    )

    headline = (
        "settled_limit_over_slots",
        "p95_latency_over_unloaded*",
        "request_latency_p95_second_half_ms",
        *DEFAULT_HEADLINE,
    )
    compare_metrics = (
        "settled_limit",
        "request_latency_p95_ms",
        "successful_requests_per_second",
        "engine_wall_seconds",
    )

    def provider_scripts(self, knobs: Mapping[str, KnobValue], seed: int) -> list[ProviderScript]:
        return [
            ProviderScript(
                "queued",
                knob_int(knobs, "slots"),
                knob_float(knobs, "latency_ms"),
                overload="queue",
                seed=seed,
            )
        ]

    def build_config(
        self, knobs: Mapping[str, KnobValue], providers: Sequence[ModelProvider], seed: int
    ) -> DatasetConfig:
        columns = [topic_sampler(), llm("text", "writer", "A line on {{ topic }}.")]
        return writer_dataset(
            self,
            knobs,
            providers,
            columns,
            seed,
            provider="queued",
            cap_knob="configured_max",
            limit_rule=knob_str(knobs, "limit_rule"),
        )

    def extra_metrics(
        self,
        knobs: Mapping[str, KnobValue],
        metrics: dict[str, float],
        details: dict[str, Any],
        view: CorrelatedRuntimeView,
    ) -> None:
        if "settled_limit" in metrics:
            metrics["settled_limit_over_slots"] = metrics["settled_limit"] / knob_int(
                knobs, "slots"
            )
        unloaded = knob_float(knobs, "latency_ms")
        if "request_latency_p95_ms" in metrics:
            metrics["p95_latency_over_unloaded"] = metrics["request_latency_p95_ms"] / unloaded
        if "request_latency_p95_second_half_ms" in metrics:
            metrics["p95_latency_over_unloaded_second_half"] = (
                metrics["request_latency_p95_second_half_ms"] / unloaded
            )
        details["unloaded_latency_note"] = (
            "unloaded latency = the provider's fixed service time (latency_ms); measured "
            "latency is model_request_started -> model_request_completed"
        )


class CrossProviderCooldown(DatasetScenario):
    id = "cross_provider_cooldown"
    shape = (
        "provider A over-subscribed (429 + Retry-After 2 s, cooling down) while provider B "
        "has ready work; B alone is run first in the same iteration"
    )
    shows = "B's throughput vs B alone"
    default_records = 300
    knobs = (
        Knob("a_capacity", 8, "provider A slots"),
        Knob("a_cap", 32, "max_parallel_requests of A's model (over-subscribed)"),
        Knob("a_retry_after_s", 2.0, "A's Retry-After", "float"),
        Knob("a_columns", 1, "LLM columns on A's model (each its own fairness group)"),
        Knob("b_capacity", 16, "provider B slots"),
        Knob("b_cap", 16, "max_parallel_requests of B's model"),
        Knob("latency_ms", 200.0, "latency of both providers", "float"),
        *RUN_KNOBS,
    )
    targets = (
        Target("b_throughput_ratio", ">=", 0.90, label="B keeps >= 0.90 of its solo throughput"),
    )

    headline = ("b_solo_rps", "b_mixed_rps", "b_throughput_ratio", *DEFAULT_HEADLINE)
    compare_metrics = ("b_solo_rps", "b_mixed_rps", "rate_limited_requests", "engine_wall_seconds")

    def provider_scripts(self, knobs: Mapping[str, KnobValue], seed: int) -> list[ProviderScript]:
        latency = knob_float(knobs, "latency_ms")
        b = ProviderScript("prov_b", knob_int(knobs, "b_capacity"), latency, seed=seed)
        if knobs.get("solo"):
            return [b]
        a = ProviderScript(
            "prov_a",
            knob_int(knobs, "a_capacity"),
            latency,
            retry_after_s=knob_float(knobs, "a_retry_after_s"),
            seed=seed,
        )
        return [a, b]

    def build_config(
        self, knobs: Mapping[str, KnobValue], providers: Sequence[ModelProvider], seed: int
    ) -> DatasetConfig:
        models = [model("b_model", "prov_b", knob_int(knobs, "b_cap"))]
        columns = [topic_sampler(), llm("b_text", "b_model", "B's line on {{ topic }}.")]
        if not knobs.get("solo"):
            models.append(model("a_model", "prov_a", knob_int(knobs, "a_cap")))
            columns.append(llm("a_text", "a_model", "A's line on {{ topic }}."))
            columns += [
                llm(f"a_text{i}", "a_model", f"A's line {i} on {{{{ topic }}}}.")
                for i in range(1, knob_int(knobs, "a_columns"))
            ]
        return dataset(providers, models, columns, seed, self.run_settings(knobs))

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        solo_ctx = IterationContext(
            ctx.records,
            ctx.seed,
            {**ctx.knobs, "solo": True},
            ctx.http,
            ctx.workdir,
            ctx.index,
            ctx.warmup,
            ctx.timeline_cap,
        )
        solo, _, _ = await self.run_once(solo_ctx, f"solo-{ctx.index}")
        solo_rps = await asyncio.to_thread(_provider_rps, solo.run_dir, "prov_b")
        await asyncio.to_thread(shutil.rmtree, solo.run_dir, True)
        mixed, config, _ = await self.run_once(ctx, f"iter-{ctx.index}")
        mixed_rps = await asyncio.to_thread(_provider_rps, mixed.run_dir, "prov_b")
        result = await asyncio.to_thread(self.analyse, ctx, mixed, config)
        result.metrics["b_solo_rps"] = solo_rps
        result.metrics["b_mixed_rps"] = mixed_rps
        if solo_rps > 0:
            result.metrics["b_throughput_ratio"] = mixed_rps / solo_rps
        result.leaks.extend(f"solo run: {leak}" for leak in solo.leaks())
        result.details["solo_run"] = {
            "status": solo.status,
            "leaks": solo.leaks(),
            "wall_time_seconds": solo.measurement.wall_time_seconds,
        }
        return result


def _provider_rps(run_dir: Path, provider: str) -> float:
    """Successful requests per second of one provider over its active span."""
    attempts = [
        a
        for a in digest_run(run_dir, timeline_cap=0).attempts
        if a.resource.startswith(provider + "/")
    ]
    ok = [a for a in attempts if a.outcome == "success"]
    if not ok:
        return 0.0
    span = max(a.completed_at for a in attempts) - min(a.started_at for a in attempts)
    return len(ok) / span if span > 0 else 0.0
