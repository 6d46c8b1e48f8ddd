"""`RequestAdmissionPolicy`: the V1 rule deciding whether one more request may go out now.

Pure: it reads a resource's ledger record and the time, and changes nothing. The controller
asks it for immediate acquires and for every queued waiter it considers granting.
"""

from __future__ import annotations

from rowloom.models.request_admission.decisions import RequestDenialReason
from rowloom.models.request_admission.ledger import ResourceRecord


class RequestAdmissionPolicy:
    """Admit only if the resource is not cooling down, its in-flight count is below its current
    limit, and its endpoint's in-flight count over all domains is below the static cap.

    `evaluate` answers None (admit) or the first reason, checked in that order.
    """

    __slots__ = ()

    def evaluate(self, record: ResourceRecord, now: float) -> RequestDenialReason | None:
        if record.limits.in_cooldown(now):
            return RequestDenialReason.COOLDOWN
        if record.in_flight >= record.limits.current_limit:
            return RequestDenialReason.NO_CAPACITY
        if record.pm.in_flight >= record.pm.static_cap:
            return RequestDenialReason.AGGREGATE_CAP
        return None
