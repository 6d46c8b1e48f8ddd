"""Admission decisions: a lease, a typed denial, and the error blocking acquire raises."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from rowloom.errors import RowloomError
from rowloom.models.request_admission.pressure import RequestResourcePressureSnapshot
from rowloom.models.request_admission.resources import RequestAdmissionItem, RequestResourceKey


class RequestDenialReason(enum.StrEnum):
    """Why no lease was granted.

    - `no_capacity`: the resource's in-flight count is at its current adaptive limit.
    - `cooldown`: a rate-limit cooldown blocks every new admission of the resource.
    - `aggregate_cap`: the endpoint's in-flight count over all domains is at its static cap.
    - `provider_limit`: the provider's in-flight count over all its endpoints is at the limit
      learned from its 429s (providers serving two or more endpoints).
    - `fleet_share`: the worker's share of a fleet-wide limit (Ray engine) is in use, or the
      fleet's coordinator holds admissions (its Retry-After).
    - `paced`: the provider's rate-limit headers say its request budget is nearly spent;
      admissions are spread until the budget resets.
    - `queued_waiters_ahead`: waiters for the resource are queued; a non-blocking acquire
      never jumps them.
    - `timeout`: the queue-wait timeout passed before a lease was granted.
    - `shutdown`: the controller was shut down.
    - `unknown_resource`: the endpoint has no static cap (a hard denial).
    """

    NO_CAPACITY = "no_capacity"
    COOLDOWN = "cooldown"
    AGGREGATE_CAP = "aggregate_cap"
    PROVIDER_LIMIT = "provider_limit"
    FLEET_SHARE = "fleet_share"
    PACED = "paced"
    QUEUED_WAITERS_AHEAD = "queued_waiters_ahead"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"
    UNKNOWN_RESOURCE = "unknown_resource"


HARD_DENIALS = frozenset({RequestDenialReason.SHUTDOWN, RequestDenialReason.UNKNOWN_RESOURCE})
"""Denials that waiting cannot cure: blocking acquire raises at once."""


@dataclass(frozen=True, slots=True)
class RequestAdmissionLease:
    """Permission for exactly one outbound call attempt; release it exactly once.

    `current_limit` and `effective_max` are the resource's values when the lease was granted;
    `controller_generation` identifies the issuing controller.
    """

    lease_id: str
    item: RequestAdmissionItem
    acquired_at: float
    current_limit: int
    effective_max: int
    controller_generation: int

    @property
    def resource(self) -> RequestResourceKey:
        return self.item.resource


@dataclass(frozen=True, slots=True)
class RequestAdmissionDenied:
    """No lease, and why.

    `retry_after_seconds` / `available_after_monotonic` are set when the controller knows when
    the block lifts (a blocking cooldown, or pacing); `snapshot` is the resource's pressure at
    the decision.
    """

    item: RequestAdmissionItem
    reason: RequestDenialReason
    retry_after_seconds: float | None = None
    available_after_monotonic: float | None = None
    snapshot: RequestResourcePressureSnapshot | None = None


RequestAdmissionDecision: TypeAlias = RequestAdmissionLease | RequestAdmissionDenied


class RequestAdmissionError(RowloomError):
    """Raised by blocking acquire when no lease can be had; never after a lease was returned."""

    def __init__(self, denied: RequestAdmissionDenied) -> None:
        super().__init__(
            f"request admission denied for {denied.item.resource.as_key_str()}: {denied.reason}"
        )
        self.denied = denied

    @property
    def reason(self) -> RequestDenialReason:
        return self.denied.reason
