"""`RequestAdmissionPolicy`: the rule deciding whether one more request may go out now.

Pure: it reads a resource's ledger record and the time, and changes nothing. The controller
asks it for immediate acquires and for every queued waiter it considers granting.
"""

from __future__ import annotations

from rowloom.models.request_admission.decisions import RequestDenialReason
from rowloom.models.request_admission.ledger import ResourceRecord


class RequestAdmissionPolicy:
    """Admit only if no cooldown blocks the resource, its in-flight count is below its current
    limit, its endpoint's in-flight count over all domains is below the static cap, its
    provider's in-flight count is below the provider's learned limit (if it has one), the
    resource and the provider are within their fleet shares and request budgets (Ray workers
    only), and rate-limit
    pacing does not hold the next admission.

    `evaluate` answers None (admit) or the first reason, checked in that order.
    """

    __slots__ = ()

    def evaluate(self, record: ResourceRecord, now: float) -> RequestDenialReason | None:
        if record.limits.admission_blocked(now):
            return RequestDenialReason.COOLDOWN
        if record.in_flight >= record.limits.current_limit:
            return RequestDenialReason.NO_CAPACITY
        if record.pm.in_flight >= record.pm.static_cap:
            return RequestDenialReason.AGGREGATE_CAP
        provider = record.pm.provider
        if provider.rule is not None and provider.in_flight >= provider.rule.limit:
            return RequestDenialReason.PROVIDER_LIMIT
        share, provider_share = record.share, provider.share
        if (share is not None and not share.admits(record.in_flight, now, record.grants)) or (
            provider_share is not None
            and not provider_share.admits(provider.in_flight, now, provider.grants)
        ):
            return RequestDenialReason.FLEET_SHARE
        if record.paced_until(now) is not None:
            return RequestDenialReason.PACED
        return None
