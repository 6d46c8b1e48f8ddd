"""The request ledger: per-resource, per-endpoint and per-provider in-flight counts, active
leases, maxima.

The ledger is the hard accounting of request admission. A lease is counted in its resource and
its endpoint when granted and uncounted exactly once when a valid release settles it; a bad
release (duplicate, stale, wrong generation, unknown) is recognised without touching any count.
Lease ids are sequential per controller, so duplicates are told apart from unknown ids in O(1)
memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rowloom.clock import Clock
from rowloom.leases import ReleaseReason
from rowloom.models.request_admission.config import RequestAdmissionConfig
from rowloom.models.request_admission.decisions import RequestAdmissionLease
from rowloom.models.request_admission.limit_state import AdaptiveRequestLimitState
from rowloom.models.request_admission.limits import RequestLimitRuleFactory, RequestLimitSample
from rowloom.models.request_admission.pacing import RateLimitPacer
from rowloom.models.request_admission.pressure import (
    ProviderModelPressureSnapshot,
    RequestResourcePressureSnapshot,
)
from rowloom.models.request_admission.queue import RequestFairQueue
from rowloom.models.request_admission.resources import RequestAdmissionItem, RequestResourceKey
from rowloom.models.request_admission.settling_aimd import SettlingAimdLimitRule
from rowloom.models.request_admission.shares import ShareGate
from rowloom.models.resources import ProviderModelKey


class ProviderRecord:
    """One provider: in-flight count over all its endpoints and, when it serves two or more
    endpoints (and `RequestAdmissionConfig.provider_limits` is on), a learned limit on it.

    Endpoints of one provider share its capacity, but each resource's limit only learns its
    own ceiling: two models of 32 on a 32-slot provider keep overshooting it. The provider
    limit is a `SettlingAimdLimitRule` over the provider's total in flight. It starts at the
    largest of its endpoints' static caps (what one endpoint alone may use) and slow-starts
    toward their sum, one step per `provider_slow_start_successes` saturated successes, so a
    second endpoint joining does not hand the provider a whole unproven burst. A 429 whose
    lease was granted at provider in-flight `k` lands the limit one below `k` and remembers `k`
    as the ceiling, which is probed rarely.
    One cut per cascade: a refusal of a lease granted before the last decrease (its grant
    ordinal below `cut_mark`) is already answered by that decrease and is not folded in.
    `limit` is None without a rule. `share` is the provider's fleet share on a Ray worker.
    """

    __slots__ = ("cut_mark", "grants", "in_flight", "name", "rule", "share")

    def __init__(self, name: str, rule: SettlingAimdLimitRule | None) -> None:
        self.name = name
        self.rule = rule
        self.in_flight = 0
        self.grants = 0
        self.cut_mark = 0
        self.share: ShareGate | None = None

    @property
    def limit(self) -> int | None:
        return None if self.rule is None else self.rule.limit

    def observe(
        self, now: float, rate_limited: bool, ordinal: int, in_flight_at_grant: int
    ) -> int | None:
        """Fold one finished attempt (granted as the provider's `ordinal`-th lease, at
        `in_flight_at_grant`) in; the previous limit when it changed, else None."""
        rule = self.rule
        if rule is None or (rate_limited and ordinal < self.cut_mark):
            return None
        before = rule.limit
        after = rule.update(
            RequestLimitSample(
                now=now,
                rate_limited=rate_limited,
                in_flight=self.in_flight,
                lease_in_flight=in_flight_at_grant,
            )
        )
        if after == before:
            return None
        if after < before:
            self.cut_mark = self.grants
        return before


class ProviderModelRecord:
    """One endpoint: static cap and aggregate in-flight over all its domains; its provider."""

    __slots__ = (
        "aliases",
        "in_flight",
        "key",
        "max_in_flight",
        "provider",
        "resources",
        "static_cap",
    )

    def __init__(
        self,
        key: ProviderModelKey,
        static_cap: int,
        aliases: tuple[str, ...],
        provider: ProviderRecord,
    ) -> None:
        self.key = key
        self.static_cap = static_cap
        self.aliases = aliases
        self.provider = provider
        self.in_flight = 0
        self.max_in_flight = 0
        self.resources: list[ResourceRecord] = []


class ResourceRecord:
    """One provider/model/domain resource: adaptive limit state, pacer, in-flight count, maxima.

    `grants` counts the leases ever granted for the resource (a lease's ordinal is the value
    before its grant); `cooldown_mark` is the ordinal of the first lease granted after the
    current cooldown began; `share` is the resource's fleet share on a Ray worker.
    """

    __slots__ = (
        "cooldown_mark",
        "grants",
        "in_flight",
        "key",
        "last_outcome",
        "limits",
        "max_in_flight",
        "max_limit",
        "max_waiters",
        "pacer",
        "pm",
        "share",
    )

    def __init__(
        self, key: RequestResourceKey, pm: ProviderModelRecord, limits: AdaptiveRequestLimitState
    ) -> None:
        self.key = key
        self.pm = pm
        self.limits = limits
        self.in_flight = 0
        self.max_in_flight = 0
        self.max_waiters = 0
        self.max_limit = limits.current_limit
        self.last_outcome: str | None = None
        self.pacer = RateLimitPacer()
        self.grants = 0
        self.cooldown_mark = 0
        self.share: ShareGate | None = None

    def paced_until(self, now: float) -> float | None:
        """The pacer's earliest next admission (None: not paced)."""
        return self.pacer.not_before(now)


@dataclass(frozen=True, slots=True)
class SettledLease:
    """A lease just uncounted: its resource, its grant ordinals within the resource and the
    provider, and their in-flight counts right after its grant (the lease included)."""

    record: ResourceRecord
    ordinal: int
    in_flight_at_grant: int
    provider_ordinal: int
    provider_in_flight_at_grant: int


class RequestLedger:
    """Hard accounting of request leases for one controller generation."""

    def __init__(
        self,
        config: RequestAdmissionConfig,
        rule_factory: RequestLimitRuleFactory,
        generation: int,
    ) -> None:
        self._config = config
        self._rule_factory = rule_factory
        self._generation = generation
        self._prefix = f"rq{generation}-"
        self._next_lease = 1
        self._active: dict[
            str, tuple[RequestAdmissionLease, ResourceRecord, int, int, int, int]
        ] = {}
        self._resources: dict[RequestResourceKey, ResourceRecord] = {}
        caps = sorted(config.static_caps.items())
        self._providers = {
            name: ProviderRecord(
                name, _provider_rule(config, [c for k, c in caps if k.provider_name == name])
            )
            for name in sorted({k.provider_name for k, _ in caps})
        }
        self._pms = {
            key: ProviderModelRecord(
                key, cap, config.aliases.get(key, ()), self._providers[key.provider_name]
            )
            for key, cap in caps
        }

    @property
    def generation(self) -> int:
        return self._generation

    def record(self, resource: RequestResourceKey) -> ResourceRecord | None:
        return self._resources.get(resource)

    def records(self) -> Iterable[ResourceRecord]:
        return self._resources.values()

    def provider_models(self) -> Iterable[ProviderModelRecord]:
        return self._pms.values()

    def provider_model(self, key: ProviderModelKey) -> ProviderModelRecord | None:
        return self._pms.get(key)

    def providers(self) -> Iterable[ProviderRecord]:
        return self._providers.values()

    def register(self, resource: RequestResourceKey, now: float) -> ResourceRecord | None:
        """Create the resource's record; None when its endpoint has no static cap."""
        pm = self._pms.get(resource.provider_model)
        top = self._config.effective_max(resource)
        initial = self._config.initial_limit(resource)
        if pm is None or top is None or initial is None:
            return None
        limits = AdaptiveRequestLimitState(
            self._rule_factory(resource, initial, top, self._config),
            initial_limit=initial,
            effective_max=top,
            cooldown_seconds=self._config.cooldown_seconds,
            startup_ramp_seconds=self._config.startup_ramp_seconds,
            now=now,
            cooldown_mode=self._config.cooldown_mode,
        )
        record = ResourceRecord(resource, pm, limits)
        self._resources[resource] = record
        pm.resources.append(record)
        return record

    def grant(
        self, item: RequestAdmissionItem, record: ResourceRecord, now: float
    ) -> RequestAdmissionLease:
        """Count one lease in its resource and endpoint; the caller checked admission."""
        lease = RequestAdmissionLease(
            lease_id=f"{self._prefix}{self._next_lease}",
            item=item,
            acquired_at=now,
            current_limit=record.limits.current_limit,
            effective_max=record.limits.effective_max,
            controller_generation=self._generation,
        )
        self._next_lease += 1
        record.in_flight += 1
        provider = record.pm.provider
        provider.in_flight += 1
        self._active[lease.lease_id] = (
            lease,
            record,
            record.grants,
            record.in_flight,
            provider.grants,
            provider.in_flight,
        )
        record.grants += 1
        provider.grants += 1
        if self._config.header_pacing:
            record.pacer.on_admit(now)
        record.max_in_flight = max(record.max_in_flight, record.in_flight)
        pm = record.pm
        pm.in_flight += 1
        pm.max_in_flight = max(pm.max_in_flight, pm.in_flight)
        return lease

    def check_release(self, lease: object) -> ReleaseReason:
        """`released` if `lease` is active here and unaltered, else why it is a bad release."""
        if not isinstance(lease, RequestAdmissionLease):
            return ReleaseReason.UNKNOWN_LEASE
        if lease.controller_generation != self._generation:
            return ReleaseReason.WRONG_GENERATION
        active = self._active.get(lease.lease_id)
        if active is not None:
            same = active[0] is lease or active[0] == lease
            return ReleaseReason.RELEASED if same else ReleaseReason.STALE_LEASE
        number = self._lease_number(lease.lease_id)
        if number is not None and number < self._next_lease:
            return ReleaseReason.DUPLICATE
        return ReleaseReason.UNKNOWN_LEASE

    def settle(self, lease: RequestAdmissionLease) -> SettledLease:
        """Uncount a lease that `check_release` accepted."""
        _, record, ordinal, in_flight, provider_ordinal, provider_in_flight = self._active.pop(
            lease.lease_id
        )
        record.in_flight -= 1
        record.pm.in_flight -= 1
        record.pm.provider.in_flight -= 1
        return SettledLease(record, ordinal, in_flight, provider_ordinal, provider_in_flight)

    def in_flight_total(self) -> int:
        return len(self._active)

    def _lease_number(self, lease_id: str) -> int | None:
        if not lease_id.startswith(self._prefix):
            return None
        suffix = lease_id[len(self._prefix) :]
        return int(suffix) if suffix.isdigit() else None


class LedgerPressureView:
    """The controller's read-only `RequestPressureSnapshotProvider`: reads, never mutates."""

    __slots__ = ("_clock", "_ledger", "_queue", "_sequence")

    def __init__(
        self,
        ledger: RequestLedger,
        queue: RequestFairQueue,
        clock: Clock,
        sequence: Callable[[], int],
    ) -> None:
        self._ledger = ledger
        self._queue = queue
        self._clock = clock
        self._sequence = sequence

    def snapshot(self, resource: RequestResourceKey) -> RequestResourcePressureSnapshot | None:
        record = self._ledger.record(resource)
        if record is None:
            return None
        return resource_snapshot(record, self._queue, self._clock.monotonic(), self._sequence())

    def snapshots(self) -> Mapping[RequestResourceKey, RequestResourcePressureSnapshot]:
        now = self._clock.monotonic()
        records = sorted(self._ledger.records(), key=lambda r: r.key)
        return MappingProxyType(
            {r.key: resource_snapshot(r, self._queue, now, self._sequence()) for r in records}
        )

    def global_snapshot(self, provider: str, model: str) -> ProviderModelPressureSnapshot | None:
        pm = self._ledger.provider_model(ProviderModelKey(provider, model))
        if pm is None:
            return None
        return provider_model_snapshot(pm, self._queue, self._clock.monotonic(), self._sequence())

    def global_snapshots(self) -> Mapping[ProviderModelKey, ProviderModelPressureSnapshot]:
        now = self._clock.monotonic()
        return MappingProxyType(
            {
                pm.key: provider_model_snapshot(pm, self._queue, now, self._sequence())
                for pm in self._ledger.provider_models()
            }
        )


def resource_snapshot(
    record: ResourceRecord, queue: RequestFairQueue, now: float, sequence: int
) -> RequestResourcePressureSnapshot:
    """The pressure of one resource at `now` (for the provider, events and denials)."""
    limits = record.limits
    return RequestResourcePressureSnapshot(
        resource=record.key,
        limit_rule=limits.rule.name,
        captured_at=now,
        sequence=sequence,
        in_flight=record.in_flight,
        current_limit=limits.limit_at(now),
        effective_max=limits.effective_max,
        static_cap=record.pm.static_cap,
        provider_model_in_flight=record.pm.in_flight,
        waiters=queue.queued_for_resource(record.key),
        blocked_until_monotonic=limits.blocked_until(now),
        cooldown_until_monotonic=limits.cooldown_until(now),
        paced_until_monotonic=record.paced_until(now),
        cooldown_remaining_seconds=limits.cooldown_remaining(now),
        rate_limit_ceiling=limits.rate_limit_ceiling,
        consecutive_rate_limits=limits.consecutive_rate_limits,
        rate_limited_total=limits.rate_limited_total,
        provider_failures_total=limits.provider_failures_total,
        in_startup_ramp=limits.in_ramp,
        last_outcome=record.last_outcome,
        provider_in_flight=record.pm.provider.in_flight,
        provider_limit=record.pm.provider.limit,
    )


def provider_model_snapshot(
    pm: ProviderModelRecord, queue: RequestFairQueue, now: float, sequence: int
) -> ProviderModelPressureSnapshot:
    """The aggregate pressure of one endpoint at `now`."""
    records = sorted(pm.resources, key=lambda r: r.key)
    return ProviderModelPressureSnapshot(
        provider_model=pm.key,
        captured_at=now,
        sequence=sequence,
        static_cap=pm.static_cap,
        aggregate_in_flight=pm.in_flight,
        aggregate_waiters=queue.queued_for_provider_model(pm.key),
        aliases=pm.aliases,
        domain_in_flight=MappingProxyType({r.key.domain: r.in_flight for r in records}),
        domain_current_limits=MappingProxyType(
            {r.key.domain: r.limits.limit_at(now) for r in records}
        ),
    )


def _provider_rule(config: RequestAdmissionConfig, caps: list[int]) -> SettlingAimdLimitRule | None:
    """The learned provider limit for a provider whose endpoints have `caps` (None: one
    endpoint, or provider limits off): from the largest cap, slow-starting toward their sum
    (at the sum at once when `provider_slow_start_successes` is 0)."""
    if not config.provider_limits or len(caps) < 2:
        return None
    top = sum(caps)
    slow = config.provider_slow_start_successes
    return SettlingAimdLimitRule(
        max(caps) if slow else top,
        top,
        decrease_factor=config.multiplicative_decrease_factor,
        increase_step=config.additive_increase_step,
        successes_until_increase=config.successes_until_increase,
        slow_start_successes=slow,
    )
