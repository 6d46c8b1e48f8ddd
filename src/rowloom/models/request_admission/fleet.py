"""Fleet shares inside one worker's request admission (the Ray engine's worker side).

Share keys are the names a coordinator and its workers agree on: each request resource by its
key string (`provider/model/domain`), and `provider:<name>` for a provider that serves two or
more endpoints (whose capacity they share, as the learned provider limit on one machine
does). `share_keys` gives every key of a run with its fleet max; the controller's
`attach_shares` puts a `ShareGate` on each, and this module's helpers fold outcomes (and the
answers' `x-ratelimit-*` headers, which count the whole API key) into the gates and build the
reports. Pure functions over the ledger: no clock, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from rowloom.models.request_admission import _events as ev
from rowloom.models.request_admission._events import Pending
from rowloom.models.request_admission.config import RequestAdmissionConfig
from rowloom.models.request_admission.ledger import RequestLedger, ResourceRecord, SettledLease
from rowloom.models.request_admission.queue import RequestFairQueue
from rowloom.models.request_admission.shares import ShareGate, ShareGrant, ShareReport
from rowloom.provider_wire import RateLimitHeaders

PROVIDER_PREFIX = "provider:"


def share_keys(config: RequestAdmissionConfig) -> dict[str, int]:
    """Every share key of a run and its fleet max: a resource's effective max, a shared
    provider's summed endpoint caps."""
    keys: dict[str, int] = {}
    for resource in config.resources:
        top = config.effective_max(resource)
        if top is not None:
            keys[resource.as_key_str()] = top
    endpoints = Counter(k.provider_name for k in config.static_caps)
    for name, count in sorted(endpoints.items()):
        if count >= 2:
            caps = [c for k, c in config.static_caps.items() if k.provider_name == name]
            keys[PROVIDER_PREFIX + name] = sum(caps)
    return keys


def attach(ledger: RequestLedger, keys: Mapping[str, int]) -> dict[str, ShareGate]:
    """A gate (share 0 until granted) on every registered resource and provider in `keys`."""
    gates: dict[str, ShareGate] = {}
    for record in ledger.records():
        key = record.key.as_key_str()
        if key in keys:
            record.share = gates[key] = ShareGate(admitted=record.grants)
    for provider in ledger.providers():
        key = PROVIDER_PREFIX + provider.name
        if key in keys:
            provider.share = gates[key] = ShareGate(admitted=provider.grants)
    return gates


def observe(
    settled: SettledLease,
    rate_limited: bool,
    retry_after: float | None,
    headers: RateLimitHeaders | None = None,
    granted_at: float = 0.0,
) -> bool:
    """Fold one finished attempt into its resource's and provider's gates (and its answer's
    rate-limit headers, dated by the lease's grant, into the resource's); True when the worker
    should report at once (a 429 cut a share, or said the request budget is gone)."""
    record = settled.record
    provider = record.pm.provider
    cut = False
    if headers is not None and record.share is not None:
        spent_retry = retry_after if rate_limited else None
        cut |= record.share.observe_budget(headers, granted_at, settled.ordinal, spent_retry)
    for gate, ordinal, admitted in (
        (record.share, settled.ordinal, record.grants),
        (provider.share, settled.provider_ordinal, provider.grants),
    ):
        if gate is None:
            continue
        if rate_limited:
            cut |= gate.on_rate_limited(ordinal, admitted=admitted, retry_after_seconds=retry_after)
        else:
            gate.on_success()
    return cut


def reports(ledger: RequestLedger, queue: RequestFairQueue, now: float) -> dict[str, ShareReport]:
    """One report per gate: in flight and queued requests, outcomes since the last report,
    leases ever granted, the latest rate-limit headers."""
    out: dict[str, ShareReport] = {}
    waiting_by_provider: Counter[str] = Counter()
    for record in ledger.records():
        waiting = queue.queued_for_resource(record.key)
        waiting_by_provider[record.pm.provider.name] += waiting
        if record.share is not None:
            out[record.key.as_key_str()] = record.share.take_report(
                record.in_flight, waiting, admitted=record.grants, now=now
            )
    for provider in ledger.providers():
        if provider.share is not None:
            waiting = waiting_by_provider[provider.name]
            key = PROVIDER_PREFIX + provider.name
            out[key] = provider.share.take_report(
                provider.in_flight, waiting, admitted=provider.grants, now=now
            )
    return out


def apply(
    ledger: RequestLedger, grants: Mapping[str, ShareGrant], now: float
) -> list[tuple[str, int, int]]:
    """Adopt grants; (key, before, after) for every share that changed."""
    changed: list[tuple[str, int, int]] = []
    for record in ledger.records():
        grant = grants.get(record.key.as_key_str())
        if record.share is not None and grant is not None:
            before = record.share.share
            record.share.grant(grant, admitted=record.grants, now=now)
            if record.share.share != before:
                changed.append((record.key.as_key_str(), before, record.share.share))
    for provider in ledger.providers():
        key = PROVIDER_PREFIX + provider.name
        grant = grants.get(key)
        if provider.share is not None and grant is not None:
            before = provider.share.share
            provider.share.grant(grant, admitted=provider.grants, now=now)
            if provider.share.share != before:
                changed.append((key, before, provider.share.share))
    return changed


def share_events(
    pending: Pending,
    ledger: RequestLedger,
    changed: list[tuple[str, int, int]],
    grants: Mapping[str, ShareGrant],
) -> None:
    """A `request_share_changed` event per resource a changed share covers (a provider's
    share covers each of its resources)."""
    for key, before, after in changed:
        grant = grants[key]
        for record in ledger.records():
            if key not in (record.key.as_key_str(), PROVIDER_PREFIX + record.pm.provider.name):
                continue
            ev.resource_event(
                pending,
                "request_share_changed",
                record.key,
                reason="fleet_share",
                diagnostics={
                    "share_key": key,
                    "before": before,
                    "after": after,
                    "fleet_limit": grant.limit,
                    "generation": grant.generation,
                },
            )


def paused_until(record: ResourceRecord, now: float) -> float | None:
    """When a fleet pause of the resource or its provider ends (None: not paused)."""
    ends = [
        gate.paused_until
        for gate in (record.share, record.pm.provider.share)
        if gate is not None and gate.paused_until > now
    ]
    return max(ends) if ends else None
