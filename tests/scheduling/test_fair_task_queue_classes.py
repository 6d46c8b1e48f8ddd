"""The queue's request classes: exhausted-resource skipping, mixed requests, order and purity."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduling_support import SUBMIT, SUBMIT_LOCAL, group, task, tasks

from rowloom.clock import ManualClock
from rowloom.scheduling.admission_view import TaskAdmissionLease
from rowloom.scheduling.queue import (
    Eligibility,
    FairTaskQueue,
    QueueSelection,
    QueueView,
    Refusal,
)
from rowloom.scheduling.resources import (
    LOCAL,
    SUBMISSION,
    SchedulableTask,
    SchedulerResourceKey,
    SchedulerResourceRequest,
    TaskGroupKey,
    TaskGroupSpec,
)
from rowloom.scheduling.task_admission import TaskAdmissionConfig, TaskAdmissionController

GPU = SchedulerResourceKey("gpu")
SUBMIT_GPU = SchedulerResourceRequest({SUBMISSION: 1, GPU: 1})
LOCAL_TWO = SchedulerResourceRequest({SUBMISSION: 1, LOCAL: 2})
REQUESTS = (SUBMIT, SUBMIT_LOCAL, SUBMIT_GPU, LOCAL_TWO)

Eligible = Callable[[SchedulableTask, QueueView], Eligibility]


class Ledger:
    """A hard ledger in the admission controller's image, plus per-group refusals."""

    def __init__(self, free: Mapping[SchedulerResourceKey, int], refused: set[TaskGroupKey]):
        self.free = dict(free)
        self.refused = refused
        self.asked: list[SchedulableTask] = []

    def fits(self, item: SchedulableTask) -> bool:
        amounts = item.resource_request.amounts
        return all(amounts[r] <= self.free.get(r, 10**9) for r in amounts)

    def eligible(self, item: SchedulableTask) -> bool:
        return self.fits(item) and item.group.key not in self.refused

    def callback(self, report: bool) -> Eligible:
        """One selection's callback: asking any head twice fails (a scan visits each once)."""
        seen: set[str] = set()

        def is_eligible(item: SchedulableTask, view: QueueView) -> Eligibility:
            assert item.task_id not in seen, "a head was asked twice in one selection"
            seen.add(item.task_id)
            self.asked.append(item)
            for resource, amount in item.resource_request.amounts.items():
                free = self.free.get(resource, 10**9)
                if amount > free:
                    return Refusal(resource, free) if report else False
            return item.group.key not in self.refused

        return is_eligible


# -- skipping ----------------------------------------------------------------------------------


def test_a_refused_select_asks_one_head_per_blocked_class() -> None:
    queue = FairTaskQueue()
    for i in range(200):
        queue.enqueue(tasks(group(f"l{i}"), 3, SUBMIT_LOCAL))
    ledger = Ledger({LOCAL: 0}, set())
    assert queue.select_next(ledger.callback(report=True)) is None
    assert len(ledger.asked) == 1
    ledger.asked.clear()
    assert queue.select_next(ledger.callback(report=False)) is None
    assert len(ledger.asked) == 200  # without the report every head must be asked


def test_groups_blocked_on_an_exhausted_resource_are_skipped_whole() -> None:
    queue = FairTaskQueue()
    local = [group(f"l{i}") for i in range(50)]
    model = group("model")
    for spec in local:
        queue.enqueue(tasks(spec, 2, SUBMIT_LOCAL))
    queue.enqueue(tasks(model, 2, SUBMIT))
    ledger = Ledger({LOCAL: 0}, set())
    selection = queue.select_next(ledger.callback(report=True))
    assert selection is not None and selection.item.group == model
    assert [i.group for i in ledger.asked].count(model) == 1
    assert len(ledger.asked) <= 2  # at most the fairest local head, then the model head


def test_a_larger_request_is_skipped_while_a_smaller_one_still_fits() -> None:
    queue = FairTaskQueue()
    two, one = group("two"), group("one")
    queue.enqueue(tasks(two, 2, LOCAL_TWO))
    queue.enqueue(tasks(one, 2, SUBMIT_LOCAL))
    ledger = Ledger({LOCAL: 1}, set())
    selection = queue.select_next(ledger.callback(report=True))
    assert selection is not None and selection.item.group == one


def test_a_refusal_is_falsy_and_names_what_is_short() -> None:
    refusal = Refusal(LOCAL, 0)
    assert not refusal and refusal == Refusal(LOCAL, 0) and refusal.free == 0


def test_a_report_about_a_resource_the_head_does_not_lack_skips_only_what_it_blocks() -> None:
    queue = FairTaskQueue()
    a, b, gpu = group("a"), group("b"), group("gpu")
    queue.enqueue([task(a), task(b), task(gpu, request=SUBMIT_GPU)])
    asked: list[TaskGroupSpec] = []

    def odd(item: SchedulableTask, view: QueueView) -> Eligibility:
        assert item.group not in asked, "a head was asked twice in one selection"
        asked.append(item.group)
        if item.group == a:
            return Refusal(GPU, 0)  # true, but not why `a` is refused
        return True

    selection = queue.select_next(odd)
    assert selection is not None and selection.item.group == b
    assert gpu not in asked


def test_admission_reports_its_exhausted_resources_to_the_queue() -> None:
    queue = FairTaskQueue()
    admission = TaskAdmissionController(TaskAdmissionConfig(64, {LOCAL: 2}), ManualClock())
    local = [group(f"l{i}") for i in range(40)]
    for spec in local:
        queue.enqueue(tasks(spec, 2, SUBMIT_LOCAL))
    queue.enqueue(tasks(group("model"), 5, SUBMIT))
    leases: list[TaskAdmissionLease] = []
    for _ in range(2):  # fill the local slots
        selection = queue.select_next(admission.is_eligible)
        assert selection is not None and selection.item.resource_request == SUBMIT_LOCAL
        decision = admission.try_acquire(selection.item, selection.queue_view)
        assert isinstance(decision, TaskAdmissionLease) and queue.commit(selection)
        leases.append(decision)
    asked: list[SchedulableTask] = []

    def counting(item: SchedulableTask, view: QueueView) -> Eligibility:
        asked.append(item)
        return admission.is_eligible(item, view)

    selection = queue.select_next(counting)
    assert selection is not None and selection.item.group.key.output_columns == ("model",)
    assert len(asked) <= 2
    for held in leases:
        admission.release(held)
    selection = queue.select_next(admission.is_eligible)
    assert selection is not None and selection.item.resource_request == SUBMIT_LOCAL


# -- properties --------------------------------------------------------------------------------


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[tuple[int, int, int]], dict[SchedulerResourceKey, int]]:
    """Enqueue batches (group, count, request index) and a ledger's free units."""
    batches = draw(
        st.lists(
            st.tuples(st.integers(0, 11), st.integers(1, 4), st.integers(0, len(REQUESTS) - 1)),
            min_size=1,
            max_size=30,
        )
    )
    free = {
        LOCAL: draw(st.integers(0, 3)),
        GPU: draw(st.integers(0, 1)),
        SUBMISSION: draw(st.integers(0, 2)),
    }
    return batches, free


def build(batches: list[tuple[int, int, int]], served: int) -> FairTaskQueue:
    queue = FairTaskQueue()
    specs = [group(f"g{i}", 1 + i % 3) for i in range(12)]
    for g, n, r in batches:
        queue.enqueue(tasks(specs[g], n, REQUESTS[(r + g) % len(REQUESTS)]))
    for _ in range(served):
        selection = queue.select_next(lambda item, view: True)
        if selection is None:
            break
        assert queue.commit(selection) is selection.item
    return queue


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.sets(st.integers(0, 11)), st.integers(0, 12))
def test_skipping_never_changes_the_choice(
    scenario: tuple[list[tuple[int, int, int]], dict[SchedulerResourceKey, int]],
    refused: set[int],
    served: int,
) -> None:
    """A blocked group is never selected; an eligible group is found whenever one exists;
    the choice is the one an exhaustive scan makes; no blocked class is asked twice."""
    batches, free = scenario
    queue = build(batches, served)
    refused_keys = {group(f"g{i}", 1 + i % 3).key for i in refused}
    ledger = Ledger(free, refused_keys)
    before = (queue.view().as_json(), queue.sequence_version, len(queue))
    skipping = queue.select_next(ledger.callback(report=True))
    asked_with_reports = list(ledger.asked)
    ledger.asked.clear()
    exhaustive = queue.select_next(ledger.callback(report=False))
    assert (queue.view().as_json(), queue.sequence_version, len(queue)) == before  # pure
    heads = [f.head for f in queue.view().groups.values()]
    if skipping is None:
        assert exhaustive is None
        assert not any(ledger.eligible(head) for head in heads)
    else:
        assert exhaustive is not None and skipping.item is exhaustive.item
        assert ledger.eligible(skipping.item)
    blocked = Counter(i.resource_request for i in asked_with_reports if not ledger.fits(i))
    assert all(n == 1 for n in blocked.values())  # one ask per blocked request class


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=7), st.integers(1, 100))
def test_weighted_share_holds_across_request_classes(weights: list[int], picks: int) -> None:
    queue = FairTaskQueue()
    specs = [group(f"g{i}", w) for i, w in enumerate(weights)]
    for i, spec in enumerate(specs):  # a group's head changes request class as it is served
        queue.enqueue([task(spec, request=REQUESTS[(i + k) % 4]) for k in range(picks + 1)])
    total = sum(weights)
    counts: Counter[TaskGroupSpec] = Counter()
    for n in range(1, picks + 1):
        selection = queue.select_next(lambda item, view: True)
        assert selection is not None
        counts[selection.item.group] += 1
        assert queue.commit(selection) is selection.item
        for spec in specs:
            assert abs(counts[spec] - n * spec.weight / total) <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(1, 5)), min_size=1, max_size=20))
def test_order_does_not_depend_on_requests_when_all_are_eligible(
    batches: list[tuple[int, int]],
) -> None:
    def drain(request_of: Callable[[int, int], SchedulerResourceRequest]) -> list[str]:
        queue = FairTaskQueue()
        specs = [group(f"g{i}", 1 + i % 4) for i in range(8)]
        for b, (g, n) in enumerate(batches):
            queue.enqueue(
                [task(specs[g], row=b * 10 + k, request=request_of(g, k)) for k in range(n)]
            )
        out = []
        while (selection := queue.select_next(lambda item, view: True)) is not None:
            assert queue.commit(selection) is selection.item
            out.append(selection.item.task_id)
        return out

    assert drain(lambda g, k: SUBMIT) == drain(lambda g, k: REQUESTS[(g * 7 + k) % 4])


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, int, int, int]]:
    ops = st.one_of(
        st.tuples(st.just("enqueue"), st.integers(0, 9), st.integers(1, 4), st.integers(0, 3)),
        st.tuples(st.just("pop"), st.integers(0, 2**10), st.integers(0, 3), st.integers(0, 1)),
    )
    return draw(st.lists(ops, max_size=60))


@settings(max_examples=150, deadline=None)
@given(operations())
def test_mixed_requests_match_a_simple_model(ops: list[tuple[str, int, int, int]]) -> None:
    queue = FairTaskQueue()
    specs = [group(f"g{i}", 1 + i % 3) for i in range(10)]
    model: dict[TaskGroupSpec, deque[SchedulableTask]] = {s: deque() for s in specs}
    for op, a, b, c in ops:
        if op == "enqueue":
            items = [task(specs[a], request=REQUESTS[(c + k) % len(REQUESTS)]) for k in range(b)]
            assert list(queue.enqueue(items)) == [i.task_id for i in items]
            model[specs[a]].extend(items)
        else:
            refused = {s.key for i, s in enumerate(specs) if (a >> i) & 1}
            ledger = Ledger({LOCAL: b, GPU: c}, refused)
            selection: QueueSelection | None = queue.select_next(ledger.callback(report=True))
            heads = [q[0] for q in model.values() if q]
            assert (selection is None) == (not any(ledger.eligible(h) for h in heads))
            if selection is not None:
                assert ledger.eligible(selection.item)
                assert queue.commit(selection) is model[selection.item.group].popleft()
        view = queue.view()
        for s, q in model.items():
            assert view.queued_count(s.key) == len(q)
            for resource in (SUBMISSION, LOCAL, GPU):
                expected = sum(i.resource_request.get(resource) for i in q)
                assert view.demand(s.key, resource) == expected
                if q:
                    assert view.groups[s.key].demand.get(resource, 0) == expected
        demand: Counter[SchedulerResourceKey] = Counter()
        for q in model.values():
            for i in q:
                demand.update(i.resource_request.amounts)
        assert dict(view.queued_demand_by_resource) == dict(demand)
        groups_by_resource = Counter(
            r for q in model.values() for r in {r for i in q for r in i.resource_request.amounts}
        )
        assert dict(view.queued_groups_by_resource) == dict(groups_by_resource)
        assert view == QueueView.from_groups(view.groups.values(), view.sequence_version)


def test_heads_lists_each_queued_group_once() -> None:
    queue = FairTaskQueue()
    a, b = group("a", 2), group("b")
    queue.enqueue(tasks(a, 3, SUBMIT_LOCAL) + tasks(b, 1) + [task(a, request=LOCAL_TWO)])
    view = queue.view()
    assert [(spec, n, head) for spec, n, head in view.heads()] == [
        (f.group, f.queued, f.head) for f in view.groups.values()
    ]


def test_explain_blocked_counts_groups_blocked_on_the_ledger() -> None:
    admission = TaskAdmissionController(TaskAdmissionConfig(10, {LOCAL: 1}), ManualClock())
    queue = FairTaskQueue()
    for i in range(30):
        queue.enqueue(tasks(group(f"l{i}"), 2, SUBMIT_LOCAL))
    queue.enqueue([task(group(f"m{i}")) for i in range(3)])
    held = admission.try_acquire(task(group("x"), request=SUBMIT_LOCAL), queue.view())
    assert isinstance(held, TaskAdmissionLease)
    summary = admission.explain_blocked(queue.view())
    assert summary.queued_count == 63 and summary.dominant_reasons == ("no_capacity",)
    assert summary.diagnostics["blocked_groups_by_reason"] == {"no_capacity": 30}
    assert summary.diagnostics["queued_by_reason"] == {"no_capacity": 60}
    assert summary.diagnostics["eligible_groups"] == 3


# -- refusals across selections (one admission controller, many selections) ---------------------


class CountingAdmission(TaskAdmissionController):
    """Counts eligibility questions (the scheduler passes the bound method, new each time)."""

    asked = 0

    def is_eligible(self, item: SchedulableTask, queue_view: QueueView) -> Eligibility:
        self.asked += 1
        return super().is_eligible(item, queue_view)


def test_every_selection_asks_one_blocked_head_then_skips_its_class() -> None:
    queue = FairTaskQueue()
    admission = CountingAdmission(TaskAdmissionConfig(64, {LOCAL: 1}), ManualClock())
    for i in range(20):
        queue.enqueue(tasks(group(f"l{i}"), 3, SUBMIT_LOCAL))
    queue.enqueue(tasks(group("model"), 3, SUBMIT))
    first = queue.select_next(admission.is_eligible)
    assert first is not None and first.item.resource_request == SUBMIT_LOCAL
    held = admission.try_acquire(first.item, first.queue_view)
    assert isinstance(held, TaskAdmissionLease) and queue.commit(first)
    for _ in range(2):
        admission.asked = 0
        selection = queue.select_next(admission.is_eligible)
        assert selection is not None and selection.item.resource_request == SUBMIT
        assert admission.asked <= 2  # at most the fairest local head, then the model head
    other = queue.select_next(lambda item, view: True)  # another callback: nothing is skipped
    assert other is not None and other.item.resource_request == SUBMIT_LOCAL
    admission.release(held)
    selection = queue.select_next(admission.is_eligible)
    assert selection is not None and selection.item.resource_request == SUBMIT_LOCAL


@settings(max_examples=150, deadline=None)
@given(
    scenarios(),
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(0, 2), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    st.sets(st.integers(0, 11)),
)
def test_refusals_over_many_selections_never_change_the_choice(
    scenario: tuple[list[tuple[int, int, int]], dict[SchedulerResourceKey, int]],
    steps: list[tuple[int, int, int, bool]],
    refused: set[int],
) -> None:
    batches, free = scenario
    queue = build(batches, 0)
    refused_keys = {group(f"g{i}", 1 + i % 3).key for i in refused}
    ledger = Ledger(free, refused_keys)
    for local, gpu, submission, commit in steps:
        ledger.free = {LOCAL: local, GPU: gpu, SUBMISSION: submission}
        chosen = queue.select_next(ledger.callback(report=True))
        exhaustive = queue.select_next(ledger.callback(report=False))
        if chosen is None:
            assert exhaustive is None
        else:
            assert exhaustive is not None and chosen.item is exhaustive.item
            if commit:
                assert queue.commit(chosen) is chosen.item
