"""Read-only views of a request controller for the capacity plan, reports and tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rowloom.models.request_admission.config import RequestAdmissionConfig
from rowloom.models.request_admission.ledger import RequestLedger
from rowloom.models.request_admission.queue import RequestFairQueue
from rowloom.models.request_admission.resources import RequestResourceKey
from rowloom.models.resources import ProviderModelKey


@dataclass(slots=True)
class RequestAdmissionCounters:
    """Lifetime counters of one controller; each lease, wait and bad release is counted once.

    The controller counts into its own instance; `counters()` hands out copies.

    At all times `leases_granted == leases_released + in_flight_total()` and `waits_started ==
    waits_completed + wait_timeouts + wait_cancellations + waits_shutdown + waiters_total()`.
    `immediate_grants + waits_completed == leases_granted`; `cancelled_after_grant` counts
    granted waits whose caller was cancelled (those leases are released as `local_cancelled`).
    """

    leases_granted: int = 0
    immediate_grants: int = 0
    waits_started: int = 0
    waits_completed: int = 0
    wait_timeouts: int = 0
    wait_cancellations: int = 0
    waits_shutdown: int = 0
    cancelled_after_grant: int = 0
    acquire_denials: int = 0
    leases_released: int = 0
    rate_limited: int = 0
    bad_releases: int = 0


@dataclass(frozen=True, slots=True)
class RequestAdmissionRuntimeSnapshot:
    """Current adaptive state per resource and aggregate in-flight per endpoint.

    `limit_rules` names each resource's active limit rule (`aimd`, `latency`, `aimd_v1`);
    `blocked_until` is the end of a cooldown that blocks admission, `cooldown_until` the end of
    any rate-limit cooldown (blocking or not), `paced_until` the next paced admission.
    `provider_limits` is the learned limit of each provider that serves two or more endpoints.
    """

    captured_at: float
    current_limits: Mapping[RequestResourceKey, int]
    effective_max: Mapping[RequestResourceKey, int]
    blocked_until: Mapping[RequestResourceKey, float | None]
    in_flight: Mapping[RequestResourceKey, int]
    waiters: Mapping[RequestResourceKey, int]
    provider_model_aggregate_in_flight: Mapping[ProviderModelKey, int]
    limit_rules: Mapping[RequestResourceKey, str]
    cooldown_until: Mapping[RequestResourceKey, float | None]
    paced_until: Mapping[RequestResourceKey, float | None]
    provider_limits: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class RequestAdmissionObservedMaxima:
    """The highest values seen since the controller started."""

    request_waiters_by_resource: Mapping[RequestResourceKey, int]
    request_in_flight_by_resource: Mapping[RequestResourceKey, int]
    provider_model_aggregate_in_flight: Mapping[ProviderModelKey, int]
    request_domain_current_limits: Mapping[RequestResourceKey, int]


@dataclass(frozen=True, slots=True)
class RequestAdmissionCapacityView:
    """Configured values, runtime state and observed maxima: the capacity plan's inputs."""

    config: RequestAdmissionConfig
    runtime_snapshot: RequestAdmissionRuntimeSnapshot
    observed_maxima: RequestAdmissionObservedMaxima

    def as_json(self) -> dict[str, Any]:
        """The view as JSON, keys rendered as `provider/model[/domain]`."""
        rt, om = self.runtime_snapshot, self.observed_maxima
        return {
            "configured": self.config.as_json(),
            "runtime_snapshot": {
                "captured_at": rt.captured_at,
                "request_domain_current_limits": _keyed(rt.current_limits),
                "request_domain_effective_max": _keyed(rt.effective_max),
                "request_domain_limit_rules": _keyed(rt.limit_rules),
                "request_domain_blocked_until": _keyed(rt.blocked_until),
                "request_domain_cooldown_until": _keyed(rt.cooldown_until),
                "request_domain_paced_until": _keyed(rt.paced_until),
                "request_in_flight_by_resource": _keyed(rt.in_flight),
                "request_waiters_by_resource": _keyed(rt.waiters),
                "provider_model_aggregate_in_flight": _keyed(rt.provider_model_aggregate_in_flight),
                "provider_limits": dict(rt.provider_limits),
            },
            "observed_maxima": {
                "request_waiters_by_resource": _keyed(om.request_waiters_by_resource),
                "request_in_flight_by_resource": _keyed(om.request_in_flight_by_resource),
                "provider_model_aggregate_in_flight": _keyed(om.provider_model_aggregate_in_flight),
                "request_domain_current_limits": _keyed(om.request_domain_current_limits),
            },
        }


def build_runtime_snapshot(
    ledger: RequestLedger, queue: RequestFairQueue, now: float
) -> RequestAdmissionRuntimeSnapshot:
    """The runtime section of the capacity view, read from the ledger at `now`."""
    records = sorted(ledger.records(), key=lambda r: r.key)
    return RequestAdmissionRuntimeSnapshot(
        captured_at=now,
        current_limits=MappingProxyType({r.key: r.limits.limit_at(now) for r in records}),
        effective_max=MappingProxyType({r.key: r.limits.effective_max for r in records}),
        blocked_until=MappingProxyType({r.key: r.limits.blocked_until(now) for r in records}),
        in_flight=MappingProxyType({r.key: r.in_flight for r in records}),
        waiters=MappingProxyType({r.key: queue.queued_for_resource(r.key) for r in records}),
        provider_model_aggregate_in_flight=MappingProxyType(
            {pm.key: pm.in_flight for pm in ledger.provider_models()}
        ),
        limit_rules=MappingProxyType({r.key: r.limits.rule.name for r in records}),
        cooldown_until=MappingProxyType({r.key: r.limits.cooldown_until(now) for r in records}),
        paced_until=MappingProxyType({r.key: r.paced_until(now) for r in records}),
        provider_limits=MappingProxyType(
            {p.name: p.limit for p in ledger.providers() if p.limit is not None}
        ),
    )


def build_observed_maxima(ledger: RequestLedger) -> RequestAdmissionObservedMaxima:
    """The observed-maxima section of the capacity view."""
    records = sorted(ledger.records(), key=lambda r: r.key)
    return RequestAdmissionObservedMaxima(
        request_waiters_by_resource=MappingProxyType({r.key: r.max_waiters for r in records}),
        request_in_flight_by_resource=MappingProxyType({r.key: r.max_in_flight for r in records}),
        provider_model_aggregate_in_flight=MappingProxyType(
            {pm.key: pm.max_in_flight for pm in ledger.provider_models()}
        ),
        request_domain_current_limits=MappingProxyType({r.key: r.max_limit for r in records}),
    )


def _keyed(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    return {k.as_key_str(): v for k, v in sorted(mapping.items())}
