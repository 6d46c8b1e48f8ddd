"""Task-stage capacity of a run: submission slots, local slots and the task policy."""

from __future__ import annotations

from rowloom.builder.options import TaskPolicyName
from rowloom.models.resources import ModelResourceCatalog
from rowloom.scheduling import (
    LOCAL,
    BoundedBorrowPolicyConfig,
    ProviderAwarePolicyConfig,
    TaskAdmissionConfig,
    TaskSchedulingResolver,
)
from rowloom.scheduling.task_policies import TaskAdmissionPolicyConfig

LOCAL_TASK_SLOTS = 8
"""Concurrent local tasks (samplers, expressions, custom functions without models)."""


def task_admission_config(
    catalog: ModelResourceCatalog,
    resolver: TaskSchedulingResolver,
    policy: TaskPolicyName = "provider_aware",
) -> TaskAdmissionConfig:
    """Task-stage capacity for a run (engine-internal).

    Submission slots are twice the summed static caps of the endpoints the run uses, plus the
    local slots, so request admission (not task admission) is what limits model traffic, while
    the bounded-borrow policy keeps one column from holding every slot and the provider-aware
    policy keeps a cooled-down provider's tasks from holding slots other providers could use
    (see `task_policy_config`).
    """
    endpoints = {
        r.group.key.identity[1:3]
        for r in resolver.resolutions().values()
        if r.group.key.kind == "model"
    }
    model_slots = sum(
        cap.cap
        for key, cap in catalog.static_caps().items()
        if (key.provider_name, key.model_id) in endpoints
    )
    custom = sum(
        r.group.weight
        for r in resolver.resolutions().values()
        if r.group.key.kind == "custom_model"
    )
    return TaskAdmissionConfig(
        submission_capacity=2 * (model_slots + custom) + LOCAL_TASK_SLOTS,
        resource_limits={LOCAL: LOCAL_TASK_SLOTS},
        policy=task_policy_config(policy),
    )


def task_policy_config(name: TaskPolicyName = "provider_aware") -> TaskAdmissionPolicyConfig:
    """The policy `name` selects: provider-aware over bounded borrow, or bounded borrow alone."""
    if name == "provider_aware":
        return ProviderAwarePolicyConfig(base=BoundedBorrowPolicyConfig())
    if name == "bounded_borrow":
        return BoundedBorrowPolicyConfig()
    raise ValueError(
        f"unknown task admission policy {name!r}: expected provider_aware or bounded_borrow"
    )
