from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scheduling_support import group, task, tasks

from rowloom.clock import ManualClock
from rowloom.scheduling.admission_view import TaskAdmissionLease
from rowloom.scheduling.queue import FairTaskQueue, QueueView
from rowloom.scheduling.resources import SUBMISSION, SchedulableTask, TaskGroupSpec
from rowloom.scheduling.task_admission import (
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskAdmissionDenied,
)
from rowloom.scheduling.task_policies import (
    BoundedBorrowPolicyConfig,
    StrictFairPolicyConfig,
    TaskAdmissionPolicyConfig,
    strict_share,
)


def controller(capacity: int, policy: TaskAdmissionPolicyConfig) -> TaskAdmissionController:
    return TaskAdmissionController(TaskAdmissionConfig(capacity, policy=policy), ManualClock())


def dispatch(queue: FairTaskQueue, admission: TaskAdmissionController) -> TaskAdmissionLease | None:
    """One dispatch critical section: select, acquire, commit."""
    selection = queue.select_next(admission.is_eligible)
    if selection is None:
        return None
    decision = admission.try_acquire(selection.item, selection.queue_view)
    assert isinstance(decision, TaskAdmissionLease), decision
    assert queue.commit(selection) is selection.item
    return decision


def fill(queue: FairTaskQueue, admission: TaskAdmissionController) -> list[TaskAdmissionLease]:
    held = []
    while (lease := dispatch(queue, admission)) is not None:
        held.append(lease)
    return held


def by_group(held: list[TaskAdmissionLease]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for lease in held:
        name = lease.item.group.key.output_columns[0]
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_strict_share_arithmetic() -> None:
    a = group("a", 3)
    assert strict_share(a, 10, 4, 0, True, "ceil") == 8  # 7.5 rounded up
    assert strict_share(a, 10, 4, 0, True, "floor") == 7
    assert strict_share(a, 10, 0, 1, False, "floor") == 7  # uncounted group adds itself
    assert strict_share(a, 10, 3, 0, True, "ceil") == 10  # alone: the whole limit
    assert strict_share(group("b"), 2, 100, 0, True, "floor") == 1  # never below one


# -- strict fair ---------------------------------------------------------------------------------


def test_strict_fair_splits_capacity_by_weight() -> None:
    queue, admission = FairTaskQueue(), controller(8, StrictFairPolicyConfig())
    queue.enqueue(tasks(group("a", 3), 20) + tasks(group("b", 1), 20))
    assert by_group(fill(queue, admission)) == {"a": 6, "b": 2}
    summary = admission.explain_blocked(queue.view())
    assert summary.dominant_reasons == ("no_capacity",)


def test_strict_fair_caps_a_group_while_a_peer_still_runs() -> None:
    queue, admission = FairTaskQueue(), controller(10, StrictFairPolicyConfig())
    b = group("b")
    queue.enqueue(tasks(b, 1))
    (b_lease,) = fill(queue, admission)
    queue.enqueue(tasks(group("a"), 20))
    held = fill(queue, admission)
    assert by_group(held) == {"a": 5}  # b runs, so it still counts as competing
    summary = admission.explain_blocked(queue.view())
    assert summary.dominant_reasons == ("group_cap",)
    admission.release(b_lease)
    assert by_group(fill(queue, admission)) == {"a": 5}  # alone now: work conserving


def test_strict_fair_is_work_conserving_for_one_group() -> None:
    queue, admission = FairTaskQueue(), controller(7, StrictFairPolicyConfig())
    queue.enqueue(tasks(group("solo", 2), 30))
    assert len(fill(queue, admission)) == 7


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=5),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
)
def test_strict_fair_never_admits_above_the_weighted_share(
    weights: list[int], capacity: int, seed: int
) -> None:
    rng = random.Random(seed)
    specs = [group(f"g{i}", w) for i, w in enumerate(weights)]
    queue, admission = FairTaskQueue(), controller(capacity, StrictFairPolicyConfig())
    held: list[TaskAdmissionLease] = []
    for _ in range(80):
        if rng.random() < 0.4:
            queue.enqueue(tasks(rng.choice(specs), rng.randint(1, 4)))
        elif rng.random() < 0.5 and held:
            admission.release(held.pop(rng.randrange(len(held))))
        else:
            before_q, before_a = queue.view(), admission.view()
            lease = dispatch(queue, admission)
            if lease is None:
                continue
            spec = lease.item.group
            active = {s.key for s in specs if before_q.is_queued(s.key)}
            active |= {g.key for g in before_a.running_groups()}
            weight = sum(s.weight for s in specs if s.key in active)
            cap = max(1, math.ceil(capacity * spec.weight / weight))
            assert before_a.leased_by_group(spec.key, SUBMISSION) + 1 <= cap
            held.append(lease)


# -- bounded borrow -------------------------------------------------------------------------------


def borrow_setup(
    capacity: int = 12, ceiling: int = 2
) -> tuple[
    FairTaskQueue, TaskAdmissionController, TaskGroupSpec, TaskGroupSpec, TaskAdmissionLease
]:
    """`b` holds one lease with nothing queued; `a` has a deep backlog."""
    queue = FairTaskQueue()
    admission = controller(capacity, BoundedBorrowPolicyConfig(borrow_ceiling=ceiling))
    a, b = group("a"), group("b")
    queue.enqueue(tasks(b, 1))
    (b_lease,) = fill(queue, admission)
    queue.enqueue(tasks(a, 40))
    return queue, admission, a, b, b_lease


def test_borrowing_stops_at_the_ceiling() -> None:
    queue, admission, a, _, _ = borrow_setup(capacity=12, ceiling=2)
    held = fill(queue, admission)
    assert len(held) == 6 + 2  # strict share of 12 between a and b, plus the ceiling
    view = admission.view()
    assert view.debt(a.key, SUBMISSION) == 2
    assert dict(view.available) == {SUBMISSION: 12 - 9}  # debt is not part of the ledger
    assert admission.explain_blocked(queue.view()).dominant_reasons == ("borrow_debt",)
    assert view.policy_counters == {"borrowed_admissions": 2}


def test_an_indebted_group_is_withheld_when_a_peer_queues() -> None:
    queue, admission, a, b, _ = borrow_setup(capacity=12, ceiling=2)
    held_a = fill(queue, admission)
    for lease in held_a[:4]:  # a falls back inside its strict share but still owes debt
        admission.release(lease)
    assert admission.view().debt(a.key, SUBMISSION) == 0  # four completions repaid it
    held_a = held_a[4:]
    fill(queue, admission)  # borrow again up to the ceiling
    assert admission.view().debt(a.key, SUBMISSION) == 2
    admission.release(held_a.pop())  # one completion: debt 1, a now within share
    queue.enqueue(tasks(b, 3))
    item_a = queue.view().groups[a.key].head
    denied = admission.try_acquire(item_a, queue.view())
    assert isinstance(denied, TaskAdmissionDenied) and denied.reason == "borrow_debt"
    lease = dispatch(queue, admission)
    assert lease is not None and lease.item.group == b


def test_over_share_is_denied_under_peer_pressure_without_debt() -> None:
    queue, admission = FairTaskQueue(), controller(4, BoundedBorrowPolicyConfig(borrow_ceiling=3))
    a, b = group("a"), group("b")
    queue.enqueue(tasks(a, 10) + tasks(b, 10))
    assert by_group(fill(queue, admission)) == {"a": 2, "b": 2}
    assert admission.view().policy_debt_by_group_and_resource == {}


def test_single_group_stays_live_under_bounded_borrow() -> None:
    queue, admission = FairTaskQueue(), controller(5, BoundedBorrowPolicyConfig(borrow_ceiling=0))
    queue.enqueue(tasks(group("solo"), 12))
    held = fill(queue, admission)
    assert len(held) == 5
    for lease in held:
        admission.release(lease)
    assert len(fill(queue, admission)) == 5


def test_ceiling_defaults_to_a_fraction_of_the_limit() -> None:
    assert BoundedBorrowPolicyConfig().ceiling(64) == 16
    assert BoundedBorrowPolicyConfig(borrow_ceiling_fraction=0.0).ceiling(3) == 1
    with pytest.raises(ValueError):
        BoundedBorrowPolicyConfig(borrow_ceiling=-1)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=4),
    st.integers(1, 10),
    st.integers(0, 3),
    st.integers(0, 2**32 - 1),
)
def test_bounded_borrow_invariants(
    weights: list[int], capacity: int, ceiling: int, seed: int
) -> None:
    rng = random.Random(seed)
    specs = [group(f"g{i}", w) for i, w in enumerate(weights)]
    queue = FairTaskQueue()
    admission = controller(capacity, BoundedBorrowPolicyConfig(borrow_ceiling=ceiling))
    held: list[TaskAdmissionLease] = []
    for _ in range(100):
        roll = rng.random()
        if roll < 0.35:
            queue.enqueue(tasks(rng.choice(specs), rng.randint(1, 4)))
        elif roll < 0.6 and held:
            admission.release(held.pop(rng.randrange(len(held))))
        else:
            before_q, before_a = queue.view(), admission.view()
            lease = dispatch(queue, admission)
            if lease is None:
                # liveness: something is running whenever queued work waits
                assert not len(queue) or held
                continue
            key = lease.item.group.key
            if before_a.debt(key, SUBMISSION):
                assert not before_q.has_queued_peer(key, SUBMISSION)
            held.append(lease)
        view = admission.view()
        for facts in view.groups.values():
            debt = facts.debt.get(SUBMISSION, 0)
            assert 0 <= debt <= min(ceiling, facts.leased.get(SUBMISSION, 0))
    if len(specs) == 1:  # a single group can always fill the whole capacity
        held += fill(queue, admission)
        assert len(held) == capacity or not len(queue)


def test_evaluate_is_pure() -> None:
    queue, admission, a, _, _ = borrow_setup()
    fill(queue, admission)
    view = queue.view()
    item: SchedulableTask = view.groups[a.key].head
    facts = admission.view()
    policy = admission.policy
    first = [policy.evaluate(item, view, facts) for _ in range(5)]
    assert all(d == first[0] for d in first)
    assert admission.view().as_json() == facts.as_json()
    assert policy.evaluate(task(group("new")), QueueView.from_groups(()), facts).allowed
