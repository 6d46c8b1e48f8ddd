"""Request-admission baselines for before/after benchmarks, built by the bench, not the engine.

The engine has one behaviour (what users get); a benchmark compares it with older ones on the
same commit by adjusting the run's `RequestAdmissionConfig` before the controller is built
(`EngineOptions.request_admission`). The profiles (knob `admission_profile`, or
`ROWLOOM_REQUEST_ADMISSION_PROFILE` for `rowloom bench compare --baseline-env`):

- `default`: unchanged;
- `v1`: the reference V1 behaviour: every `aimd` rule becomes the V1 rule `aimd_v1`, a cooldown
  blocks every admission, no pacing on rate-limit headers, no learned provider limit
  (explicit `latency` rules stay);
- `no_header_pacing`: the default without pacing on rate-limit headers;
- `no_provider_limit`: the default without the learned limit per shared provider.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal, TypeAlias, get_args

from rowloom.models.request_admission.config import LimitRuleName, RequestAdmissionConfig

AdmissionProfile: TypeAlias = Literal["default", "v1", "no_header_pacing", "no_provider_limit"]
PROFILES: tuple[AdmissionProfile, ...] = get_args(AdmissionProfile)

AdmissionAdjustment: TypeAlias = Callable[[RequestAdmissionConfig], RequestAdmissionConfig]


def v1(config: RequestAdmissionConfig) -> RequestAdmissionConfig:
    """The reference V1 request admission (see the module docstring)."""

    def old(name: LimitRuleName) -> LimitRuleName:
        return "aimd_v1" if name == "aimd" else name

    return replace(
        config,
        limit_rules={r: old(name) for r, name in config.limit_rules.items()},
        default_limit_rule=old(config.default_limit_rule),
        cooldown_mode="block_all",
        header_pacing=False,
        provider_limits=False,
    )


def no_header_pacing(config: RequestAdmissionConfig) -> RequestAdmissionConfig:
    return replace(config, header_pacing=False)


def no_provider_limit(config: RequestAdmissionConfig) -> RequestAdmissionConfig:
    return replace(config, provider_limits=False)


_ADJUSTMENTS: dict[AdmissionProfile, AdmissionAdjustment | None] = {
    "default": None,
    "v1": v1,
    "no_header_pacing": no_header_pacing,
    "no_provider_limit": no_provider_limit,
}


def admission_adjustment(profile: AdmissionProfile) -> AdmissionAdjustment | None:
    """The adjustment `profile` makes to a run's request-admission config (None: none)."""
    try:
        return _ADJUSTMENTS[profile]
    except KeyError:
        raise ValueError(f"unknown request admission profile {profile!r}") from None
