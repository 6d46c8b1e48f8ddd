"""The share arithmetic: allocation, the fleet limit's generations, and the worker's gate."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom.distributed.coordinator import ShareCoordinator, ShareKeyConfig, UnknownShareKeyError
from rowloom.distributed.shares import FleetShares, allocate
from rowloom.models.request_admission.shares import ShareGate, ShareGrant, ShareReport

demands_st = st.lists(st.integers(0, 60), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(limit=st.integers(0, 2_000), demands=demands_st, rotation=st.integers(0, 1_000))
def test_allocate_sums_to_the_limit_and_is_max_min_fair(
    limit: int, demands: list[int], rotation: int
) -> None:
    shares = allocate(limit, demands, rotation)
    assert sum(shares) == limit
    assert all(s >= 0 for s in shares)
    if sum(demands) >= limit:
        assert all(s <= d for s, d in zip(shares, demands, strict=True))
        # nobody short of its demand has more than one less than anyone else
        for s, d in zip(shares, demands, strict=True):
            if s < d:
                assert all(s >= other - 1 for other in shares)
    else:
        assert all(s >= d for s, d in zip(shares, demands, strict=True))


def test_allocate_rotates_a_limit_smaller_than_the_fleet() -> None:
    demands = [1] * 10
    served: set[int] = set()
    for rotation in range(5):
        shares = allocate(3, demands, rotation)
        assert sum(shares) == 3
        served |= {i for i, s in enumerate(shares) if s}
    assert len(served) == 10  # five turns of three reach every worker


def test_allocate_gives_surplus_in_proportion_to_demand() -> None:
    assert allocate(20, [1, 3, 0]) == [5, 15, 0]
    assert allocate(4, [0, 0]) == [2, 2]
    assert allocate(10, []) == []
    with pytest.raises(ValueError):
        allocate(-1, [1])


def _report(
    fleet: FleetShares,
    grant: ShareGrant | None,
    *,
    in_flight: int = 0,
    waiting: int = 0,
    successes: int = 0,
    fresh: int = 0,
) -> ShareReport:
    return ShareReport(
        share=0 if grant is None else grant.share,
        generation=fleet.generation if grant is None else grant.generation,
        epoch=0 if grant is None else grant.epoch,
        in_flight=in_flight,
        waiting=waiting,
        successes=successes,
        rate_limited=fresh,
        fresh_rate_limited=fresh,
    )


def test_fleet_starts_low_and_ramps_on_successes() -> None:
    fleet = FleetShares(32)
    assert fleet.limit == 8
    grant = fleet.report("a", _report(fleet, None, waiting=100), 0.0)
    assert grant.share == 8 and grant.limit == 8
    now = 0.0
    for _ in range(100):
        now += 0.2
        grant = fleet.report(
            "a", _report(fleet, grant, in_flight=grant.share, waiting=50, successes=10), now
        )
    assert fleet.limit == 32 and grant.share == 32


def test_one_cut_per_generation_and_never_for_another_epoch() -> None:
    fleet = FleetShares(40, initial_limit=40, epoch=7)
    grants = {w: fleet.report(w, _report(fleet, None, waiting=20), 0.0) for w in "abcd"}
    assert sum(g.share for g in grants.values()) == 40
    generation = fleet.generation
    # every worker saw 429s of leases granted under the same generation: one cut
    for w in "abcd":
        fleet.report(w, _report(fleet, grants[w], in_flight=10, waiting=10, fresh=3), 1.0)
    assert fleet.generation > generation
    assert fleet.view().cuts == 1
    assert fleet.limit < 40
    # a report carrying another coordinator's epoch never cuts
    stale = ShareReport(10, fleet.generation, 99, 10, 0, 0, 5, 5)
    fleet.report("a", stale, 2.0)
    assert fleet.view().cuts == 1


def test_a_cut_arms_the_next_generation_only_once_the_fleet_drained() -> None:
    fleet = FleetShares(40, initial_limit=40)
    grants = {w: fleet.report(w, _report(fleet, None, waiting=20), 0.0) for w in "abcd"}
    for t in (0.1, 0.2, 0.3):  # the shares settle at 10 each
        for w in "abcd":
            grants[w] = fleet.report(w, _report(fleet, grants[w], waiting=20), t)
    assert {g.share for g in grants.values()} == {10}
    full = {w: _report(fleet, grants[w], in_flight=10, waiting=10) for w in "abcd"}
    for w in "bcd":
        fleet.report(w, full[w], 1.0)
    cut = fleet.report("a", replace(full["a"], rate_limited=2, fresh_rate_limited=2), 1.0)
    assert fleet.view().cuts == 1 and cut.limit < fleet.held_total == 40
    # b, c, d still hold 10 each: a lease granted under the cut's generation that draws a 429
    # now is the same burst: no second cut
    again = replace(full["b"], generation=cut.generation, rate_limited=3, fresh_rate_limited=3)
    fleet.report("b", again, 1.1)
    assert fleet.view().cuts == 1 and fleet.generation == cut.generation
    # the fleet drains under the cut limit: the next generation starts, and its 429s cut
    for w in "abcd":
        fleet.report(w, replace(full[w], share=5, generation=cut.generation, in_flight=5), 1.2)
    armed = fleet.generation
    assert armed == cut.generation + 1
    fresh = ShareReport(7, armed, 0, in_flight=7, waiting=5, rate_limited=1, fresh_rate_limited=1)
    fleet.report("a", fresh, 1.3)
    assert fleet.view().cuts == 2 and fleet.limit < 30


def test_a_cut_arms_at_the_latest_after_a_second() -> None:
    fleet = FleetShares(40, initial_limit=40)
    grant = fleet.report("a", _report(fleet, None, waiting=60), 0.0)
    cut = fleet.report("a", _report(fleet, grant, in_flight=40, waiting=20, fresh=1), 0.1)
    # a worker that never drains (its in-flight stuck at 40) does not block cuts for ever
    stuck = ShareReport(cut.share, cut.generation, 0, in_flight=40, waiting=20)
    assert fleet.report("a", stuck, 0.5).generation == cut.generation
    assert fleet.report("a", stuck, 1.2).generation == cut.generation + 1


def test_restarted_coordinator_starts_conservatively() -> None:
    old = FleetShares(40, initial_limit=40, epoch=1)
    grant = old.report("a", _report(old, None, waiting=40), 0.0)
    assert grant.share == 40
    new = FleetShares(40, epoch=2)
    # the worker still runs its old share of 40 with 40 in flight: nothing more is granted
    # until it drains, and its share comes down to the new, low limit
    report = ShareReport(40, grant.generation, 1, in_flight=40, waiting=10)
    regrant = new.report("a", report, 0.0)
    assert regrant.share == new.limit == 10
    assert new.held_total == 40


@st.composite
def report_scripts(draw: st.DrawFn) -> list[tuple[int, int, int, int, int]]:
    return draw(
        st.lists(
            st.tuples(
                st.integers(0, 5),  # worker
                st.integers(0, 30),  # in flight wanted (capped by share)
                st.integers(0, 30),  # waiting
                st.integers(0, 60),  # successes
                st.integers(0, 3),  # fresh 429s
            ),
            min_size=1,
            max_size=120,
        )
    )


@settings(max_examples=120, deadline=None)
@given(script=report_scripts(), max_limit=st.integers(1, 80))
def test_grants_never_push_the_fleet_over_its_limit(
    script: list[tuple[int, int, int, int, int]], max_limit: int
) -> None:
    fleet = FleetShares(max_limit, epoch=3)
    gates: dict[str, ShareGate] = {}
    in_flight: dict[str, int] = {}
    generations = [fleet.generation]
    now = 0.0
    for worker_index, wanted, waiting, successes, fresh in script:
        now += 0.05
        worker = f"w{worker_index}"
        gate = gates.setdefault(worker, ShareGate())
        # a worker never has more in flight than its share, except what it had before a cut
        flying = min(wanted, max(gate.share, in_flight.get(worker, 0)))
        if flying > in_flight.get(worker, 0):
            flying = max(in_flight.get(worker, 0), min(flying, gate.share))
        in_flight[worker] = flying
        report = ShareReport(
            gate.share, gate.generation, gate.epoch, flying, waiting, successes, fresh, fresh
        )
        held_before = fleet.held_total
        limit_before = fleet.limit
        cuts_before = fleet.view().cuts
        grant = fleet.report(worker, report, now)
        gate.grant(grant, admitted=0, now=now)
        # a fresh 429 under the current generation cuts at most once; a stale one never
        current = report.epoch == 3 and report.generation == generations[-1]
        assert fleet.view().cuts - cuts_before <= (1 if fresh and current else 0)
        generations.append(fleet.generation)
        # never over-grant: the fleet's held capacity rises only within the limit
        if fleet.held_total > held_before:
            assert fleet.held_total <= max(fleet.limit, limit_before)
        assert 1 <= fleet.limit <= max_limit
        assert grant.share >= 0
    view = fleet.view()
    assert view.held_total == sum(max(view.shares[w], in_flight[w]) for w in view.shares)


def test_gate_cuts_at_once_once_per_cascade_and_reports() -> None:
    gate = ShareGate()
    assert not gate.admits(0, 0.0)  # no grant yet: nothing goes out
    gate.grant(ShareGrant(8, 1, 5), admitted=0, now=0.0)
    assert gate.admits(7, 0.0) and not gate.admits(8, 0.0)
    # eight leases out (ordinals 0..7); three come back refused: one cut
    assert gate.on_rate_limited(2, admitted=8, retry_after_seconds=1.0)
    assert gate.share == 6
    assert not gate.on_rate_limited(5, admitted=8)
    assert not gate.on_rate_limited(7, admitted=8)
    assert gate.share == 6
    gate.on_success()
    # a lease granted after the cut that is refused cuts again
    assert gate.on_rate_limited(8, admitted=9)
    assert gate.share == 4
    report = gate.take_report(in_flight=3, waiting=5)
    assert (report.rate_limited, report.fresh_rate_limited, report.successes) == (4, 4, 1)
    assert report.retry_after_seconds == 1.0 and report.demand == 8
    assert gate.take_report(0, 0).rate_limited == 0
    # a new generation: the 429s of older leases are not fresh and cut nothing
    gate.grant(ShareGrant(6, 2, 5), admitted=10, now=1.0)
    assert not gate.on_rate_limited(9, admitted=10)
    assert gate.take_report(0, 0).fresh_rate_limited == 0


def test_gate_pause_and_orphan() -> None:
    gate = ShareGate()
    gate.grant(ShareGrant(1, 1, 1, pause_seconds=2.0), admitted=0, now=10.0)
    assert not gate.admits(0, 11.0) and gate.admits(0, 12.0)
    assert gate.on_rate_limited(0, admitted=1)
    assert gate.share == 0  # the coordinator will grant again
    gate.orphan()  # ... unless it is gone: keep going at one and cut on own 429s
    assert gate.share == 1
    assert gate.on_rate_limited(1, admitted=2)
    assert gate.share == 1
    report = gate.take_report(0, 0)
    gate.restore(report)
    assert gate.take_report(0, 0).rate_limited == report.rate_limited


def test_coordinator_serves_its_keys_and_frees_what_a_leaver_held() -> None:
    coordinator = ShareCoordinator({"p/m/chat": ShareKeyConfig(16)}, epoch=4)
    assert coordinator.keys == ("p/m/chat",)
    report = ShareReport(0, 1, 0, in_flight=0, waiting=10)
    first = coordinator.report("a", {"p/m/chat": report}, 0.0)["p/m/chat"]
    assert first.share == 4 and first.epoch == 4
    second = coordinator.report("b", {"p/m/chat": report}, 0.1)["p/m/chat"]
    assert second.share == 0  # all four slots are held by "a"
    coordinator.leave("a")
    assert coordinator.view()["p/m/chat"].held_total == 0
    assert coordinator.report("b", {"p/m/chat": report}, 0.2)["p/m/chat"].share == 4
    with pytest.raises(UnknownShareKeyError):
        coordinator.report("b", {"other": report}, 0.3)
