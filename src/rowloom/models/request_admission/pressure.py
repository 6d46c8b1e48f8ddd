"""Read-only request pressure: frozen snapshots and the provider protocol task policies read.

`RequestPressureSnapshotProvider` has no mutating or admission method. Snapshots are immutable
and consistent for their capture point; `sequence` orders captures of one controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from rowloom.models.request_admission.resources import RequestDomain, RequestResourceKey
from rowloom.models.resources import ProviderModelKey


@dataclass(frozen=True, slots=True)
class RequestResourcePressureSnapshot:
    """One provider/model/domain resource at one instant.

    `available` is how many more leases the resource could grant right now: 0 while a cooldown
    blocks admission (`blocked_until_monotonic`, the block's end) or while rate-limit pacing
    holds the next admission (`paced_until_monotonic`); `blocked` is `available == 0`.
    `in_cooldown` / `cooldown_until_monotonic` report a rate-limit cooldown whether or not it
    blocks: under the default `reduced_limit` mode a cooldown only lowers the limit, so a
    resource may be cooling down and still admit. `limit_rule` names the adaptive rule.
    `provider_limit` is the provider's learned limit on its total in flight
    (`provider_in_flight`) when it serves two or more endpoints, else None; `available`
    counts it.
    """

    snapshot_kind: ClassVar[str] = "request_pressure"
    """How event logs recognise it (typed columns, `observability.event_schema`)."""

    resource: RequestResourceKey
    limit_rule: str
    captured_at: float
    sequence: int
    in_flight: int
    current_limit: int
    effective_max: int
    static_cap: int
    provider_model_in_flight: int
    waiters: int
    blocked_until_monotonic: float | None
    cooldown_until_monotonic: float | None
    paced_until_monotonic: float | None
    cooldown_remaining_seconds: float
    rate_limit_ceiling: int | None
    consecutive_rate_limits: int
    rate_limited_total: int
    provider_failures_total: int
    in_startup_ramp: bool
    last_outcome: str | None
    provider_in_flight: int = 0
    provider_limit: int | None = None

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_remaining_seconds > 0

    @property
    def admission_blocked(self) -> bool:
        """A cooldown blocks every new admission now."""
        return self.blocked_until_monotonic is not None

    @property
    def available(self) -> int:
        if self.blocked_until_monotonic is not None or self.paced_until_monotonic is not None:
            return 0
        room = min(
            self.current_limit - self.in_flight,
            self.static_cap - self.provider_model_in_flight,
        )
        if self.provider_limit is not None:
            room = min(room, self.provider_limit - self.provider_in_flight)
        return max(0, room)

    @property
    def blocked(self) -> bool:
        return self.available == 0

    def as_json(self) -> dict[str, Any]:
        """The snapshot as a flat JSON object (resource as `provider/model/domain`)."""
        return {
            "resource": self.resource.as_key_str(),
            "limit_rule": self.limit_rule,
            "captured_at": self.captured_at,
            "sequence": self.sequence,
            "in_flight": self.in_flight,
            "current_limit": self.current_limit,
            "effective_max": self.effective_max,
            "static_cap": self.static_cap,
            "provider_model_in_flight": self.provider_model_in_flight,
            "waiters": self.waiters,
            "blocked_until_monotonic": self.blocked_until_monotonic,
            "cooldown_until_monotonic": self.cooldown_until_monotonic,
            "paced_until_monotonic": self.paced_until_monotonic,
            "cooldown_remaining_seconds": self.cooldown_remaining_seconds,
            "rate_limit_ceiling": self.rate_limit_ceiling,
            "consecutive_rate_limits": self.consecutive_rate_limits,
            "rate_limited_total": self.rate_limited_total,
            "provider_failures_total": self.provider_failures_total,
            "in_startup_ramp": self.in_startup_ramp,
            "last_outcome": self.last_outcome,
            "provider_in_flight": self.provider_in_flight,
            "provider_limit": self.provider_limit,
        }


@dataclass(frozen=True, slots=True)
class ProviderModelPressureSnapshot:
    """One provider/model endpoint across all its domains: aggregate in-flight vs static cap."""

    provider_model: ProviderModelKey
    captured_at: float
    sequence: int
    static_cap: int
    aggregate_in_flight: int
    aggregate_waiters: int
    aliases: tuple[str, ...]
    domain_in_flight: Mapping[RequestDomain, int]
    domain_current_limits: Mapping[RequestDomain, int]

    @property
    def available(self) -> int:
        return max(0, self.static_cap - self.aggregate_in_flight)

    def as_json(self) -> dict[str, Any]:
        """The snapshot as a flat JSON object."""
        return {
            "provider_model": self.provider_model.as_key_str(),
            "captured_at": self.captured_at,
            "sequence": self.sequence,
            "static_cap": self.static_cap,
            "aggregate_in_flight": self.aggregate_in_flight,
            "aggregate_waiters": self.aggregate_waiters,
            "aliases": list(self.aliases),
            "domain_in_flight": {d.value: n for d, n in self.domain_in_flight.items()},
            "domain_current_limits": {d.value: n for d, n in self.domain_current_limits.items()},
        }


class RequestPressureSnapshotProvider(Protocol):
    """Read-only request pressure for diagnostics, telemetry and task policies.

    It exposes no mutating or admission method; reading it never changes admission state.
    """

    def snapshot(self, resource: RequestResourceKey) -> RequestResourcePressureSnapshot | None:
        """The resource's pressure, or None when the resource was never registered."""
        ...

    def snapshots(self) -> Mapping[RequestResourceKey, RequestResourcePressureSnapshot]:
        """Every registered resource's pressure, in key order."""
        ...

    def global_snapshot(self, provider: str, model: str) -> ProviderModelPressureSnapshot | None:
        """The endpoint's aggregate pressure, or None when the endpoint is unknown."""
        ...

    def global_snapshots(self) -> Mapping[ProviderModelKey, ProviderModelPressureSnapshot]:
        """Every known endpoint's aggregate pressure, in key order."""
        ...
