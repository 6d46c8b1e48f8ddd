from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scheduling_support import SUBMIT, SUBMIT_LOCAL, group, task, tasks

from rowloom.scheduling.queue import FairTaskQueue, GroupQueueFacts, QueueView
from rowloom.scheduling.resources import LOCAL, SUBMISSION, SchedulableTask, TaskGroupSpec

Eligible = Callable[[SchedulableTask, QueueView], bool]


def always(item: SchedulableTask, view: QueueView) -> bool:
    return True


def pop(queue: FairTaskQueue, is_eligible: Eligible = always) -> SchedulableTask | None:
    selection = queue.select_next(is_eligible)
    if selection is None:
        return None
    committed = queue.commit(selection)
    assert committed is selection.item
    return committed


def drain(queue: FairTaskQueue) -> list[SchedulableTask]:
    out = []
    while (item := pop(queue)) is not None:
        out.append(item)
    return out


# -- ordering ----------------------------------------------------------------------------------


def test_fifo_inside_a_group() -> None:
    queue = FairTaskQueue()
    items = tasks(group("a"), 20)
    queue.enqueue(items)
    assert drain(queue) == items


def test_equal_weights_are_round_robin() -> None:
    queue = FairTaskQueue()
    specs = [group(name) for name in "abcd"]
    for spec in specs:
        queue.enqueue(tasks(spec, 5))
    order = [item.group.key.output_columns[0] for item in drain(queue)]
    assert order == list("abcd") * 5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=7), st.integers(1, 120))
def test_weighted_share_within_one_task_over_every_prefix(weights: list[int], picks: int) -> None:
    queue = FairTaskQueue()
    specs = [group(f"g{i}", w) for i, w in enumerate(weights)]
    for spec in specs:  # enough backlog that every group stays continuously backlogged
        queue.enqueue(tasks(spec, picks + 1))
    total = sum(weights)
    counts: Counter[str] = Counter()
    for n in range(1, picks + 1):
        item = pop(queue)
        assert item is not None
        counts[item.group.key.output_columns[0]] += 1
        for spec in specs:
            share = n * spec.weight / total
            got = counts[spec.key.output_columns[0]]
            assert abs(got - share) <= 1.0, (n, spec.weight, got, share)


def test_an_idle_group_does_not_bank_credit() -> None:
    queue = FairTaskQueue()
    a, b = group("a"), group("b")
    queue.enqueue(tasks(a, 60))
    for _ in range(30):
        pop(queue)
    queue.enqueue(tasks(b, 30))
    order = [item.group.key.output_columns[0] for item in drain(queue)[:20]]
    assert max(Counter(order[i : i + 4])["b"] for i in range(0, 16)) <= 2


def test_work_conserving_when_the_fairest_group_is_ineligible() -> None:
    queue = FairTaskQueue()
    a, b = group("a"), group("b")
    queue.enqueue(tasks(a, 3) + tasks(b, 3))

    def not_a(item: SchedulableTask, view: QueueView) -> bool:
        return item.group != a

    assert [pop(queue, not_a).group for _ in range(3)] == [b, b, b]  # type: ignore[union-attr]
    assert queue.select_next(not_a) is None
    assert len(queue) == 3


def test_each_group_is_asked_at_most_once_per_scan() -> None:
    queue = FairTaskQueue()
    specs = [group(f"g{i}", 1 + i % 3) for i in range(40)]
    for spec in specs:
        queue.enqueue(tasks(spec, 3))
    asked: list[TaskGroupSpec] = []

    def none(item: SchedulableTask, view: QueueView) -> bool:
        asked.append(item.group)
        return False

    assert queue.select_next(none) is None
    assert sorted(asked, key=repr) == sorted(specs, key=repr)


def test_a_callback_that_mutates_the_queue_gets_a_fresh_scan() -> None:
    queue = FairTaskQueue()
    queue.enqueue(tasks(group("a"), 1))
    extra = task(group("b"))

    def enqueue_once(item: SchedulableTask, view: QueueView) -> bool:
        if extra.task_id not in queue:
            queue.enqueue([extra])
        return True

    selection = queue.select_next(enqueue_once)
    assert selection is not None
    assert selection.sequence_version == queue.sequence_version
    assert queue.commit(selection) is selection.item


# -- purity, idempotence, staleness --------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 4)), min_size=1, max_size=25),
    st.sets(st.integers(0, 5)),
    st.integers(0, 10),
)
def test_select_next_never_mutates(
    batches: list[tuple[int, int]], eligible: set[int], served: int
) -> None:
    queue = FairTaskQueue()
    specs = [group(f"g{i}", 1 + i % 3) for i in range(6)]
    for g, n in batches:
        queue.enqueue(tasks(specs[g], n, SUBMIT_LOCAL if g % 2 else SUBMIT))
    for _ in range(served):
        pop(queue)
    allowed = {specs[i] for i in eligible}

    def is_eligible(item: SchedulableTask, view: QueueView) -> bool:
        return item.group in allowed

    before = (queue.view().as_json(), queue.sequence_version, len(queue))
    first = queue.select_next(is_eligible)
    assert (queue.view().as_json(), queue.sequence_version, len(queue)) == before
    second = queue.select_next(is_eligible)
    assert (first is None) == (second is None)
    if first is not None and second is not None:
        assert first.item is second.item and first.sequence_version == second.sequence_version
        assert first.item.group in allowed
    else:
        assert not any(queue.view().is_queued(spec.key) for spec in allowed)


def test_duplicate_enqueue_is_a_no_op() -> None:
    queue = FairTaskQueue()
    items = tasks(group("a"), 3)
    assert list(queue.enqueue(items + items[:1])) == [i.task_id for i in items]
    version, view = queue.sequence_version, queue.view().as_json()
    assert list(queue.enqueue(items)) == []
    assert (queue.sequence_version, queue.view().as_json(), len(queue)) == (version, view, 3)


def test_a_committed_task_can_be_enqueued_again_for_a_retry() -> None:
    queue = FairTaskQueue()
    item = task(group("a"))
    queue.enqueue([item])
    assert pop(queue) is item
    assert list(queue.enqueue([item])) == [item.task_id]


def test_a_stale_commit_returns_none_and_removes_nothing() -> None:
    queue = FairTaskQueue()
    queue.enqueue(tasks(group("a"), 2))
    selection = queue.select_next(always)
    assert selection is not None
    queue.enqueue([task(group("b"))])
    assert queue.commit(selection) is None
    assert len(queue) == 3
    fresh = queue.select_next(always)
    assert fresh is not None and queue.commit(fresh) is fresh.item
    assert queue.commit(fresh) is None  # a selection commits once


def test_inconsistent_group_weight_is_rejected_before_anything_is_added() -> None:
    queue = FairTaskQueue()
    queue.enqueue([task(group("a", 1))])
    version = queue.sequence_version
    with pytest.raises(ValueError):
        queue.enqueue([task(group("b")), task(group("a", 2))])
    with pytest.raises(ValueError):
        queue.enqueue([task(group("c", 1)), task(group("c", 3))])
    assert len(queue) == 1 and queue.sequence_version == version


# -- views -------------------------------------------------------------------------------------


def test_view_reports_raw_queued_facts() -> None:
    queue = FairTaskQueue()
    a, b = group("a", 2), group("b", 3)
    queue.enqueue(tasks(a, 2, SUBMIT_LOCAL) + tasks(b, 1))
    view = queue.view()
    assert view.queued_total == 3 and view.queued_weight_total == 5
    assert view.queued_by_group == {a.key: 2, b.key: 1}
    assert view.queued_demand_by_group[a.key] == {SUBMISSION: 2, LOCAL: 2}
    assert view.first_request_by_group == {a.key: SUBMIT_LOCAL, b.key: SUBMIT}
    assert dict(view.queued_demand_by_resource) == {SUBMISSION: 3, LOCAL: 2}
    assert dict(view.queued_groups_by_resource) == {SUBMISSION: 2, LOCAL: 1}
    assert view.peer_demand(a.key, SUBMISSION) == 1 and view.peer_demand(b.key, LOCAL) == 2
    assert view.has_queued_peer(a.key, SUBMISSION) and not view.has_queued_peer(a.key, LOCAL)
    assert view.has_queued_peer(b.key, LOCAL)
    assert view.peer_demand_by_resource(b.key) == {SUBMISSION: 2, LOCAL: 2}
    assert view == QueueView.from_groups(view.groups.values(), view.sequence_version)
    facts = view.facts(a.key)
    assert facts is not None and facts.demand_of(LOCAL) == view.demand(a.key, LOCAL) == 2
    assert view.facts(group("nobody").key) is None


def test_views_are_snapshots() -> None:
    queue = FairTaskQueue()
    a = group("a")
    queue.enqueue(tasks(a, 2))
    old = queue.view()
    frozen = old.as_json()
    queue.enqueue(tasks(group("b"), 40))
    pop(queue)
    assert old.as_json() == frozen
    assert queue.view() is queue.view()  # shared until the queue changes


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    ops = st.one_of(
        st.tuples(st.just("enqueue"), st.integers(0, 39), st.integers(1, 5)),
        st.tuples(st.just("pop"), st.integers(0, 2**20), st.integers(0, 1)),
        st.tuples(st.just("stale"), st.integers(0, 39), st.integers(0, 1)),
    )
    return draw(st.lists(ops, max_size=60))


@settings(max_examples=150, deadline=None)
@given(operations())
def test_queue_matches_a_simple_model(ops: list[tuple[str, int, int]]) -> None:
    queue = FairTaskQueue()
    specs = [group(f"g{i}", 1 + i % 4) for i in range(40)]
    model: dict[TaskGroupSpec, deque[SchedulableTask]] = {s: deque() for s in specs}
    for op, a, b in ops:
        if op == "enqueue":
            spec = specs[a]
            items = tasks(spec, b, SUBMIT_LOCAL if a % 3 == 0 else SUBMIT)
            assert list(queue.enqueue(items)) == [i.task_id for i in items]
            model[spec].extend(items)
        elif op == "pop":
            allowed = {s for i, s in enumerate(specs) if (a >> (i % 20)) & 1 or b}
            selection = queue.select_next(lambda item, view, ok=allowed: item.group in ok)
            heads = {s for s, q in model.items() if q and s in allowed}
            assert (selection is None) == (not heads)
            if selection is not None:
                assert selection.item is model[selection.item.group][0]
                assert queue.commit(selection) is model[selection.item.group].popleft()
        else:
            selection = queue.select_next(always)
            if selection is not None:
                extra = task(specs[a])
                queue.enqueue([extra])
                model[specs[a]].append(extra)
                assert queue.commit(selection) is None
        view = queue.view()
        expected = {s.key: len(q) for s, q in model.items() if q}
        assert view.queued_by_group == expected
        assert view.queued_total == len(queue) == sum(expected.values())
        assert view.queued_weight_total == sum(s.weight for s, q in model.items() if q)
        for s, q in model.items():
            assert view.first_request(s.key) == (q[0].resource_request if q else None)
            assert view.demand(s.key, LOCAL) == sum(i.resource_request.get(LOCAL) for i in q)
        assert view == QueueView.from_groups(view.groups.values(), view.sequence_version)
    remaining = drain(queue)
    assert Counter(i.task_id for i in remaining) == Counter(
        i.task_id for q in model.values() for i in q
    )


def test_views_built_from_facts_skip_empty_groups() -> None:
    head = task(group("a"))
    view = QueueView.from_groups(
        [
            GroupQueueFacts(group("a"), 2, {SUBMISSION: 2}, head),
            GroupQueueFacts(group("b"), 0, {}, head),
        ]
    )
    assert view.queued_by_group == {group("a").key: 2}
    assert not view.is_queued(group("b").key) and view.queued_count(group("b").key) == 0
