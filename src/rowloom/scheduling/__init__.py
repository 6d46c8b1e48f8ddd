"""Scheduler internals: readiness, fair ordering and task admission.

The runtime coordinator (`rowloom.scheduler.AsyncTaskScheduler`) drives these pieces:
`CompletionTracker.ready_frontier() -> FairTaskQueue.enqueue -> CompletionTracker.mark_enqueued`,
then `select_next -> TaskAdmissionController.try_acquire -> FairTaskQueue.commit`.
"""

from rowloom.scheduling.completion import ColumnNode, CompletionTracker
from rowloom.scheduling.provider_aware import (
    ProviderAwareTaskAdmissionPolicy,
    RequestPressure,
    RequestPressureReader,
)
from rowloom.scheduling.queue import FairTaskQueue, GroupQueueFacts, QueueSelection, QueueView
from rowloom.scheduling.resolver import (
    ResolvedTaskScheduling,
    TaskSchedulingResolutionError,
    TaskSchedulingResolver,
    metadata_for_aliases,
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
    GroupAdmissionFacts,
    ReleaseResult,
    TaskAdmissionBlockSummary,
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskAdmissionDecision,
    TaskAdmissionDenied,
    TaskAdmissionLease,
    TaskAdmissionView,
)
from rowloom.scheduling.task_model import Task, TaskTrace
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
    "FairTaskQueue",
    "GroupAdmissionFacts",
    "GroupQueueFacts",
    "PolicyStateDelta",
    "ProviderAwarePolicyConfig",
    "ProviderAwareTaskAdmissionPolicy",
    "QueueSelection",
    "QueueView",
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
    "TaskTrace",
    "metadata_for_aliases",
    "stable_task_id",
]
