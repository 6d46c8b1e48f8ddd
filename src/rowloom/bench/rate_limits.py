"""`rate_limit_headers`: pacing admissions on a provider's `x-ratelimit-*` headers.

One model against a provider limited to `rpm` requests per sliding 60 s window (far below what
its slots could serve). Every answer carries `x-ratelimit-limit-requests`,
`x-ratelimit-remaining-requests` and `x-ratelimit-reset-requests` (in process the simulated
client hands them over on `ChatResponse.rate_limit`, over `--http` the mock server sends them
and the OpenAI adapter parses them). The run needs more requests than one window allows, so the
budget runs out a few seconds in and the rest must wait for the window to slide: with header
pacing request admission holds new requests until the announced reset; without it the engine
learns the limit from 429s.

`--admission-profile` (a knob of every dataset scenario) selects the request admission
baseline for the run (`default`: pacing on; `no_header_pacing`; `v1`: the reference
behaviour; see `bench/baselines.py`); unset, `ROWLOOM_REQUEST_ADMISSION_PROFILE` decides.
The figures: the 429 count and fraction, and the wall time. An iteration lasts a little over
one window (about 62 s with the defaults) whatever the knobs, because the provider's window is
60 s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rowloom.bench.providers import ProviderScript
from rowloom.bench.scenario import (
    RUN_KNOBS,
    DatasetScenario,
    Knob,
    KnobValue,
    knob_float,
    knob_int,
)
from rowloom.bench.switches import PROFILE_ENV
from rowloom.bench.workloads import llm, topic_sampler, writer_dataset
from rowloom.config.dataset import DatasetConfig
from rowloom.config.models import ModelProvider


class RateLimitHeadersScenario(DatasetScenario):
    """An RPM-limited provider that announces its budget in headers; pacing on or off."""

    id = "rate_limit_headers"
    shape = (
        "one model against a provider limited to rpm requests per 60 s window that sends "
        "x-ratelimit-* headers; more rows than one window allows"
    )
    shows = "429 count and fraction, wall time; header pacing on vs off (--admission-profile)"
    default_records = 900
    knobs = (
        Knob("rpm", 600, "requests per 60 s window the provider accepts"),
        Knob("capacity", 64, "provider concurrency slots (not the binding limit)"),
        Knob("latency_ms", 100.0, "provider latency per request (fixed)", "float"),
        Knob("model_cap", 16, "max_parallel_requests of the model"),
        *RUN_KNOBS,
    )
    headline = (
        "rate_limited_requests",
        "rate_limited_fraction",
        "wall_time_seconds",
        "engine_wall_seconds",
        "successful_requests",
        "request_attempts",
        "request_latency_p50_ms",
        "request_latency_p95_ms",
        "task_admission_wait_p95_seconds",
        "cpu_per_request_ms",
        "leaks",
        "hidden_scheduler_resource_waiters",
        "peak_rss_bytes",
    )
    compare_metrics = ("rate_limited_requests", "rate_limited_fraction", "engine_wall_seconds")

    def provider_scripts(self, knobs: Mapping[str, KnobValue], seed: int) -> list[ProviderScript]:
        return [
            ProviderScript(
                "limited",
                knob_int(knobs, "capacity"),
                knob_float(knobs, "latency_ms"),
                rpm=knob_int(knobs, "rpm"),
                seed=seed,
            )
        ]

    def build_config(
        self, knobs: Mapping[str, KnobValue], providers: Sequence[ModelProvider], seed: int
    ) -> DatasetConfig:
        columns = [topic_sampler(), llm("text", "writer", "A line on {{ topic }}.")]
        return writer_dataset(self, knobs, providers, columns, seed, provider="limited")

    def summary_extra(self, result: Mapping[str, Any]) -> list[str]:
        knob = (result.get("inputs") or {}).get("knobs", {}).get("admission_profile")
        env = (result.get("environment") or {}).get(PROFILE_ENV)
        source = "--admission-profile" if knob else PROFILE_ENV if env else "no switch set"
        rules = ((result.get("capacity_plan") or {}).get("configured") or {}).get(
            "request_limit_rules", {}
        )
        applied = ", ".join(
            f"{k}: {v.get('value')}" for k, v in sorted(rules.items()) if isinstance(v, dict)
        )
        return [
            f"Request admission profile: {knob or env or 'default'} ({source}); limit rules "
            f"in the capacity plan: {applied or 'not recorded'}. `goodput_ratio` is not "
            "meaningful here: the provider's physical limit is rpm / 60, but a fresh window "
            "admits a whole minute's budget at once.",
        ]
