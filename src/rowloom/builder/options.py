"""`EngineOptions`: the engine-internal choices a benchmark or a test may make for one run.

They are not public configuration and no environment variable reaches them inside the engine:
the edges (the bench harness) read their own switches and hand the builder an `EngineOptions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from rowloom.models.request_admission.config import RequestAdmissionConfig

TaskPolicyName: TypeAlias = Literal["provider_aware", "bounded_borrow"]
"""`provider_aware` (default): provider-aware admission over bounded borrow; `bounded_borrow`:
the reference task policy alone."""


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Engine-internal choices for one run; the defaults are what users get."""

    task_policy: TaskPolicyName = "provider_aware"
    request_admission: Callable[[RequestAdmissionConfig], RequestAdmissionConfig] | None = None
    """A benchmark's adjustment of the run's request-admission config before the controller
    is built (`rowloom.bench.baselines`: the V1 profile and friends); None: as users get it."""

    @property
    def task_policy_overridden(self) -> bool:
        """True when the task policy is not the default (the capacity plan names the source)."""
        return self.task_policy != "provider_aware"
