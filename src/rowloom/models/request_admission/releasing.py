"""Releasing: the named steps that return a lease's capacity and learn from its outcome.

`release` runs them in order inside one `Operation`:

1. settle the lease in the ledger, exactly once (a duplicate, stale, wrong-generation or
   unknown lease is answered by `bad_release` and returns nothing);
2. `_observe_pacing`: fold the answer's `x-ratelimit-*` headers into the resource's pacer;
3. `_apply_outcome`: the outcome moves the resource's limit (a 429 cuts it and may start a
   cooldown, a success may raise it, anything else only lets time-driven changes happen);
4. `_release_events`: `request_lease_released`, and `request_rate_limited` for a 429;
5. the limit transitions' events, then `_observe_provider` (the learned provider limit) and
   `_observe_fleet` (fleet shares) for successes and 429s.

Granting freed capacity to waiters is the caller's next step (`granting.grant_waiters`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Final

from rowloom.leases import (
    ReleaseReason,
    ReleaseResult,
)
from rowloom.models.request_admission import _events as ev
from rowloom.models.request_admission import fleet
from rowloom.models.request_admission.decisions import RequestAdmissionLease
from rowloom.models.request_admission.ledger import SettledLease
from rowloom.models.request_admission.limit_state import (
    LIMIT_DECREASED,
    LIMIT_INCREASED,
    LimitTransition,
    RateLimitEffect,
)
from rowloom.models.request_admission.operation import Operation
from rowloom.models.request_admission.outcomes import (
    RequestReleaseOutcome,
    RequestReleaseOutcomeKind,
)

_RELEASED: Final = ReleaseResult(True, ReleaseReason.RELEASED)
_UNEXPECTED: Final = RequestReleaseOutcome(RequestReleaseOutcomeKind.UNEXPECTED_EXCEPTION)
_PROVIDER_FAILURES: Final = frozenset(
    {RequestReleaseOutcomeKind.PROVIDER_FAILURE, RequestReleaseOutcomeKind.PROVIDER_TIMEOUT}
)


def release(
    op: Operation,
    lease: RequestAdmissionLease,
    outcome: RequestReleaseOutcome,
    *,
    after_grant: bool = False,
) -> ReleaseResult:
    """Return the lease's capacity exactly once and apply the outcome; never raises."""
    state = op.state
    verdict = state.ledger.check_release(lease)
    if verdict is not ReleaseReason.RELEASED:
        return bad_release(op, lease, outcome, verdict)
    if not isinstance(outcome, RequestReleaseOutcome):
        outcome = _UNEXPECTED  # release never raises, even on a malformed outcome
    settled = state.ledger.settle(lease)
    state.counts.leases_released += 1
    settled.record.last_outcome = outcome.kind.value
    _observe_pacing(op, settled, outcome)
    effect, transitions = _apply_outcome(op, lease, settled, outcome)
    _release_events(op, lease, settled, outcome, effect, after_grant)
    op.apply(settled.record, transitions, cause=lease.item)
    if outcome.kind is RequestReleaseOutcomeKind.SUCCESS or effect is not None:
        _observe_provider(op, settled, effect is not None, lease)
        _observe_fleet(op, settled, effect is not None, outcome, lease.acquired_at)
    return _RELEASED


def _observe_pacing(op: Operation, settled: SettledLease, outcome: RequestReleaseOutcome) -> None:
    """The leases granted after this one were not counted yet by the provider's answer."""
    record = settled.record
    if outcome.rate_limit is not None and op.state.config.header_pacing:
        record.pacer.observe(op.now, outcome.rate_limit, record.grants - settled.ordinal - 1)


def _apply_outcome(
    op: Operation,
    lease: RequestAdmissionLease,
    settled: SettledLease,
    outcome: RequestReleaseOutcome,
) -> tuple[RateLimitEffect | None, tuple[LimitTransition, ...]]:
    """Move the resource's limit by the outcome: (the 429's effect or None, transitions)."""
    record, now, kind = settled.record, op.now, outcome.kind
    limits = record.limits
    if kind is RequestReleaseOutcomeKind.RATE_LIMITED:
        op.state.counts.rate_limited += 1
        effect = limits.on_rate_limited(
            now,
            lease.current_limit,
            outcome.retry_after_seconds,
            granted_in_cooldown=settled.ordinal >= record.cooldown_mark,
            lease_in_flight=settled.in_flight_at_grant,
        )
        if effect.cooldown_started:
            record.cooldown_mark = record.grants
        return effect, effect.transitions
    if kind is RequestReleaseOutcomeKind.SUCCESS:
        held = now - lease.acquired_at
        return None, limits.on_success(now, held, record.in_flight, lease.current_limit)
    if kind in _PROVIDER_FAILURES:
        limits.on_provider_failure()
    return None, limits.refresh(now)


def _release_events(
    op: Operation,
    lease: RequestAdmissionLease,
    settled: SettledLease,
    outcome: RequestReleaseOutcome,
    effect: RateLimitEffect | None,
    after_grant: bool,
) -> None:
    if op.pending is None:
        return
    diagnostics: dict[str, Any] = {"held_seconds": op.now - lease.acquired_at}
    if outcome.status_code is not None:
        diagnostics["status_code"] = outcome.status_code
    if outcome.error_class is not None:
        diagnostics["error_class"] = outcome.error_class
    if after_grant:
        diagnostics["cancelled_after_grant"] = True
    op.item_event(
        "request_lease_released",
        lease.item,
        lease_id=lease.lease_id,
        reason=outcome.kind.value,
        diagnostics=diagnostics,
    )
    if effect is None:
        return
    op.item_event(
        "request_rate_limited",
        lease.item,
        lease_id=lease.lease_id,
        reason="rate_limited",
        record=settled.record,
        diagnostics={
            "retry_after_seconds": outcome.retry_after_seconds,
            "new_cascade": effect.new_cascade,
            "lease_limit": lease.current_limit,
            "cooldown_mode": settled.record.limits.cooldown_mode,
            "admission_blocked": effect.blocked,
            "status_code": outcome.status_code,
        },
    )


def _observe_provider(
    op: Operation, settled: SettledLease, rate_limited: bool, lease: RequestAdmissionLease
) -> None:
    """Fold a success or a 429 into the provider's learned limit; note a change as a limit
    event of the resource whose release caused it (`reason`: `provider_limit`;
    `diagnostics.phase`: `slow_start` for the ramp's steps and the 429 that ends it, else
    `settling`)."""
    provider = settled.record.pm.provider
    ramping = provider.rule is not None and provider.rule.in_slow_start
    before = provider.observe(
        op.now, rate_limited, settled.provider_ordinal, settled.provider_in_flight_at_grant
    )
    if before is None:
        return
    after = provider.limit
    assert after is not None
    op.resource_event(
        LIMIT_DECREASED if after < before else LIMIT_INCREASED,
        settled.record,
        cause=lease.item,
        reason="provider_limit",
        diagnostics={
            "scope": "provider",
            "provider": provider.name,
            "before": before,
            "after": after,
            "phase": "slow_start" if ramping else "settling",
        },
    )


def _observe_fleet(
    op: Operation,
    settled: SettledLease,
    rate_limited: bool,
    outcome: RequestReleaseOutcome,
    granted_at: float,
) -> None:
    """Fold the outcome into the fleet shares (Ray workers); a cut, or a 429 that says the
    request budget is gone, is reported at once. The headers describe the provider when the
    lease reached it: they are dated by its grant."""
    state = op.state
    headers = outcome.rate_limit if state.config.header_pacing else None
    cut = bool(state.gates) and fleet.observe(
        settled, rate_limited, outcome.retry_after_seconds, headers, granted_at
    )
    if cut and state.on_share_cut is not None:
        state.on_share_cut()


def bad_release(
    op: Operation,
    lease: object,
    outcome: RequestReleaseOutcome,
    verdict: ReleaseReason,
) -> ReleaseResult:
    """A release that returns no capacity: `request_release_diagnostic` and `released=False`."""
    op.state.counts.bad_releases += 1
    diagnostics: dict[str, Any] = {
        "lease_id": getattr(lease, "lease_id", None),
        "lease_generation": getattr(lease, "controller_generation", None),
        "controller_generation": op.state.generation,
        "outcome": getattr(getattr(outcome, "kind", None), "value", None),
    }
    if isinstance(lease, RequestAdmissionLease):
        op.item_event(
            "request_release_diagnostic",
            lease.item,
            lease_id=lease.lease_id,
            reason=verdict.value,
            diagnostics=diagnostics,
        )
    elif op.pending is not None:
        ev.bare_event(
            op.pending, "request_release_diagnostic", reason=verdict.value, diagnostics=diagnostics
        )
    return ReleaseResult(False, verdict, MappingProxyType(diagnostics))
