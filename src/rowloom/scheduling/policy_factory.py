"""The one place a task admission policy config becomes a policy object.

The policies (`task_policies`, `provider_aware`) never import this module, so building a
provider-aware policy around a fairness policy makes no import cycle.
"""

from __future__ import annotations

from rowloom.scheduling.provider_aware import (
    ProviderAwareTaskAdmissionPolicy,
    RequestPressureReader,
)
from rowloom.scheduling.task_policies import (
    ProviderAwarePolicyConfig,
    TaskAdmissionPolicy,
    TaskAdmissionPolicyConfig,
    build_fairness_policy,
)


def build_policy(
    config: TaskAdmissionPolicyConfig, pressure: RequestPressureReader | None = None
) -> TaskAdmissionPolicy:
    """The policy object for a policy config.

    `pressure` is read only by the provider-aware policy; without it that policy never
    withholds (it behaves as its base).
    """
    if isinstance(config, ProviderAwarePolicyConfig):
        return ProviderAwareTaskAdmissionPolicy(
            config, pressure, build_fairness_policy(config.base)
        )
    return build_fairness_policy(config)
