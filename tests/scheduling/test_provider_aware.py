"""Provider-aware task admission: a cooled-down or saturated provider does not hold every slot.

Pressure comes from a fake `RequestPressureReader` (and, in one test, from the real request
controller through the builder's bridge). Each test dispatches through the real queue and
controller, the way the scheduler does.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduling_support import task, tasks

from rowloom.clock import ManualClock
from rowloom.scheduling import (
    BoundedBorrowPolicyConfig,
    FairTaskQueue,
    ProviderAwarePolicyConfig,
    ProviderAwareTaskAdmissionPolicy,
    RequestPressure,
    TaskAdmissionConfig,
    TaskAdmissionController,
    TaskAdmissionLease,
    TaskGroupKey,
    TaskGroupSpec,
)
from rowloom.scheduling.policy_factory import build_policy

CONFIG = ProviderAwarePolicyConfig(base=BoundedBorrowPolicyConfig())


class FakePressure:
    """Pressure by provider name; counts reads. Values are frozen, so a reader cannot mutate."""

    def __init__(self) -> None:
        self.by_provider: dict[str, RequestPressure] = {}
        self.reads = 0

    def set(
        self,
        provider: str,
        *,
        limit: int = 4,
        in_flight: int = 0,
        waiters: int = 0,
        available: int | None = None,
        blocked_until: float | None = None,
    ) -> None:
        free = max(0, limit - in_flight) if available is None else available
        self.by_provider[provider] = RequestPressure(
            f"{provider}/m/chat", in_flight, limit, waiters, free, blocked_until
        )

    def pressure(self, identity: tuple[str, ...]) -> RequestPressure | None:
        self.reads += 1
        return self.by_provider.get(identity[1])


def model_group(provider: str, column: str, weight: int = 4) -> TaskGroupSpec:
    return TaskGroupSpec(TaskGroupKey(("model", provider, "m", "chat"), (column,)), weight)


def controller(
    capacity: int, reader: FakePressure, clock: ManualClock | None = None
) -> TaskAdmissionController:
    config = TaskAdmissionConfig(capacity, policy=CONFIG)
    return TaskAdmissionController(
        config, clock or ManualClock(), policy=build_policy(config.policy, reader)
    )


def fill(queue: FairTaskQueue, admission: TaskAdmissionController) -> list[TaskAdmissionLease]:
    """Dispatch (select, acquire, commit) until nothing is eligible."""
    held = []
    while (selection := queue.select_next(admission.is_eligible)) is not None:
        lease = admission.try_acquire(selection.item, selection.queue_view)
        assert isinstance(lease, TaskAdmissionLease), lease
        assert queue.commit(selection) is selection.item
        held.append(lease)
    return held


def count(held: list[TaskAdmissionLease]) -> dict[str, int]:
    out: dict[str, int] = {}
    for lease in held:
        name = lease.item.group.key.output_columns[0]
        out[name] = out.get(name, 0) + 1
    return out


def test_a_cooling_down_provider_is_withheld_while_another_provider_has_work() -> None:
    clock = ManualClock()
    reader = FakePressure()
    reader.set("a", blocked_until=clock.monotonic() + 2.0)
    reader.set("b", limit=4)
    queue, admission = FairTaskQueue(), controller(40, reader, clock)
    queue.enqueue(tasks(model_group("a", "a"), 30) + tasks(model_group("b", "b"), 30))

    held = fill(queue, admission)

    # b gets its waiting bound (limit 4 + headroom 2); a gets nothing while it cools down
    assert count(held) == {"b": 6}
    summary = admission.explain_blocked(queue.view())
    assert summary.available_after == clock.monotonic() + 2.0  # the scheduler wakes then
    assert "policy_denied" in summary.dominant_reasons

    reader.set("a", limit=3)  # the cooldown ended at a cut limit
    clock.advance(2.0)
    assert count(fill(queue, admission)) == {"a": 5}  # up to a's own waiting bound (3 + 2)


def test_a_cooling_down_provider_alone_is_still_admitted() -> None:
    clock = ManualClock()
    reader = FakePressure()
    reader.set("a", blocked_until=clock.monotonic() + 5.0, waiters=50, available=0)
    queue, admission = FairTaskQueue(), controller(10, reader, clock)
    queue.enqueue(tasks(model_group("a", "a"), 30))

    assert count(fill(queue, admission)) == {"a": 10}  # single-group work stays live
    assert admission.drain_advisory_skips() == ()


def test_groups_sharing_a_resource_share_one_waiting_bound() -> None:
    reader = FakePressure()
    reader.set("a", limit=6)  # bound 6 + 3 = 9
    queue, admission = FairTaskQueue(), controller(40, reader)
    groups = [model_group("a", f"a{i}") for i in range(3)]
    local = TaskGroupSpec(TaskGroupKey(("local", "default"), ("x",)), 1)
    queue.enqueue([t for g in groups for t in tasks(g, 20)] + [task(local) for _ in range(60)])

    held = [lease for lease in fill(queue, admission) if lease.item.group.key.kind == "model"]

    assert len(held) == 9  # not more: the rest would only wait inside request admission
    assert sorted(count(held).values()) == [3, 3, 3]
    assert {s.why for s in admission.drain_advisory_skips()} == {"waiting_bound"}
    admission.release(held[0])
    assert count(fill(queue, admission)) in ({"a0": 1}, {"a1": 1}, {"a2": 1})


def test_groups_of_one_resource_alone_are_not_withheld() -> None:
    clock = ManualClock()
    reader = FakePressure()
    reader.set("a", limit=2, blocked_until=clock.monotonic() + 5.0)
    queue, admission = FairTaskQueue(), controller(12, reader, clock)
    queue.enqueue([t for i in range(3) for t in tasks(model_group("a", f"a{i}"), 10)])

    assert len(fill(queue, admission)) == 12  # no other resource could use the slots
    assert admission.drain_advisory_skips() == ()


def test_a_saturated_resource_is_withheld_before_its_bound() -> None:
    reader = FakePressure()
    reader.set("a", limit=4)
    reader.set("b", limit=4)
    queue, admission = FairTaskQueue(), controller(40, reader)
    queue.enqueue(tasks(model_group("a", "a"), 2))
    assert count(fill(queue, admission)) == {"a": 2}  # alone: admitted
    reader.set("a", limit=4, in_flight=4, waiters=2)  # no capacity, headroom 2 already waiting
    queue.enqueue(tasks(model_group("a", "a"), 10) + tasks(model_group("b", "b"), 10))

    assert count(fill(queue, admission)) == {"b": 6}  # a's bound (6) is not reached: saturation
    skips = admission.drain_advisory_skips()
    assert [(s.item.group.key.output_columns, s.why) for s in skips] == [
        (("a",), "saturated"),
        (("b",), "waiting_bound"),
    ]
    assert skips[0].resource == "a/m/chat"
    assert skips[0].diagnostics["waiters"] == 2


def test_withheld_peers_do_not_cap_the_healthy_group_below_its_bound() -> None:
    clock = ManualClock()
    reader = FakePressure()
    reader.set("a", blocked_until=clock.monotonic() + 2.0)
    reader.set("b", limit=4)
    a_groups = [model_group("a", f"a{i}", weight=8) for i in range(4)]
    b = model_group("b", "b", weight=2)
    work = [t for g in a_groups for t in tasks(g, 10)] + tasks(b, 10)

    # bounded borrow alone: a's groups take their shares, b is capped at ceil(40 * 2 / 34) = 3
    queue, plain = (
        FairTaskQueue(),
        TaskAdmissionController(
            TaskAdmissionConfig(40, policy=BoundedBorrowPolicyConfig()), ManualClock()
        ),
    )
    queue.enqueue(work)
    assert count(fill(queue, plain))["b"] == 3

    queue, aware = FairTaskQueue(), controller(40, reader, clock)
    queue.enqueue(work)
    assert count(fill(queue, aware)) == {"b": 6}  # b's own waiting bound, not its share


def test_skips_are_recorded_once_per_episode_and_reopen_after_an_admission() -> None:
    clock = ManualClock()
    reader = FakePressure()
    reader.set("a", blocked_until=clock.monotonic() + 1.0)
    reader.set("b", limit=50)
    queue, admission = FairTaskQueue(), controller(4, reader, clock)
    queue.enqueue(tasks(model_group("a", "a"), 10) + tasks(model_group("b", "b"), 10))

    held = fill(queue, admission)
    for _ in range(5):  # many scans, one episode
        assert queue.select_next(admission.is_eligible) is None
        admission.explain_blocked(queue.view())
    first = admission.drain_advisory_skips()
    assert [(s.item.group.key.output_columns, s.why) for s in first] == [(("a",), "cooldown")]
    assert first[0].available_after == clock.monotonic() + 1.0
    assert admission.drain_advisory_skips() == ()

    reader.set("a", limit=4)
    clock.advance(1.0)
    admission.release(held[0])
    assert count(fill(queue, admission)) == {"a": 1}  # the episode ends with an admission
    reader.set("a", blocked_until=clock.monotonic() + 1.0)
    admission.release(held[1])
    assert count(fill(queue, admission)) == {"b": 1}
    assert [s.why for s in admission.drain_advisory_skips()] == ["cooldown"]  # a new episode
    assert admission.view().policy_counters["advisory_skip_episodes"] == 2


def test_without_a_reader_the_policy_is_its_base() -> None:
    queue, admission = (
        FairTaskQueue(),
        TaskAdmissionController(TaskAdmissionConfig(8, policy=CONFIG), ManualClock()),
    )
    assert isinstance(admission.policy, ProviderAwareTaskAdmissionPolicy)
    assert admission.policy.name == "provider_aware+bounded_borrow"
    queue.enqueue(tasks(model_group("a", "a"), 10) + tasks(model_group("b", "b"), 10))
    assert count(fill(queue, admission)) == {"a": 4, "b": 4}


def test_local_groups_are_never_withheld_and_never_read_pressure() -> None:
    reader = FakePressure()
    queue, admission = FairTaskQueue(), controller(6, reader)
    local = TaskGroupSpec(TaskGroupKey(("local", "default"), ("x",)), 1)
    queue.enqueue([task(local) for _ in range(10)])
    assert len(fill(queue, admission)) == 6
    assert reader.reads == 0


# -- invariants ------------------------------------------------------------------------------

pressures = st.fixed_dictionaries(
    {
        "limit": st.integers(1, 8),
        "in_flight": st.integers(0, 8),
        "waiters": st.integers(0, 10),
        "blocked": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 40),
    providers=st.lists(st.tuples(pressures, st.integers(1, 3), st.integers(1, 12)), max_size=3),
    local=st.integers(0, 5),
)
def test_withholding_is_temporary_and_contested_resources_stay_within_their_bound(
    capacity: int, providers: list[tuple[dict[str, int | bool], int, int]], local: int
) -> None:
    """After dispatching all it can: if work is left, a lease is held or a deadline is known
    (so the scheduler will be woken); every provider admitted while a group of another
    resource was queued holds at most its waiting bound, and nothing while it cools down."""
    clock = ManualClock()
    reader = FakePressure()
    queue, admission = FairTaskQueue(), controller(capacity, reader, clock)
    work = []
    for i, (p, columns, n) in enumerate(providers):
        name = f"p{i}"
        until = clock.monotonic() + 1.0 if p["blocked"] else None
        reader.set(
            name,
            limit=int(p["limit"]),
            in_flight=int(p["in_flight"]),
            waiters=int(p["waiters"]),
            blocked_until=until,
        )
        for c in range(columns):
            work += tasks(model_group(name, f"{name}c{c}"), n)
    work += tasks(TaskGroupSpec(TaskGroupKey(("local", "default"), ("loc",)), 1), local)
    queue.enqueue(work)

    held = fill(queue, admission)

    if len(queue):
        summary = admission.explain_blocked(queue.view())
        assert admission.active_leases > 0 or summary.available_after is not None
    left = set(queue.view().queued_by_group)
    for i in range(len(providers)):
        name = f"p{i}"
        if all(k.identity[1] == name for k in left):
            continue  # no group of another resource was queued all along
        pressure = reader.by_provider[name]
        leased = sum(1 for lease in held if lease.item.group.key.identity[1] == name)
        if pressure.blocked_until is not None:
            assert leased == 0
        else:
            assert leased <= CONFIG.waiting_bound(pressure.limit)


async def test_reading_request_pressure_changes_nothing_in_request_admission() -> None:
    """The builder's bridge over the real request controller: many evaluations, same state."""
    from rowloom.builder.pressure import RequestPressureBridge
    from rowloom.models.request_admission import (
        AdaptiveRequestAdmissionController,
        RequestAdmissionConfig,
        RequestAdmissionItem,
        RequestDomain,
        RequestGroupSpec,
        RequestReleaseOutcome,
        RequestResourceKey,
    )
    from rowloom.models.resources import ProviderModelKey

    clock = ManualClock()
    key = RequestResourceKey.of("a", "m", RequestDomain.CHAT)
    requests = AdaptiveRequestAdmissionController(
        RequestAdmissionConfig({ProviderModelKey("a", "m"): 2}, resources=(key,)), clock=clock
    )
    leases = [
        await requests.acquire_async(RequestAdmissionItem(key, RequestGroupSpec(key)))
        for _ in range(2)
    ]
    bridge = RequestPressureBridge(requests.pressure)
    before = (requests.counters(), requests.runtime_snapshot(), requests.waiters_total())
    queue, admission = (
        FairTaskQueue(),
        TaskAdmissionController(
            TaskAdmissionConfig(20, policy=CONFIG), clock, policy=build_policy(CONFIG, bridge)
        ),
    )
    queue.enqueue(tasks(model_group("a", "a"), 10) + tasks(model_group("b", "b"), 30))

    held = fill(queue, admission)
    for _ in range(3):
        admission.explain_blocked(queue.view())

    assert (requests.counters(), requests.runtime_snapshot(), requests.waiters_total()) == before
    assert count(held)["a"] == CONFIG.waiting_bound(2)  # the real pressure was read
    assert bridge.pressure(("model", "a", "m", "chat")) == RequestPressure(
        "a/m/chat", 2, 2, 0, 0, None
    )
    assert bridge.pressure(("custom_model", "ns", "r", "1")) is None
    for lease in leases:
        requests.release(lease, RequestReleaseOutcome.success())
