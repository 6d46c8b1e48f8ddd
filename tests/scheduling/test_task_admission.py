from __future__ import annotations

import dataclasses
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduling_support import SUBMIT, SUBMIT_LOCAL, group, task, tasks

from rowloom.clock import ManualClock
from rowloom.scheduling.admission_view import TaskAdmissionLease
from rowloom.scheduling.queue import EMPTY_QUEUE_VIEW, FairTaskQueue, QueueView, Refusal
from rowloom.scheduling.resources import LOCAL, SUBMISSION, SchedulableTask
from rowloom.scheduling.task_admission import (
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskAdmissionDenied,
)
from rowloom.scheduling.task_policies import (
    NO_CHANGE,
    BoundedBorrowPolicyConfig,
    PolicyStateDelta,
    TaskAdmissionPolicyDecision,
)


def controller(
    capacity: int = 4, local: int | None = None, policy: Any = None, clock: Any = None
) -> TaskAdmissionController:
    limits = {LOCAL: local} if local is not None else {}
    config = TaskAdmissionConfig(capacity, limits)
    return TaskAdmissionController(config, clock or ManualClock(), policy)


def lease(decision: object) -> TaskAdmissionLease:
    assert isinstance(decision, TaskAdmissionLease), decision
    return decision


def test_acquire_and_release_move_the_ledger() -> None:
    clock = ManualClock(50.0)
    admission = controller(capacity=3, local=2, clock=clock)
    item = task(group("a"), request=SUBMIT_LOCAL)
    held = lease(admission.try_acquire(item, EMPTY_QUEUE_VIEW))
    assert held.item is item and held.acquired_at == 50.0
    assert dict(held.resources) == {SUBMISSION: 1, LOCAL: 1}
    assert held.controller_generation == admission.controller_generation
    view = admission.view()
    assert dict(view.available) == {SUBMISSION: 2, LOCAL: 1}
    assert view.leased_by_group(item.group.key, LOCAL) == 1
    assert view.running_by_group_and_resource == {item.group.key: {SUBMISSION: 1, LOCAL: 1}}
    assert view.active_leases == admission.active_leases == 1
    result = admission.release(held)
    assert (result.released, result.reason) == (True, "released")
    after = admission.view()
    assert dict(after.available) == {SUBMISSION: 3, LOCAL: 2}
    assert after.groups == {} and after.active_leases == 0
    assert dict(after.observed_max_leased) == {SUBMISSION: 1, LOCAL: 1}


def test_lease_ids_are_unique() -> None:
    admission = controller(capacity=100)
    ids = {
        lease(admission.try_acquire(t, EMPTY_QUEUE_VIEW)).lease_id for t in tasks(group("a"), 50)
    }
    assert len(ids) == 50


def test_no_capacity_on_any_requested_resource() -> None:
    admission = controller(capacity=3, local=1)
    a = group("a")
    lease(admission.try_acquire(task(a, request=SUBMIT_LOCAL), EMPTY_QUEUE_VIEW))
    item = task(a, request=SUBMIT_LOCAL)
    assert admission.is_eligible(item, EMPTY_QUEUE_VIEW) == Refusal(LOCAL, 0)  # typed and falsy
    denied = admission.try_acquire(item, EMPTY_QUEUE_VIEW)
    assert isinstance(denied, TaskAdmissionDenied) and denied.reason == "no_capacity"
    assert denied.snapshot is not None and denied.snapshot.available[LOCAL] == 0
    assert admission.is_eligible(task(a), EMPTY_QUEUE_VIEW)  # submission-only still fits


def test_bad_releases_add_no_capacity() -> None:
    admission = controller(capacity=2)
    other = controller(capacity=2)
    a = group("a")
    first = lease(admission.try_acquire(task(a), EMPTY_QUEUE_VIEW))
    second = lease(admission.try_acquire(task(a), EMPTY_QUEUE_VIEW))
    foreign = lease(other.try_acquire(task(a), EMPTY_QUEUE_VIEW))
    assert admission.release(first).released
    available = dict(admission.view().available)
    forged = dataclasses.replace(second, item=task(group("b")))
    unknown = dataclasses.replace(second, lease_id=second.lease_id + "9")
    outcomes = [
        admission.release(first),
        admission.release(forged),
        admission.release(foreign),
        admission.release(unknown),
        admission.release(dataclasses.replace(second, lease_id="nonsense")),
    ]
    assert [(r.released, r.reason) for r in outcomes] == [
        (False, "duplicate"),
        (False, "stale_lease"),
        (False, "wrong_generation"),
        (False, "unknown_lease"),
        (False, "unknown_lease"),
    ]
    assert all(r.diagnostics["lease_id"] for r in outcomes)
    assert dict(admission.view().available) == available
    assert admission.release(second).released
    assert other.active_leases == 1


def test_shutdown_denies_new_work_but_keeps_releases() -> None:
    admission = controller(capacity=2)
    held = lease(admission.try_acquire(task(group("a")), EMPTY_QUEUE_VIEW))
    admission.shutdown()
    item = task(group("a"))
    assert admission.is_eligible(item, EMPTY_QUEUE_VIEW) is False
    denied = admission.try_acquire(item, EMPTY_QUEUE_VIEW)
    assert isinstance(denied, TaskAdmissionDenied) and denied.reason == "shutdown"
    assert admission.release(held).released and admission.active_leases == 0
    queue = FairTaskQueue()
    queue.enqueue([item])
    summary = admission.explain_blocked(queue.view())
    assert summary.dominant_reasons == ("shutdown",) and summary.queued_count == 1


class RecordingPolicy:
    """Allows all but group `blocked`; returns a debt delta on acquire and release."""

    name = "recording"

    def __init__(self, blocked: str = "", available_after: float | None = None) -> None:
        self.blocked = blocked
        self.available_after = available_after
        self.evaluations = 0
        self.fail_release = False

    def evaluate(self, item: SchedulableTask, queue_view: Any, admission_view: Any) -> Any:
        self.evaluations += 1
        if item.group.key.output_columns == (self.blocked,):
            return TaskAdmissionPolicyDecision(False, "policy_denied", self.available_after)
        return TaskAdmissionPolicyDecision(True, borrowed={SUBMISSION: 1})

    def on_acquire(self, lease: Any, decision: Any) -> PolicyStateDelta:
        return PolicyStateDelta({(lease.item.group.key, SUBMISSION): 2}, {"acquired": 1})

    def on_release(self, lease: Any) -> PolicyStateDelta:
        if self.fail_release:
            raise RuntimeError("policy bug")
        return PolicyStateDelta({(lease.item.group.key, SUBMISSION): -5})


def test_policy_deltas_are_applied_with_the_ledger_change() -> None:
    policy = RecordingPolicy()
    admission = controller(capacity=3, policy=policy)
    a = group("a")
    first = lease(admission.try_acquire(task(a), EMPTY_QUEUE_VIEW))
    second = lease(admission.try_acquire(task(a), EMPTY_QUEUE_VIEW))
    view = admission.view()
    assert view.debt(a.key, SUBMISSION) == 4 and view.policy_counters == {"acquired": 2}
    assert dict(view.available) == {SUBMISSION: 1}  # debt never touches availability
    admission.release(first)
    assert admission.view().debt(a.key, SUBMISSION) == 0  # clamped at zero
    policy.fail_release = True
    result = admission.release(second)
    assert result.released and "policy_error" in result.diagnostics
    assert dict(admission.view().available) == {SUBMISSION: 3}


def test_eligibility_verdict_is_reused_by_the_following_acquire() -> None:
    policy = RecordingPolicy()
    admission = controller(capacity=3, policy=policy)
    queue = FairTaskQueue()
    queue.enqueue(tasks(group("a"), 2))
    selection = queue.select_next(admission.is_eligible)
    assert selection is not None and policy.evaluations == 1
    lease(admission.try_acquire(selection.item, selection.queue_view))
    assert policy.evaluations == 1
    lease(admission.try_acquire(task(group("a")), selection.queue_view))
    assert policy.evaluations == 2


def test_explain_blocked_ranks_reasons_and_reports_the_earliest_deadline() -> None:
    policy = RecordingPolicy(blocked="b", available_after=77.0)
    admission = controller(capacity=1, local=1, policy=policy)
    assert admission.explain_blocked(EMPTY_QUEUE_VIEW).queued_count == 0
    lease(admission.try_acquire(task(group("x"), request=SUBMIT_LOCAL), EMPTY_QUEUE_VIEW))
    queue = FairTaskQueue()
    queue.enqueue(tasks(group("a"), 3) + tasks(group("b"), 1))
    summary = admission.explain_blocked(queue.view())
    assert summary.queued_count == 4
    assert summary.dominant_reasons == ("no_capacity",)
    admission2 = controller(capacity=5, policy=policy)
    summary2 = admission2.explain_blocked(queue.view())
    assert summary2.dominant_reasons == ("policy_denied",)
    assert summary2.available_after == 77.0
    assert summary2.diagnostics["eligible_groups"] == 1
    denied = admission2.try_acquire(task(group("b")), queue.view())
    assert isinstance(denied, TaskAdmissionDenied) and denied.available_after == 77.0


def test_view_json_is_plain() -> None:
    admission = controller(capacity=2, policy=RecordingPolicy())
    lease(admission.try_acquire(task(group("a")), EMPTY_QUEUE_VIEW))
    data = admission.view().as_json()
    assert data["leased"] == {"submission": 1}
    assert data["policy_debt_by_group"] == {"local/default|a": {"submission": 2}}


# -- property: the hard ledger under random acquire/release faults ------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 4),
    st.sampled_from(["strict", "borrow"]),
    st.integers(0, 2**32 - 1),
)
def test_ledger_stays_within_limits_under_faulty_releases(
    capacity: int, local: int, policy: str, seed: int
) -> None:
    rng = random.Random(seed)
    config = TaskAdmissionConfig(
        capacity, {LOCAL: local}, BoundedBorrowPolicyConfig() if policy == "borrow" else NO_POLICY
    )
    admission = TaskAdmissionController(config, ManualClock())
    other = TaskAdmissionController(config, ManualClock())
    specs = [group(f"g{i}", 1 + i) for i in range(3)]
    queue = FairTaskQueue()
    active: list[TaskAdmissionLease] = []
    released: list[TaskAdmissionLease] = []
    limits = {SUBMISSION: capacity, LOCAL: local}
    for _ in range(120):
        roll = rng.random()
        if roll < 0.3:
            spec = rng.choice(specs)
            queue.enqueue(tasks(spec, rng.randint(1, 3), rng.choice([SUBMIT, SUBMIT_LOCAL])))
        elif roll < 0.6:
            selection = queue.select_next(admission.is_eligible)
            if selection is not None:
                decision = admission.try_acquire(selection.item, selection.queue_view)
                held = lease(decision)  # eligible implies admitted
                assert queue.commit(selection) is selection.item
                active.append(held)
            elif len(queue) and not active:
                raise AssertionError("queued work but nothing held and nothing eligible")
        else:
            before = dict(admission.view().leased)
            kind = rng.choice(["good", "duplicate", "stale", "foreign", "unknown"])
            if kind == "good" and active:
                held = active.pop(rng.randrange(len(active)))
                assert admission.release(held).reason == "released"
                released.append(held)
                continue
            if kind == "duplicate" and released:
                result = admission.release(rng.choice(released))
            elif kind == "stale" and active:
                result = admission.release(dataclasses.replace(rng.choice(active), acquired_at=-1))
            elif kind == "foreign":
                stranger = other.try_acquire(task(specs[0]), EMPTY_QUEUE_VIEW)
                if not isinstance(stranger, TaskAdmissionLease):
                    continue
                result = admission.release(stranger)
                other.release(stranger)
            elif active:
                result = admission.release(
                    dataclasses.replace(active[0], lease_id=f"tl0-{rng.randint(0, 9)}")
                )
            else:
                continue
            assert not result.released
            assert dict(admission.view().leased) == before
        view = admission.view()
        for resource, limit in limits.items():
            held_units = sum(h.resources.get(resource, 0) for h in active)
            assert 0 <= view.leased.get(resource, 0) == held_units <= limit
            assert view.available[resource] == limit - held_units
        assert view.active_leases == len(active)
        for facts in view.groups.values():
            assert 0 <= facts.debt.get(SUBMISSION, 0) <= facts.leased.get(SUBMISSION, 0)
    for held in active:
        assert admission.release(held).released
    assert admission.active_leases == 0 and dict(admission.view().leased) == {
        SUBMISSION: 0,
        LOCAL: 0,
    }


NO_POLICY = TaskAdmissionConfig(1).policy  # the default (strict fair) policy config


def test_default_policy_is_strict_fair_and_submission_comes_from_capacity() -> None:
    admission = controller(capacity=2)
    assert admission.policy.name == "strict_fair"
    assert dict(admission.view().limits) == {SUBMISSION: 2}
    assert admission.release(dataclasses.replace(lease_of(admission), lease_id="x")).reason == (
        "unknown_lease"
    )
    assert NO_CHANGE.is_empty


def lease_of(admission: TaskAdmissionController) -> TaskAdmissionLease:
    return lease(admission.try_acquire(task(group("z")), QueueView.from_groups(())))


class CooldownPolicy:
    """Denies one group until a deadline computed from the controller's clock."""

    name = "cooldown"

    def evaluate(self, item: SchedulableTask, queue_view: Any, admission_view: Any) -> Any:
        if item.group.key.output_columns == ("cool",):
            return TaskAdmissionPolicyDecision(False, "policy_denied", admission_view.now + 5.0)
        return TaskAdmissionPolicyDecision(True)

    def on_acquire(self, lease: Any, decision: Any) -> PolicyStateDelta:
        return NO_CHANGE

    def on_release(self, lease: Any) -> PolicyStateDelta:
        return NO_CHANGE


def test_policy_deadlines_come_from_the_injected_clock() -> None:
    clock = ManualClock(100.0)
    admission = controller(capacity=2, policy=CooldownPolicy(), clock=clock)
    queue = FairTaskQueue()
    queue.enqueue(tasks(group("cool"), 2))
    assert queue.select_next(admission.is_eligible) is None
    clock.advance(1.0)
    summary = admission.explain_blocked(queue.view())
    assert summary.dominant_reasons == ("policy_denied",)
    assert summary.available_after == 106.0
    assert admission.view().now == 101.0
