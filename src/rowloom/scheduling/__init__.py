"""Scheduler internals: readiness, fair ordering and task admission.

The runtime coordinator (`rowloom.scheduler.AsyncTaskScheduler`) drives these pieces:
`CompletionTracker.ready_frontier() -> FairTaskQueue.enqueue -> CompletionTracker.mark_enqueued`,
then `select_next -> TaskAdmissionController.try_acquire -> FairTaskQueue.commit`.
"""

from rowloom.leases import ReleaseResult
from rowloom.scheduling.admission_view import (
    GroupAdmissionFacts,
    TaskAdmissionLease,
    TaskAdmissionView,
)
from rowloom.scheduling.completion import ColumnNode, CompletionTracker
from rowloom.scheduling.policy_factory import build_policy
from rowloom.scheduling.provider_aware import (
    ProviderAwareTaskAdmissionPolicy,
    RequestPressure,
    RequestPressureReader,
)
from rowloom.scheduling.queue import (
    Eligibility,
    FairTaskQueue,
    GroupQueueFacts,
    QueueSelection,
    QueueView,
    Refusal,
)
from rowloom.scheduling.resolver import (
    ResolvedTaskScheduling,
    TaskSchedulingResolutionError,
    TaskSchedulingResolver,
)
from rowloom.scheduling.resources import (
    LOCAL,
    SUBMISSION,
    SchedulableTask,
    SchedulerResourceKey,
    SchedulerResourceRequest,
    TaskGroupKey,
    TaskGroupSpec,
    stable_task_id,
)
from rowloom.scheduling.task_admission import (
    TaskAdmissionBlockSummary,
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskAdmissionDecision,
    TaskAdmissionDenied,
)
from rowloom.scheduling.task_model import Task
from rowloom.scheduling.task_policies import (
    AdmissionFacts,
    AdvisorySkip,
    BoundedBorrowPolicyConfig,
    BoundedBorrowTaskAdmissionPolicy,
    PolicyStateDelta,
    ProviderAwarePolicyConfig,
    StrictFairPolicyConfig,
    StrictFairTaskAdmissionPolicy,
    TaskAdmissionPolicy,
    TaskAdmissionPolicyDecision,
)

__all__ = [
    "LOCAL",
    "SUBMISSION",
    "AdmissionFacts",
    "AdvisorySkip",
    "BoundedBorrowPolicyConfig",
    "BoundedBorrowTaskAdmissionPolicy",
    "ColumnNode",
    "CompletionTracker",
    "Eligibility",
    "FairTaskQueue",
    "GroupAdmissionFacts",
    "GroupQueueFacts",
    "PolicyStateDelta",
    "ProviderAwarePolicyConfig",
    "ProviderAwareTaskAdmissionPolicy",
    "QueueSelection",
    "QueueView",
    "Refusal",
    "ReleaseResult",
    "RequestPressure",
    "RequestPressureReader",
    "ResolvedTaskScheduling",
    "SchedulableTask",
    "SchedulerResourceKey",
    "SchedulerResourceRequest",
    "StrictFairPolicyConfig",
    "StrictFairTaskAdmissionPolicy",
    "Task",
    "TaskAdmissionBlockSummary",
    "TaskAdmissionConfig",
    "TaskAdmissionController",
    "TaskAdmissionDecision",
    "TaskAdmissionDenied",
    "TaskAdmissionLease",
    "TaskAdmissionPolicy",
    "TaskAdmissionPolicyDecision",
    "TaskAdmissionView",
    "TaskGroupKey",
    "TaskGroupSpec",
    "TaskSchedulingResolutionError",
    "TaskSchedulingResolver",
    "build_policy",
    "stable_task_id",
]
