"""A Ray worker's request admission within its fleet shares (`attach_shares`/`set_shares`)."""

from __future__ import annotations

from ra_support import CHAT, OK, OTHER_CHAT, MakeHarness, denial_of, item, lease_of

from rowloom.models.request_admission import RequestDenialReason, RequestReleaseOutcome
from rowloom.models.request_admission.fleet import PROVIDER_PREFIX, share_keys
from rowloom.models.request_admission.shares import ShareGrant
from rowloom.provider_wire import RateLimitHeaders

KEY = CHAT.as_key_str()


async def test_admits_within_the_share_and_a_raise_grants_waiters(make: MakeHarness) -> None:
    h = make(cap=8)
    c = h.controller
    cuts: list[int] = []
    keys = c.attach_shares({KEY: 8}, on_cut=lambda: cuts.append(1))
    assert keys == (KEY,)
    # no grant yet: a share of 0 admits nothing
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.FLEET_SHARE
    c.set_shares({KEY: ShareGrant(2, 1, 9, limit=8)})
    a, b = lease_of(c.try_acquire(item())), lease_of(c.try_acquire(item()))
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.FLEET_SHARE
    waiter = await h.start_waiter(item())
    assert not waiter.done()
    c.set_shares({KEY: ShareGrant(3, 1, 9, limit=8)})
    assert c.waiters_total() == 0
    granted = await h.granted(waiter)
    changed = h.of_kind("request_share_changed")
    assert [e.diagnostics["after"] for e in changed] == [2, 3]
    # a 429 cuts the share at once (3 -> 2) and asks for a report; a second 429 of the same
    # cascade does not cut again
    c.release(a, RequestReleaseOutcome.rate_limited(retry_after_seconds=1.0))
    c.release(b, RequestReleaseOutcome.rate_limited(retry_after_seconds=1.0))
    assert c.shares() == {KEY: 2} and cuts == [1]
    c.release(granted, OK)
    report = c.share_reports()[KEY]
    assert (report.successes, report.rate_limited, report.fresh_rate_limited) == (1, 2, 2)
    assert (report.share, report.generation, report.epoch) == (2, 1, 9)
    assert report.in_flight == 0 and c.in_flight_total() == 0


async def test_a_fleet_pause_holds_admissions_until_it_ends(make: MakeHarness) -> None:
    h = make(cap=8)
    c = h.controller
    c.attach_shares({KEY: 8})
    c.set_shares({KEY: ShareGrant(4, 2, 1, pause_seconds=1.5)})
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.FLEET_SHARE
    waiter = await h.start_waiter(item())
    h.clock.advance(1.4)
    assert c.waiters_total() == 1 and not waiter.done()
    h.clock.advance(0.1)  # the pause ends: the wake-up timer grants without any release
    c.release(await h.granted(waiter), OK)


async def test_a_lost_coordinator_leaves_at_least_one(make: MakeHarness) -> None:
    h = make(cap=8)
    c = h.controller
    c.attach_shares({KEY: 8})
    waiter = await h.start_waiter(item())
    c.orphan_shares()
    c.release(await h.granted(waiter), OK)
    assert c.shares() == {KEY: 1}


def test_share_keys_cover_resources_and_shared_providers(make: MakeHarness) -> None:
    h = make(cap=8, other_cap=6, resources=(CHAT, OTHER_CHAT))
    keys = share_keys(h.controller.config)
    assert keys == {KEY: 8, OTHER_CHAT.as_key_str(): 6, PROVIDER_PREFIX + "prov": 14}
    attached = h.controller.attach_shares(keys)
    assert set(attached) == set(keys)
    c = h.controller
    # the provider's share binds across both endpoints
    c.set_shares(
        {
            KEY: ShareGrant(5, 1),
            OTHER_CHAT.as_key_str(): ShareGrant(5, 1),
            PROVIDER_PREFIX + "prov": ShareGrant(3, 1),
        }
    )
    leases = [lease_of(c.try_acquire(item(r))) for r in (CHAT, OTHER_CHAT, CHAT)]
    assert denial_of(c.try_acquire(item(OTHER_CHAT))).reason is RequestDenialReason.FLEET_SHARE
    for lease in leases:
        c.release(lease, OK)


async def test_rate_limit_headers_go_to_the_coordinator_and_the_cap_holds_admissions(
    make: MakeHarness,
) -> None:
    """The answers' x-ratelimit-* headers reach the worker's report (with the leases granted
    after the answered one), a 429 that says the budget is gone asks for a report at once, and
    the coordinator's admit cap holds admissions until a grant raises it."""
    h = make(cap=8)
    c = h.controller
    urgent: list[int] = []
    c.attach_shares({KEY: 8}, on_cut=lambda: urgent.append(1))
    c.set_shares({KEY: ShareGrant(6, 1, 9, limit=8, admit_cap=3)})
    first = lease_of(c.try_acquire(item()))
    h.clock.advance(0.5)
    second, third = lease_of(c.try_acquire(item())), lease_of(c.try_acquire(item()))
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.FLEET_SHARE  # cap 3
    budget = RateLimitHeaders(limit_requests=600, remaining_requests=40, reset_requests_seconds=2)
    c.release(first, RequestReleaseOutcome.success(rate_limit=budget))
    h.clock.advance(0.25)
    report = c.share_reports()[KEY]
    assert report.admitted == 3 and report.budget is not None
    assert report.budget.remaining_requests == 40 and report.budget.granted_after == 2
    assert report.budget.age_seconds == 0.75 and report.budget.reset_requests_seconds == 1.25
    waiter = await h.start_waiter(item())
    c.set_shares({KEY: ShareGrant(6, 1, 9, limit=8, admit_cap=4)})
    fourth = await h.granted(waiter)
    assert urgent == []
    spent = RateLimitHeaders(limit_requests=600, remaining_requests=0, reset_requests_seconds=9)
    c.release(second, RequestReleaseOutcome.rate_limited(9.0, rate_limit=spent))
    assert len(urgent) == 1  # reported at once
    report = c.share_reports()[KEY]
    assert report.budget is not None and report.budget.retry_after_seconds == 8.75
    for lease in (third, fourth):
        c.release(lease, OK)
