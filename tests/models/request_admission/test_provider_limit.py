"""The learned limit of a provider that serves two or more endpoints (ManualClock throughout).

PM (`prov/model-a`, cap 4) and OTHER_PM (`prov/model-b`, cap 4) share the provider `prov`:
its limit can reach 8, what the two endpoints' caps allow together. By default it starts at 4
(the largest cap) and slow-starts toward 8; the settling tests start it at 8 (`AT_SUM`).
"""

from __future__ import annotations

import pytest
from ra_support import (
    CHAT,
    OK,
    OTHER_CHAT,
    OTHER_PM,
    PM,
    Harness,
    MakeHarness,
    item,
    lease_of,
)

from rowloom.bench.baselines import admission_adjustment
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestAdmissionDenied,
    RequestAdmissionLease,
    RequestDenialReason,
    RequestReleaseOutcome,
)

LIMITED = RequestReleaseOutcome.rate_limited(1.0)
AT_SUM = {"provider_limits": True, "provider_slow_start_successes": 0}


def provider_limit(c: AdaptiveRequestAdmissionController) -> int | None:
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None
    return snap.provider_limit


def provider_events(kind: str, h: Harness) -> list[dict[str, object]]:
    """Diagnostics of the provider-limit changes among `kind` events."""
    return [dict(e.diagnostics or {}) for e in h.of_kind(kind) if e.reason == "provider_limit"]


def test_a_429_above_the_shared_capacity_lands_the_provider_limit_below_it(
    make: MakeHarness,
) -> None:
    h = make(**AT_SUM)
    c = h.controller
    assert provider_limit(c) == 8
    chat = [lease_of(c.try_acquire(item(CHAT))) for _ in range(3)]
    other = [lease_of(c.try_acquire(item(OTHER_CHAT))) for _ in range(2)]
    # The provider refuses the fifth request in flight (its real capacity is 4).
    c.release(other[-1], LIMITED)
    assert provider_limit(c) == 4  # one below the refused concurrency, not a blind 0.75 cut
    assert provider_events("request_limit_decreased", h) == [
        {"scope": "provider", "provider": "prov", "before": 8, "after": 4, "phase": "settling"}
    ]
    # CHAT itself has room (3 of 4), but the provider is at its limit.
    denied = c.try_acquire(item(CHAT))
    assert isinstance(denied, RequestAdmissionDenied)
    assert denied.reason is RequestDenialReason.PROVIDER_LIMIT
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.available == 0 and snap.in_flight < snap.current_limit
    # The rest of the same cascade (granted before the cut) does not cut again.
    c.release(chat[-1], LIMITED)
    assert provider_limit(c) == 4
    assert len(provider_events("request_limit_decreased", h)) == 1
    for lease in (*chat[:-1], other[0]):
        c.release(lease, OK)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0


def test_the_ceiling_is_probed_later_and_a_failed_probe_goes_back_to_hold(
    make: MakeHarness,
) -> None:
    h = make(**AT_SUM)
    c = h.controller
    held = [lease_of(c.try_acquire(item(CHAT))) for _ in range(3)]
    held += [lease_of(c.try_acquire(item(OTHER_CHAT))) for _ in range(2)]
    c.release(held.pop(), LIMITED)
    assert provider_limit(c) == 4  # ceiling 5
    h.clock.advance(10.0)  # past the first probe deadline (5 s after the ceiling's 429)
    c.release(held.pop(), OK)
    assert provider_limit(c) == 5  # the probe
    assert provider_events("request_limit_increased", h)[-1]["after"] == 5
    held += [lease_of(c.try_acquire(item(OTHER_CHAT))) for _ in range(2)]  # 5 in flight
    c.release(held.pop(), LIMITED)  # granted at 5 after the cut: the probe failed
    assert provider_limit(c) == 4
    for lease in held:
        c.release(lease, OK)
    assert c.in_flight_total() == 0


async def test_a_release_on_one_endpoint_wakes_a_waiter_held_by_the_provider_limit(
    make: MakeHarness,
) -> None:
    h = make(**AT_SUM)
    c = h.controller
    chat = [lease_of(c.try_acquire(item(CHAT))) for _ in range(3)]
    other = [lease_of(c.try_acquire(item(OTHER_CHAT))) for _ in range(2)]
    c.release(other.pop(), LIMITED)  # provider limit 4, 4 in flight
    waiter = await h.start_waiter(item(CHAT))
    assert not waiter.done()
    c.release(other.pop(), OK)  # frees provider room on the other endpoint
    await h.granted(waiter)
    for lease in (*chat, waiter.result()):
        c.release(lease, OK)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0


def test_a_provider_with_one_endpoint_has_no_provider_limit() -> None:
    config = RequestAdmissionConfig(static_caps={PM: 4}, resources=(CHAT,))
    assert config.provider_limits
    c = AdaptiveRequestAdmissionController(config)
    assert provider_limit(c) is None


@pytest.mark.parametrize("profile", ["v1", "no_provider_limit"])
def test_the_v1_and_no_provider_limit_profiles_turn_it_off(profile: str) -> None:
    config = RequestAdmissionConfig(static_caps={PM: 4, OTHER_PM: 4}, resources=(CHAT, OTHER_CHAT))
    adjust = admission_adjustment(profile)  # type: ignore[arg-type]
    assert adjust is not None
    config = adjust(config)
    assert not config.provider_limits
    assert config.as_json()["provider_limits"] is False
    assert provider_limit(AdaptiveRequestAdmissionController(config)) is None


def fill(c: AdaptiveRequestAdmissionController, held: list[RequestAdmissionLease]) -> None:
    """Acquire on both endpoints until the provider (or the endpoints) refuse more."""
    while True:
        got = [c.try_acquire(item(r)) for r in (OTHER_CHAT, CHAT)]
        leases = [g for g in got if isinstance(g, RequestAdmissionLease)]
        if not leases:
            return
        held += leases


def test_the_provider_limit_slow_starts_from_the_largest_cap_to_the_sum_without_a_429(
    make: MakeHarness,
) -> None:
    h = make(provider_limits=True, provider_slow_start_successes=2)
    c = h.controller
    assert provider_limit(c) == 4  # the largest endpoint cap, not the sum (8)
    held = [lease_of(c.try_acquire(item(CHAT))) for _ in range(4)]
    denied = c.try_acquire(item(OTHER_CHAT))
    assert isinstance(denied, RequestAdmissionDenied)
    assert denied.reason is RequestDenialReason.PROVIDER_LIMIT  # no unproven second burst
    # Every 2 saturated successes open one more slot: the limit follows the successes.
    seen = []
    for _ in range(8):
        c.release(held.pop(0), OK)
        seen.append(provider_limit(c))
        fill(c, held)
        assert c.in_flight_total() == provider_limit(c)
    assert seen == [4, 5, 5, 6, 6, 7, 7, 8]
    increases = provider_events("request_limit_increased", h)
    assert [e["after"] for e in increases] == [5, 6, 7, 8]
    assert {e["phase"] for e in increases} == {"slow_start"}
    for lease in held:
        c.release(lease, OK)
    assert c.in_flight_total() == 0


def test_a_provider_that_is_not_saturated_does_not_ramp(make: MakeHarness) -> None:
    h = make(provider_limits=True, provider_slow_start_successes=1)
    c = h.controller
    for _ in range(20):  # one request at a time: no evidence about 5 or more in flight
        c.release(lease_of(c.try_acquire(item(CHAT))), OK)
    assert provider_limit(c) == 4


def test_the_first_429_of_the_ramp_lands_below_it_once_and_ends_the_ramp(
    make: MakeHarness,
) -> None:
    h = make(provider_limits=True, provider_slow_start_successes=1)
    c = h.controller
    held = [lease_of(c.try_acquire(item(CHAT))) for _ in range(4)]
    for _ in range(2):  # two saturated successes: the limit ramps to 6
        c.release(held.pop(0), OK)
        fill(c, held)
    assert provider_limit(c) == 6 and c.in_flight_total() == 6
    # The provider's real capacity is 5: the two requests granted at 5 and 6 in flight are
    # refused (the last two granted, one per endpoint).
    for lease in held[-2:]:
        held.remove(lease)
        c.release(lease, LIMITED)
    assert provider_limit(c) == 4  # one below the first refused concurrency (5), once
    decreases = provider_events("request_limit_decreased", h)
    assert decreases == [
        {"scope": "provider", "provider": "prov", "before": 6, "after": 4, "phase": "slow_start"}
    ]
    # The ramp is over: saturated successes now raise the limit only by AIMD's slow steps.
    h.clock.advance(2.0)  # past the resources' cooldowns (Retry-After 1 s)
    for _ in range(6):
        c.release(held.pop(0), OK)
        fill(c, held)
    assert provider_limit(c) == 4
    for lease in held:
        c.release(lease, OK)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0
