from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scheduling_support import SUBMIT, group

from rowloom.config.scheduling import SchedulingMetadata
from rowloom.scheduling.completion import ALL_ROWS_DROPPED, ColumnNode, CompletionTracker
from rowloom.scheduling.resolver import TaskSchedulingResolver
from rowloom.scheduling.resources import SchedulableTask, task_id_of
from rowloom.scheduling.task_model import Task


def to_schedulable(task: Task) -> SchedulableTask:
    return SchedulableTask(task_id_of(task), task, group(task.column), SUBMIT)


def tracker_for(columns: list[ColumnNode]) -> CompletionTracker:
    return CompletionTracker(columns, to_schedulable)


def ack(tracker: CompletionTracker) -> list[Task]:
    """Enqueue-and-acknowledge the whole frontier, as the scheduler does."""
    frontier = list(tracker.ready_frontier())
    tracker.mark_enqueued([item.task_id for item in frontier])
    return [item.task for item in frontier]


DIAMOND = [
    ColumnNode("seed", (), "batch"),
    ColumnNode("a", ("seed",)),
    ColumnNode("b", ("a",)),
    ColumnNode("c", ("seed",)),
    ColumnNode("summary", ("b", "c"), "batch"),
]


# -- structure -------------------------------------------------------------------------------


def test_columns_must_be_topologically_ordered_and_unique() -> None:
    with pytest.raises(ValueError):
        tracker_for([ColumnNode("b", ("a",)), ColumnNode("a")])
    with pytest.raises(ValueError):
        tracker_for([ColumnNode("a"), ColumnNode("a")])
    with pytest.raises(ValueError):
        tracker_for([ColumnNode("a", ("a",))])
    assert tracker_for([ColumnNode("a"), ColumnNode("b", ("a", "a"))]).columns[1].upstream == ("a",)


def test_root_tasks_come_through_the_frontier_in_order() -> None:
    tracker = tracker_for([ColumnNode("x"), ColumnNode("y"), ColumnNode("z", ("x",))])
    newly = tracker.admit_row_group(1, 2)
    tracker.admit_row_group(0, 2)
    expected = [
        Task.cell("x", 0, 0),
        Task.cell("x", 0, 1),
        Task.cell("y", 0, 0),
        Task.cell("y", 0, 1),
        Task.cell("x", 1, 0),
        Task.cell("x", 1, 1),
        Task.cell("y", 1, 0),
        Task.cell("y", 1, 1),
    ]
    assert [i.task for i in tracker.ready_frontier()] == expected
    assert {i.task for i in newly} == {t for t in expected if t.row_group == 1}
    assert tracker.pending_tasks(0) == 6


def test_frontier_holds_until_acknowledged_and_ack_is_idempotent() -> None:
    tracker = tracker_for([ColumnNode("x")])
    tracker.admit_row_group(0, 3)
    first = tracker.ready_frontier()
    assert tracker.ready_frontier() == first
    assert tracker.mark_enqueued([first[0].task_id, "unknown"]) == 1
    assert tracker.mark_enqueued([first[0].task_id]) == 0
    assert [i.task for i in tracker.ready_frontier()] == [
        Task.cell("x", 0, 1),
        Task.cell("x", 0, 2),
    ]


def test_reading_the_frontier_does_not_rebuild_tasks() -> None:
    calls: list[Task] = []

    def counting(task: Task) -> SchedulableTask:
        calls.append(task)
        return to_schedulable(task)

    tracker = CompletionTracker([ColumnNode("x"), ColumnNode("y", ("x",))], counting)
    tracker.admit_row_group(0, 4)
    for _ in range(3):
        tracker.ready_frontier()
    assert len(calls) == 4
    ack(tracker)
    tracker.mark_complete(Task.cell("x", 0, 2))
    assert calls[-1] == Task.cell("y", 0, 2) and len(calls) == 5


def test_cell_waits_for_its_own_row_and_batch_for_all_rows() -> None:
    tracker = tracker_for(DIAMOND)
    tracker.admit_row_group(0, 2)
    assert ack(tracker) == [Task.batch("seed", 0)]
    newly = tracker.mark_complete(Task.batch("seed", 0))
    assert {i.task for i in newly} == {
        Task.cell("a", 0, 0),
        Task.cell("a", 0, 1),
        Task.cell("c", 0, 0),
        Task.cell("c", 0, 1),
    }
    ack(tracker)
    assert [i.task for i in tracker.mark_complete(Task.cell("a", 0, 1))] == [Task.cell("b", 0, 1)]
    ack(tracker)
    for t in (Task.cell("b", 0, 1), Task.cell("c", 0, 0), Task.cell("c", 0, 1)):
        assert tracker.mark_complete(t) == ()
    tracker.mark_complete(Task.cell("a", 0, 0))
    ack(tracker)
    assert [i.task for i in tracker.mark_complete(Task.cell("b", 0, 0))] == [
        Task.batch("summary", 0)
    ]
    ack(tracker)
    assert not tracker.is_row_group_complete(0)
    tracker.mark_complete(Task.batch("summary", 0))
    assert tracker.is_row_group_complete(0) and tracker.pending_tasks(0) == 0


def test_completing_a_task_that_is_not_enqueued_is_an_error() -> None:
    tracker = tracker_for(DIAMOND)
    tracker.admit_row_group(0, 1)
    with pytest.raises(ValueError):
        tracker.mark_complete(Task.batch("seed", 0))  # ready, not yet enqueued
    with pytest.raises(ValueError):
        tracker.mark_complete(Task.cell("a", 0, 0))  # still waiting
    with pytest.raises(ValueError):
        tracker.mark_complete(Task.cell("seed", 0, 0))  # wrong granularity
    with pytest.raises(KeyError):
        tracker.mark_complete(Task.cell("a", 9, 0))  # unknown row group


# -- retries, pruning, compaction --------------------------------------------------------------


def test_requeue_sends_a_retry_back_through_the_frontier() -> None:
    tracker = tracker_for([ColumnNode("x")])
    tracker.admit_row_group(0, 1)
    (t,) = ack(tracker)
    assert tracker.requeue(t) is True
    assert tracker.requeue(t) is False  # already waiting in the frontier
    assert [i.task for i in tracker.ready_frontier()] == [t]
    ack(tracker)
    tracker.mark_complete(t)
    assert tracker.is_row_group_complete(0)
    with pytest.raises(ValueError):
        tracker.requeue(t)


def test_dropping_a_row_prunes_its_cells_and_releases_batches() -> None:
    tracker = tracker_for(DIAMOND)
    tracker.admit_row_group(0, 3)
    ack(tracker)
    tracker.mark_complete(Task.batch("seed", 0))
    ack(tracker)  # a and c cells of every row are enqueued
    for r in (0, 2):
        tracker.mark_complete(Task.cell("a", 0, r))
        tracker.mark_complete(Task.cell("c", 0, r))
    ack(tracker)
    tracker.mark_complete(Task.cell("b", 0, 0))
    assert tracker.drop_row(0, 1, "bad_output") == ()
    assert tracker.is_dropped(Task.cell("c", 0, 1)) and tracker.is_dropped(Task.cell("b", 0, 1))
    assert tracker.mark_complete(Task.cell("c", 0, 1)) == ()  # late finisher is ignored
    newly = tracker.mark_complete(Task.cell("b", 0, 2))
    assert [i.task for i in newly] == [Task.batch("summary", 0)]
    assert tracker.live_row_indices(0) == [0, 2]
    assert tracker.dropped_rows(0) == {1: "bad_output"}
    assert tracker.dropped_row_counts() == {"bad_output": 1}


def test_dropping_the_last_pending_row_makes_the_batch_ready() -> None:
    tracker = tracker_for([ColumnNode("a"), ColumnNode("s", ("a",), "batch")])
    tracker.admit_row_group(0, 2)
    ack(tracker)
    tracker.mark_complete(Task.cell("a", 0, 0))
    assert [i.task for i in tracker.drop_row(0, 1, "x")] == [Task.batch("s", 0)]


def test_dropping_every_row_drops_the_row_group() -> None:
    tracker = tracker_for([ColumnNode("a"), ColumnNode("s", ("a",), "batch")])
    tracker.admit_row_group(0, 2)
    ack(tracker)
    tracker.drop_row(0, 0, "x")
    assert tracker.drop_row(0, 1, "x") == ()
    assert tracker.row_group_drop_reason(0) == ALL_ROWS_DROPPED
    assert tracker.is_row_group_complete(0) and tracker.ready_frontier() == ()


def test_dropping_a_row_group_clears_its_frontier() -> None:
    tracker = tracker_for([ColumnNode("a")])
    tracker.admit_row_group(0, 3)
    tracker.admit_row_group(1, 1)
    tracker.drop_row_group(0, "batch_failed")
    assert [i.task for i in tracker.ready_frontier()] == [Task.cell("a", 1, 0)]
    assert tracker.is_row_group_complete(0)
    assert tracker.requeue(Task.cell("a", 0, 0)) is False
    assert tracker.dropped_row_group_counts() == {"batch_failed": 1}


def test_compaction_forgets_a_complete_row_group() -> None:
    tracker = tracker_for([ColumnNode("a")])
    tracker.admit_row_group(0, 2)
    (t0, t1) = ack(tracker)
    tracker.mark_complete(t0)
    with pytest.raises(ValueError):
        tracker.compact_row_group(0)
    tracker.drop_row(0, 1, "x")
    tracker.compact_row_group(0)
    assert tracker.row_groups() == ()
    assert tracker.is_row_group_complete(0) and tracker.pending_tasks(0) == 0
    assert tracker.mark_complete(t1) == ()  # a straggler of a dropped row
    assert tracker.is_dropped(t1)
    assert tracker.dropped_row_counts() == {"x": 1}
    with pytest.raises(KeyError):
        tracker.dropped_rows(0)
    with pytest.raises(ValueError):
        tracker.admit_row_group(0, 2)


# -- property: random DAGs, random completion orders, retries and drops ------------------------


@st.composite
def dags(draw: st.DrawFn) -> list[ColumnNode]:
    n = draw(st.integers(1, 6))
    columns = []
    for i in range(n):
        ups = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        granularity = draw(st.sampled_from(["cell", "batch"]))
        columns.append(ColumnNode(f"c{i}", tuple(f"c{u}" for u in ups), granularity))
    return columns


@dataclass
class Sim:
    """A scheduler stand-in that checks every frontier against the DAG's rules."""

    columns: list[ColumnNode]
    rows: dict[int, int]
    rng: random.Random
    retry_p: float
    drop_p: float
    tracker: CompletionTracker = field(init=False)
    done: set[Task] = field(default_factory=set)
    handed_out: set[Task] = field(default_factory=set)
    in_flight: list[Task] = field(default_factory=list)
    dropped_rows: set[tuple[int, int]] = field(default_factory=set)
    pruned: set[Task] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.tracker = tracker_for(self.columns)
        self.order = {c.name: i for i, c in enumerate(self.columns)}

    def live_rows(self, g: int) -> list[int]:
        return [r for r in range(self.rows[g]) if (g, r) not in self.dropped_rows]

    def inputs_done(self, t: Task) -> bool:
        column = self.columns[self.order[t.column]]
        for up in column.upstream:
            if self.columns[self.order[up]].granularity == "batch":
                needed = [Task.batch(up, t.row_group)]
            elif t.task_type == "cell":
                needed = [Task.cell(up, t.row_group, t.row_index or 0)]
            else:
                needed = [Task.cell(up, t.row_group, r) for r in self.live_rows(t.row_group)]
            if not all(n in self.done for n in needed):
                return False
        return True

    def take_frontier(self) -> None:
        frontier = list(self.tracker.ready_frontier())
        keys = [
            (i.task.row_group, self.order[i.task.column], i.task.row_index or -1) for i in frontier
        ]
        assert keys == sorted(keys)
        for item in frontier:
            t = item.task
            assert t not in self.handed_out, f"{t} handed out twice"
            assert t not in self.done
            assert t.task_type == "batch" or (t.row_group, t.row_index) not in self.dropped_rows
            assert self.live_rows(t.row_group), f"{t} handed out after its row group was dropped"
            assert self.inputs_done(t), f"{t} ready before its inputs"
            self.handed_out.add(t)
            self.in_flight.append(t)
        self.tracker.mark_enqueued([i.task_id for i in frontier])
        assert self.tracker.ready_frontier() == ()

    def finish_one(self) -> None:
        t = self.in_flight.pop(self.rng.randrange(len(self.in_flight)))
        roll = self.rng.random()
        if roll < self.retry_p:
            if self.tracker.requeue(t):
                self.handed_out.discard(t)
        elif roll < self.retry_p + self.drop_p and t.task_type == "cell":
            g, r = t.row_group, t.row_index or 0
            if (g, r) not in self.dropped_rows:
                self.dropped_rows.add((g, r))
                for c in self.columns:
                    cell = Task.cell(c.name, g, r)
                    if c.granularity == "cell" and cell not in self.done:
                        self.pruned.add(cell)
            self.tracker.drop_row(g, r, "failed")
        else:
            dropped = self.tracker.is_dropped(t)
            self.tracker.mark_complete(t)
            if not dropped:
                self.done.add(t)

    def run(self) -> None:
        waiting = sorted(self.rows)
        while waiting or self.in_flight:
            if waiting and (not self.in_flight or self.rng.random() < 0.2):
                g = waiting.pop(0)
                self.tracker.admit_row_group(g, self.rows[g])
            self.take_frontier()
            if self.in_flight:
                self.finish_one()
            self.take_frontier()

    def check_final(self) -> None:
        tracker = self.tracker
        for g, n in self.rows.items():
            assert tracker.is_row_group_complete(g)
            group_dropped = not self.live_rows(g)
            if group_dropped:
                assert tracker.row_group_drop_reason(g) == ALL_ROWS_DROPPED
            for c in self.columns:
                if c.granularity == "batch":
                    # a dropped row group may have finished some batches before its last drop
                    assert group_dropped or Task.batch(c.name, g) in self.done
                    continue
                for r in range(n):
                    cell = Task.cell(c.name, g, r)
                    # exactly one of: produced, or pruned because its row was dropped first
                    assert (cell in self.done) != (cell in self.pruned), cell
        assert sum(tracker.dropped_row_counts().values()) == len(self.dropped_rows)
        for g in self.rows:
            tracker.compact_row_group(g)
        assert tracker.row_groups() == () and tracker.ready_frontier() == ()


@settings(max_examples=150, deadline=None)
@given(
    dags(),
    st.lists(st.integers(1, 5), min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_every_task_runs_once_in_dependency_order(
    columns: list[ColumnNode], sizes: list[int], seed: int
) -> None:
    sim = Sim(columns, dict(enumerate(sizes)), random.Random(seed), retry_p=0.1, drop_p=0.0)
    sim.run()
    sim.check_final()
    assert not sim.pruned


@settings(max_examples=150, deadline=None)
@given(
    dags(),
    st.lists(st.integers(1, 5), min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_dropped_rows_prune_exactly_their_pending_cells(
    columns: list[ColumnNode], sizes: list[int], seed: int
) -> None:
    sim = Sim(columns, dict(enumerate(sizes)), random.Random(seed), retry_p=0.05, drop_p=0.15)
    sim.run()
    sim.check_final()


def test_a_resolver_can_stand_in_for_the_mapping() -> None:
    class Local:
        def get_scheduling_metadata(self) -> SchedulingMetadata:
            return SchedulingMetadata.local()

    resolver = TaskSchedulingResolver()
    resolver.resolve("x", Local())
    tracker = CompletionTracker([ColumnNode("x")], resolver)
    tracker.admit_row_group(0, 1)
    (item,) = tracker.ready_frontier()
    assert item.group is resolver.resolved("x").group
