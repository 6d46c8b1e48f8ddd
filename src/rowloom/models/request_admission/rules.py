"""The limit rule of each resource, by name, as `RequestAdmissionConfig` chooses it.

| name | rule | for |
|---|---|---|
| `aimd` (default) | `SettlingAimdLimitRule` | providers that answer 429 when over their limit |
| `latency` | `LatencyLimitRule` | servers that queue instead (vLLM, llama.cpp); 429/503 still cut |
| `aimd_v1` | `AimdLimitRule` | the V1 reference behaviour, kept for before/after benchmarks |
"""

from __future__ import annotations

from typing import Final

from rowloom.models.request_admission.config import LimitRuleName, RequestAdmissionConfig
from rowloom.models.request_admission.latency_limit import LatencyLimitRule
from rowloom.models.request_admission.limits import AimdLimitRule, RequestLimitRule
from rowloom.models.request_admission.resources import RequestResourceKey
from rowloom.models.request_admission.settling_aimd import SettlingAimdLimitRule

LIMIT_RULE_NAMES: Final[tuple[LimitRuleName, ...]] = ("aimd", "latency", "aimd_v1")


def configured_rule_factory(
    resource: RequestResourceKey,
    initial_limit: int,
    effective_max: int,
    config: RequestAdmissionConfig,
) -> RequestLimitRule:
    """The rule `config.limit_rule(resource)` names, with the config's AIMD parameters."""
    name = config.limit_rule(resource)
    if name == "latency":
        return LatencyLimitRule(
            initial_limit, effective_max, decrease_factor=config.multiplicative_decrease_factor
        )
    rule = SettlingAimdLimitRule if name == "aimd" else AimdLimitRule
    return rule(
        initial_limit,
        effective_max,
        decrease_factor=config.multiplicative_decrease_factor,
        increase_step=config.additive_increase_step,
        successes_until_increase=config.successes_until_increase,
    )
