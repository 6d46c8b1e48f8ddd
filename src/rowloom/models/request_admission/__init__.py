"""Request admission: may this provider/model/domain call go out now?

Public names for the request executor, the capacity plan and task policies. Task policies read
pressure only through the read-only `RequestPressureSnapshotProvider`. Limit rules per
resource: `aimd` (settles below the last 429 ceiling; default), `latency` (for servers that
queue) and `aimd_v1` (the reference V1 AIMD).
"""

from rowloom.leases import (
    ReleaseReason,
    ReleaseResult,
)
from rowloom.models.request_admission.config import (
    CooldownMode,
    LimitRuleName,
    RequestAdmissionConfig,
)
from rowloom.models.request_admission.controller import AdaptiveRequestAdmissionController
from rowloom.models.request_admission.decisions import (
    RequestAdmissionDecision,
    RequestAdmissionDenied,
    RequestAdmissionError,
    RequestAdmissionLease,
    RequestDenialReason,
)
from rowloom.models.request_admission.latency_limit import LatencyLimitRule
from rowloom.models.request_admission.limit_state import (
    AdaptiveRequestLimitState,
    LimitTransition,
    RateLimitEffect,
)
from rowloom.models.request_admission.limits import (
    AimdLimitRule,
    RequestLimitRule,
    RequestLimitRuleFactory,
    RequestLimitSample,
)
from rowloom.models.request_admission.outcomes import (
    RequestReleaseOutcome,
    RequestReleaseOutcomeKind,
)
from rowloom.models.request_admission.pacing import RateLimitPacer
from rowloom.models.request_admission.policy import RequestAdmissionPolicy
from rowloom.models.request_admission.pressure import (
    ProviderModelPressureSnapshot,
    RequestPressureSnapshotProvider,
    RequestResourcePressureSnapshot,
)
from rowloom.models.request_admission.protocol import RequestAdmissionController
from rowloom.models.request_admission.queue import (
    RequestFairQueue,
    RequestQueueSelection,
    RequestQueueView,
    RequestWaiter,
)
from rowloom.models.request_admission.resolver import RequestResourceResolver
from rowloom.models.request_admission.resources import (
    RequestAdmissionItem,
    RequestDomain,
    RequestEventContext,
    RequestGroupSpec,
    RequestResourceKey,
)
from rowloom.models.request_admission.rules import LIMIT_RULE_NAMES, configured_rule_factory
from rowloom.models.request_admission.settling_aimd import SettlingAimdLimitRule
from rowloom.models.request_admission.views import (
    RequestAdmissionCapacityView,
    RequestAdmissionCounters,
    RequestAdmissionObservedMaxima,
    RequestAdmissionRuntimeSnapshot,
)

__all__ = [
    "LIMIT_RULE_NAMES",
    "AdaptiveRequestAdmissionController",
    "AdaptiveRequestLimitState",
    "AimdLimitRule",
    "CooldownMode",
    "LatencyLimitRule",
    "LimitRuleName",
    "LimitTransition",
    "ProviderModelPressureSnapshot",
    "RateLimitEffect",
    "RateLimitPacer",
    "ReleaseReason",
    "ReleaseResult",
    "RequestAdmissionCapacityView",
    "RequestAdmissionConfig",
    "RequestAdmissionController",
    "RequestAdmissionCounters",
    "RequestAdmissionDecision",
    "RequestAdmissionDenied",
    "RequestAdmissionError",
    "RequestAdmissionItem",
    "RequestAdmissionLease",
    "RequestAdmissionObservedMaxima",
    "RequestAdmissionPolicy",
    "RequestAdmissionRuntimeSnapshot",
    "RequestDenialReason",
    "RequestDomain",
    "RequestEventContext",
    "RequestFairQueue",
    "RequestGroupSpec",
    "RequestLimitRule",
    "RequestLimitRuleFactory",
    "RequestLimitSample",
    "RequestPressureSnapshotProvider",
    "RequestQueueSelection",
    "RequestQueueView",
    "RequestReleaseOutcome",
    "RequestReleaseOutcomeKind",
    "RequestResourceKey",
    "RequestResourcePressureSnapshot",
    "RequestResourceResolver",
    "RequestWaiter",
    "SettlingAimdLimitRule",
    "configured_rule_factory",
]
