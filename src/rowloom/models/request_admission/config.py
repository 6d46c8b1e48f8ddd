"""`RequestAdmissionConfig`: the engine-internal request-admission configuration.

Users tune only the AIMD knobs of `rowloom.config.run.RequestAdmissionTuningConfig` and choose
each model's limit rule (`ModelConfig.limit_rule`); static caps come from the model catalog;
initial limits, clamps, the queue-wait default, the cooldown mode and header pacing are
engine-internal. Benchmarks adjust them to compare with older behaviour (`rowloom.bench.baselines`:
the V1 profile, or the default without header pacing or without the provider limit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias, get_args

from rowloom.config.run import RequestAdmissionTuningConfig
from rowloom.models.request_admission.resolver import RequestResourceResolver
from rowloom.models.request_admission.resources import RequestResourceKey
from rowloom.models.resources import ModelResourceCatalog, ProviderModelKey

_EMPTY: Mapping[Any, Any] = MappingProxyType({})

LimitRuleName: TypeAlias = Literal["aimd", "latency", "aimd_v1"]
"""`aimd`: AIMD that settles below the last 429 ceiling (default); `latency`: gradient-style
latency rule for servers that queue; `aimd_v1`: the reference V1 AIMD."""
CooldownMode: TypeAlias = Literal["reduced_limit", "block_all"]
"""What a rate-limit cooldown holds back: `reduced_limit` (default) admits up to the cut limit
and blocks everything only when a lease granted during the cooldown is rate limited again;
`block_all` (V1) blocks every new admission until the cooldown ends."""
_RULE_NAMES: Final = frozenset(get_args(LimitRuleName))


@dataclass(frozen=True, slots=True)
class RequestAdmissionConfig:
    """Static caps per endpoint, per-resource limits, and the AIMD parameters.

    Guarantees, for every resource whose endpoint has a static cap:
    `effective_max(r) = min(static_cap, max_limit_clamp)` and `1 <= initial_limit(r) <=
    effective_max(r)` (an absent initial limit starts at the effective max). Resources need not
    be listed in `resources` to be admitted: any domain of an endpoint with a static cap is
    registered on first use; `resources` are registered up front. `limit_rule(r)` names the
    resource's limit rule (`limit_rules`, else `default_limit_rule`). With `provider_limits`, a
    provider serving two or more endpoints also gets a learned limit on its total in flight
    (see `ledger.ProviderRecord`), which starts at its largest endpoint cap and slow-starts
    toward the sum of its caps (`provider_slow_start_successes`; 0 starts at the sum).
    """

    static_caps: Mapping[ProviderModelKey, int]
    resources: tuple[RequestResourceKey, ...] = ()
    initial_limits: Mapping[RequestResourceKey, int] = field(default_factory=lambda: _EMPTY)
    max_limit_clamps: Mapping[RequestResourceKey, int] = field(default_factory=lambda: _EMPTY)
    aliases: Mapping[ProviderModelKey, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)
    multiplicative_decrease_factor: float = 0.75
    additive_increase_step: int = 1
    successes_until_increase: int = 25
    cooldown_seconds: float = 2.0
    startup_ramp_seconds: float = 0.0
    provider_slow_start_successes: int = 2
    default_queue_wait_timeout_seconds: float | None = None
    limit_rules: Mapping[RequestResourceKey, LimitRuleName] = field(default_factory=lambda: _EMPTY)
    default_limit_rule: LimitRuleName = "aimd"
    cooldown_mode: CooldownMode = "reduced_limit"
    header_pacing: bool = True
    provider_limits: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.multiplicative_decrease_factor < 1:
            raise ValueError("multiplicative_decrease_factor must be in (0, 1)")
        if self.additive_increase_step < 1:
            raise ValueError("additive_increase_step must be >= 1")
        if self.successes_until_increase < 1:
            raise ValueError("successes_until_increase must be >= 1")
        if self.provider_slow_start_successes < 0:
            raise ValueError("provider_slow_start_successes must be >= 0")
        for name in ("cooldown_seconds", "startup_ramp_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0")
        timeout = self.default_queue_wait_timeout_seconds
        if timeout is not None and (math.isnan(timeout) or timeout < 0):
            raise ValueError("default_queue_wait_timeout_seconds must be >= 0 or None")
        for kind, mapping in (
            ("static cap", self.static_caps),
            ("initial limit", self.initial_limits),
            ("max limit clamp", self.max_limit_clamps),
        ):
            for key, value in mapping.items():
                if value < 1:
                    raise ValueError(f"{kind} of {key.as_key_str()} must be >= 1, got {value}")
        for name in (self.default_limit_rule, *self.limit_rules.values()):
            if name not in _RULE_NAMES:
                raise ValueError(f"unknown limit rule {name!r}; known: {sorted(_RULE_NAMES)}")
        if self.cooldown_mode not in get_args(CooldownMode):
            raise ValueError(f"unknown cooldown mode {self.cooldown_mode!r}")
        for resource in (*self.resources, *self.initial_limits, *self.max_limit_clamps):
            if resource.provider_model not in self.static_caps:
                raise ValueError(f"{resource.as_key_str()} has no provider/model static cap")
        object.__setattr__(self, "static_caps", MappingProxyType(dict(self.static_caps)))
        object.__setattr__(self, "resources", tuple(sorted(set(self.resources))))
        object.__setattr__(self, "initial_limits", MappingProxyType(dict(self.initial_limits)))
        object.__setattr__(self, "max_limit_clamps", MappingProxyType(dict(self.max_limit_clamps)))
        object.__setattr__(self, "limit_rules", MappingProxyType(dict(self.limit_rules)))
        object.__setattr__(
            self, "aliases", MappingProxyType({k: tuple(v) for k, v in self.aliases.items()})
        )

    @classmethod
    def from_catalog(
        cls,
        catalog: ModelResourceCatalog,
        tuning: RequestAdmissionTuningConfig | None = None,
        *,
        initial_limits: Mapping[RequestResourceKey, int] | None = None,
        max_limit_clamps: Mapping[RequestResourceKey, int] | None = None,
        default_queue_wait_timeout_seconds: float | None = None,
    ) -> RequestAdmissionConfig:
        """The config of one run: caps, resources and limit rules from the catalog, AIMD knobs
        from `tuning`.

        `tuning=None` keeps the public defaults (0.75, 1, 25, 2 s, 0 s) and a provider slow
        start of 2 successes per step. A resource whose
        aliases disagree on `limit_rule` gets `latency` (the more cautious rule, as the static
        cap is the minimum over aliases).
        """
        resolver = RequestResourceResolver(catalog)
        caps = catalog.static_caps()
        rules: dict[RequestResourceKey, LimitRuleName] = {}
        for alias in catalog.aliases():
            resource = resolver.resolve(alias)
            chosen: LimitRuleName = catalog.resolve(alias).model.limit_rule
            if rules.get(resource) != "latency":
                rules[resource] = chosen
        base = cls(
            static_caps={k: c.cap for k, c in caps.items()},
            resources=resolver.resources(),
            initial_limits=initial_limits or _EMPTY,
            max_limit_clamps=max_limit_clamps or _EMPTY,
            aliases={k: c.aliases for k, c in caps.items()},
            default_queue_wait_timeout_seconds=default_queue_wait_timeout_seconds,
            limit_rules=rules,
        )
        return base.with_tuning(tuning)

    def with_tuning(self, tuning: RequestAdmissionTuningConfig | None) -> RequestAdmissionConfig:
        """This config with the public AIMD knobs of `tuning` (None: unchanged)."""
        if tuning is None:
            return self
        return replace(
            self,
            multiplicative_decrease_factor=tuning.multiplicative_decrease_factor,
            additive_increase_step=tuning.additive_increase_step,
            successes_until_increase=tuning.successes_until_increase,
            cooldown_seconds=tuning.cooldown_seconds,
            startup_ramp_seconds=tuning.startup_ramp_seconds,
            provider_slow_start_successes=tuning.provider_slow_start_successes,
        )

    def static_cap(self, provider_model: ProviderModelKey) -> int | None:
        """The endpoint's static cap, or None when the endpoint is unknown."""
        return self.static_caps.get(provider_model)

    def max_limit_clamp(self, resource: RequestResourceKey) -> int | None:
        """The configured clamp on the resource's adaptive limit, if any."""
        return self.max_limit_clamps.get(resource)

    def effective_max(self, resource: RequestResourceKey) -> int | None:
        """`min(static cap, clamp)`; None when the endpoint is unknown."""
        cap = self.static_caps.get(resource.provider_model)
        if cap is None:
            return None
        clamp = self.max_limit_clamps.get(resource)
        return cap if clamp is None else min(cap, clamp)

    def limit_rule(self, resource: RequestResourceKey) -> LimitRuleName:
        """The name of the resource's limit rule."""
        return self.limit_rules.get(resource, self.default_limit_rule)

    def initial_limit(self, resource: RequestResourceKey) -> int | None:
        """The starting limit clamped to `[1, effective_max]`; None when the endpoint is unknown."""
        top = self.effective_max(resource)
        if top is None:
            return None
        return max(1, min(top, self.initial_limits.get(resource, top)))

    def as_json(self) -> dict[str, Any]:
        """The configured values as JSON (the capacity plan's request-admission section)."""
        return {
            "resources": [r.as_key_str() for r in self.resources],
            "static_caps": {k.as_key_str(): v for k, v in sorted(self.static_caps.items())},
            "initial_limits": {k.as_key_str(): v for k, v in sorted(self.initial_limits.items())},
            "max_limit_clamps": {
                k.as_key_str(): v for k, v in sorted(self.max_limit_clamps.items())
            },
            "cooldown_seconds": self.cooldown_seconds,
            "multiplicative_decrease_factor": self.multiplicative_decrease_factor,
            "additive_increase_step": self.additive_increase_step,
            "successes_until_increase": self.successes_until_increase,
            "startup_ramp_seconds": self.startup_ramp_seconds,
            "provider_slow_start_successes": self.provider_slow_start_successes,
            "default_queue_wait_timeout_seconds": self.default_queue_wait_timeout_seconds,
            "limit_rules": {k.as_key_str(): v for k, v in sorted(self.limit_rules.items())},
            "default_limit_rule": self.default_limit_rule,
            "cooldown_mode": self.cooldown_mode,
            "header_pacing": self.header_pacing,
            "provider_limits": self.provider_limits,
        }
