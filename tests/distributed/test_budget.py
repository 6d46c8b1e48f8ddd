"""The fleet's request budget: workers forward the provider's rate-limit headers through their
`ShareGate`, the coordinator's `FleetBudget` hands out admit caps and pauses."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom.distributed.budget import FleetBudget
from rowloom.distributed.coordinator import ShareCoordinator, ShareKeyConfig
from rowloom.models.request_admission.shares import BudgetReport, ShareGate, ShareGrant
from rowloom.provider_wire import RateLimitHeaders

FAR = 1_000.0  # a reset no test reaches


@dataclass
class _Lease:
    ordinal: int
    granted_at: float
    remaining: int


@dataclass
class _Worker:
    """A worker that obeys its cap (and admits nothing before it has one)."""

    name: str
    demand: int
    gate: ShareGate = field(default_factory=ShareGate)
    admitted: int = 0
    cap: int | None = None
    caps: list[int] = field(default_factory=list)
    flying: list[_Lease] = field(default_factory=list)


class _Provider:
    """A request budget of `budget` requests that does not reset in the test."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.accepted = 0
        self.refused = 0

    def arrive(self) -> int:
        """The remaining budget the answer reports (the request itself counted)."""
        if self.accepted >= self.budget:
            self.refused += 1
            return 0
        self.accepted += 1
        return self.budget - self.accepted


def _headers(remaining: int, reset: float = FAR, limit: int | None = None) -> RateLimitHeaders:
    return RateLimitHeaders(
        limit_requests=limit, remaining_requests=remaining, reset_requests_seconds=reset
    )


class _Fleet:
    def __init__(self, budget: int, demands: list[int]) -> None:
        self.provider = _Provider(budget)
        self.budget = FleetBudget(now=0.0)
        self.workers = [_Worker(f"w{i}", d) for i, d in enumerate(demands)]
        self.now = 0.0

    def admit(self, w: _Worker, *, force: bool = False) -> bool:
        if not force and (w.cap is None or w.admitted >= w.cap):
            return False
        self.now += 0.001  # admissions are one after another
        remaining = self.provider.arrive()
        w.flying.append(_Lease(w.admitted, self.now, remaining))
        w.admitted += 1
        return True

    def check_promises(self) -> None:
        """What the caps still allow plus the free budget never exceed what the provider
        has left."""
        view = self.budget.view()
        promised = sum(max(0, w.cap - w.admitted) for w in self.workers if w.cap is not None)
        assert promised + view.free <= self.provider.budget - self.provider.accepted

    def answer(self, w: _Worker) -> None:
        if w.flying:
            lease = w.flying.pop(0)
            w.gate.observe_budget(_headers(lease.remaining), lease.granted_at, lease.ordinal)

    def report(self, w: _Worker) -> None:
        report = w.gate.take_report(0, w.demand, admitted=w.admitted, now=self.now)
        cap, _ = self.budget.report(w.name, report.admitted, report.demand, report.budget, self.now)
        if cap is not None:
            assert w.cap is None or cap >= w.cap, "a cap never falls"
            w.caps.append(cap)
        w.cap = cap


actions_st = st.lists(
    st.tuples(
        st.sampled_from(["admit", "answer", "report"]),
        st.integers(0, 4),
        st.sampled_from([0.0, 0.001, 0.05, 0.3]),
    ),
    max_size=300,
)


@settings(max_examples=400, deadline=None)
@given(
    budget=st.integers(1, 60),
    demands=st.lists(st.integers(0, 12), min_size=1, max_size=5),
    actions=actions_st,
)
def test_the_fleet_never_spends_more_than_the_providers_budget(
    budget: int, demands: list[int], actions: list[tuple[str, int, float]]
) -> None:
    """Whatever the order of admissions, answers and reports (late ones too, ties in time),
    workers that admit within their caps never exceed the key's request budget: the answer of
    the first lease is the only thing admitted without a cap."""
    fleet = _Fleet(budget, demands)
    first = fleet.workers[0]
    fleet.admit(first, force=True)
    for kind, index, dt in actions:
        fleet.now += dt
        worker = fleet.workers[index % len(fleet.workers)]
        if kind == "admit":  # as many as its cap allows, up to its demand
            for _ in range(worker.demand):
                fleet.admit(worker)
        elif kind == "answer":
            fleet.answer(worker)
        else:
            fleet.report(worker)
        fleet.check_promises()
    assert fleet.provider.refused == 0
    assert fleet.provider.accepted <= budget


def test_the_fleet_spends_the_whole_budget_when_workers_keep_asking() -> None:
    fleet = _Fleet(120, [8, 8, 24])
    fleet.admit(fleet.workers[0], force=True)
    for _ in range(200):
        fleet.now += 0.05
        for w in fleet.workers:
            for _ in range(w.demand):
                fleet.admit(w)
            while w.flying:
                fleet.answer(w)
            fleet.report(w)
    assert fleet.provider.refused == 0
    assert fleet.provider.accepted == 120
    # the busiest worker got the largest slice
    assert fleet.workers[2].admitted > fleet.workers[0].admitted


def test_after_the_reset_the_fleet_is_paced_at_the_providers_rate() -> None:
    budget = FleetBudget(now=0.0)
    # the answer of a lease granted at 0: nothing left, the budget resets in 2 s, 60 per minute
    gate = ShareGate()
    gate.observe_budget(_headers(0, reset=2.0, limit=60), 0.0, 0)
    report = gate.take_report(0, 5, admitted=1, now=0.1)
    cap, pause = budget.report("a", report.admitted, report.demand, report.budget, 0.1)
    assert cap == 1 and pause == 0.0  # nothing more before the reset
    cap, _ = budget.report("a", 1, 5, None, 1.9)
    assert cap == 1
    cap, _ = budget.report("a", 1, 5, None, 2.0)  # reset: one request
    assert cap == 2
    cap, _ = budget.report("a", 2, 5, None, 2.5)  # one per second after it
    assert cap == 2
    cap, _ = budget.report("a", 2, 5, None, 4.0)
    assert cap == 4


def test_a_reset_without_a_stated_limit_lifts_the_caps() -> None:
    budget = FleetBudget(now=0.0)
    cap, _ = budget.report("a", 1, 5, _report_of(_headers(0, reset=1.0), 0, admitted=1), 0.0)
    assert cap == 1
    cap, _ = budget.report("a", 1, 5, None, 1.0)
    assert cap is None and not budget.known


def _report_of(headers: RateLimitHeaders, ordinal: int, *, admitted: int) -> BudgetReport | None:
    gate = ShareGate()
    gate.observe_budget(headers, 0.0, ordinal)
    return gate.take_report(0, 0, admitted=admitted, now=0.0).budget


def test_a_429_with_no_budget_left_pauses_every_worker_until_its_retry_after() -> None:
    coordinator = ShareCoordinator({"k": ShareKeyConfig(8, adaptive=False)}, epoch=1)
    gates = {w: ShareGate() for w in ("a", "b")}
    for i, w in enumerate("abab"):  # the first takes all 8, then they split it 4 + 4
        gate, now = gates[w], i / 10
        report = gate.take_report(0, 4)
        gate.grant(coordinator.report(w, {"k": report}, now)["k"], admitted=0, now=now)
    assert all(g.share == 4 and g.admits(0, 0.3) for g in gates.values())
    # worker a's lease granted at 1.0 is refused: no requests left, retry in 3 s
    a = gates["a"]
    urgent = a.observe_budget(_headers(0, reset=3.0), 1.0, 0, retry_after_seconds=3.0)
    assert urgent  # reported at once
    report = a.take_report(0, 4, admitted=1, now=1.0)
    a.grant(coordinator.report("a", {"k": report}, 1.0)["k"], admitted=1, now=1.0)
    b = gates["b"]
    b.grant(coordinator.report("b", {"k": b.take_report(0, 4)}, 1.1)["k"], admitted=0, now=1.1)
    assert not a.admits(0, 3.9) and not b.admits(0, 3.9)  # b never saw the 429
    assert (a.admit_cap, b.admit_cap) == (1, 0)  # no request budget before the reset at 4.0
    for w, admitted in (("a", 1), ("b", 0)):
        gate = gates[w]
        report = gate.take_report(0, 4, admitted=admitted)
        gate.grant(coordinator.report(w, {"k": report}, 4.0)["k"], admitted=admitted, now=4.0)
        assert gate.admits(0, 4.0, admitted)  # the reset named no limit: the caps go


def test_a_key_without_rate_limit_headers_gets_no_caps() -> None:
    coordinator = ShareCoordinator({"k": ShareKeyConfig(8)}, epoch=1)
    grant = coordinator.report("a", {"k": ShareGate().take_report(0, 4, admitted=7)}, 0.0)["k"]
    assert grant.admit_cap is None and coordinator.budgets() == {}


def test_a_gate_admits_only_below_its_cap_and_drops_it_when_orphaned() -> None:
    gate = ShareGate()
    gate.grant(ShareGrant(4, 1, 1, admit_cap=10), admitted=0, now=0.0)
    assert gate.admits(0, 0.0, admitted=9) and not gate.admits(0, 0.0, admitted=10)
    gate.orphan()
    assert gate.admits(0, 0.0, admitted=10)


def test_the_gate_forwards_the_newest_answer_aged_to_the_report() -> None:
    gate = ShareGate()
    gate.observe_budget(_headers(7, reset=5.0, limit=100), 2.0, 3)
    gate.observe_budget(_headers(9, reset=5.0), 1.0, 1)  # an older lease answering late
    budget = gate.take_report(0, 0, admitted=6, now=3.0).budget
    assert budget is not None
    assert budget.remaining_requests == 7 and budget.granted_after == 2
    assert budget.reset_requests_seconds == 4.0 and budget.age_seconds == 1.0
    assert gate.take_report(0, 0, admitted=6, now=3.0).budget is None  # sent once


def test_what_other_workers_admitted_after_the_answered_lease_is_not_counted_twice() -> None:
    """b admits and reports while a's lease is out: a's answer does not count b's leases (the
    provider answered before them), so the coordinator takes them off itself."""
    fleet = _Fleet(24, [4, 4])
    a, b = fleet.workers
    fleet.admit(a, force=True)
    fleet.answer(a)
    fleet.report(a)
    fleet.report(b)
    fleet.report(a)
    fleet.admit(a)  # a's lease reaches the provider...
    for _ in range(b.demand):
        fleet.admit(b)  # ...then b's
    fleet.now += 0.1
    fleet.report(b)
    fleet.answer(a)
    fleet.answer(a)  # the answer of the lease before b's
    fleet.now += 0.1
    fleet.report(a)
    fleet.check_promises()
    for _ in range(20):  # everyone spends every cap it gets
        for w in (a, b):
            while fleet.admit(w):
                pass
            while w.flying:
                fleet.answer(w)
            fleet.now += 0.05
            fleet.report(w)
    assert fleet.provider.refused == 0
    assert fleet.provider.accepted == 24
