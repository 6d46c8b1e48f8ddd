"""`RequestFairQueue`: pure selection, commit as the only removal, weighted fairness."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ra_support import CHAT, EMBED, OTHER_CHAT

from rowloom.models.request_admission import (
    RequestAdmissionItem,
    RequestFairQueue,
    RequestResourceKey,
    RequestWaiter,
)

_ids = itertools.count(1)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    new = asyncio.new_event_loop()
    yield new
    new.close()


def waiter(
    loop: asyncio.AbstractEventLoop, resource: RequestResourceKey = CHAT, weight: int = 1
) -> RequestWaiter:
    item = RequestAdmissionItem.for_resource(resource, weight=weight)
    return RequestWaiter(next(_ids), item, 0.0, None, loop.create_future())


def always(_: RequestAdmissionItem) -> bool:
    return True


def not_for(resource: RequestResourceKey) -> Callable[[RequestAdmissionItem], bool]:
    return lambda item: item.resource != resource


def drain(queue: RequestFairQueue) -> list[RequestWaiter]:
    out = []
    while (sel := queue.select_next(always)) is not None:
        got = queue.commit(sel)
        assert got is sel.waiter
        out.append(got)
    return out


def test_select_is_pure_and_commit_removes(loop: asyncio.AbstractEventLoop) -> None:
    q = RequestFairQueue()
    a, b = waiter(loop), waiter(loop)
    q.enqueue(a)
    q.enqueue(b)
    version, view = q.sequence_version, q.view()
    first = q.select_next(always)
    again = q.select_next(always)
    assert first is not None and again is not None
    assert first.waiter is a and again.waiter is a
    assert q.sequence_version == version and q.view() == view and len(q) == 2
    assert first.queue_view.queued_total == 2
    assert q.commit(first) is a
    assert len(q) == 1 and a.waiter_id not in q


def test_stale_selection_commits_nothing(loop: asyncio.AbstractEventLoop) -> None:
    q = RequestFairQueue()
    a = waiter(loop)
    q.enqueue(a)
    sel = q.select_next(always)
    assert sel is not None
    q.enqueue(waiter(loop, EMBED))
    assert q.commit(sel) is None
    assert len(q) == 2


def test_enqueue_is_idempotent_by_waiter_id(loop: asyncio.AbstractEventLoop) -> None:
    q = RequestFairQueue()
    a = waiter(loop)
    assert q.enqueue(a) and not q.enqueue(a)
    assert len(q) == 1


def test_fifo_inside_a_group(loop: asyncio.AbstractEventLoop) -> None:
    q = RequestFairQueue()
    ws = [waiter(loop) for _ in range(5)]
    for w in ws:
        q.enqueue(w)
    assert drain(q) == ws


def test_equal_weights_take_turns_oldest_first(loop: asyncio.AbstractEventLoop) -> None:
    q = RequestFairQueue()
    chats = [waiter(loop, CHAT) for _ in range(3)]
    embeds = [waiter(loop, EMBED) for _ in range(3)]
    for w in chats + embeds:
        q.enqueue(w)
    order = [w.item.resource for w in drain(q)]
    assert order == [CHAT, EMBED, CHAT, EMBED, CHAT, EMBED]


def test_weights_share_service_proportionally(loop: asyncio.AbstractEventLoop) -> None:
    q = RequestFairQueue()
    for _ in range(30):
        q.enqueue(waiter(loop, CHAT, weight=2))
        q.enqueue(waiter(loop, EMBED, weight=1))
    first = [w.item.resource for w in drain(q)[:30]]
    counts = Counter(first)
    assert counts[CHAT] == 20 and counts[EMBED] == 10


def test_ineligible_groups_are_skipped_without_reordering(loop: asyncio.AbstractEventLoop) -> None:
    q = RequestFairQueue()
    c1, e1, c2 = waiter(loop, CHAT), waiter(loop, EMBED), waiter(loop, CHAT)
    for w in (c1, e1, c2):
        q.enqueue(w)
    sel = q.select_next(lambda item: item.resource == EMBED)
    assert sel is not None and sel.waiter is e1
    q.commit(sel)
    assert q.select_next(lambda item: item.resource == EMBED) is None
    assert drain(q) == [c1, c2]


def test_remove_anywhere_keeps_counts_and_order(loop: asyncio.AbstractEventLoop) -> None:
    q = RequestFairQueue()
    ws = [waiter(loop, CHAT) for _ in range(4)] + [waiter(loop, OTHER_CHAT)]
    for w in ws:
        q.enqueue(w)
    assert q.remove(ws[1].waiter_id) is ws[1]
    assert q.remove(ws[0].waiter_id) is ws[0]
    assert q.remove(ws[0].waiter_id) is None
    view = q.view()
    assert view.queued_total == 3
    assert view.queued_by_resource == {CHAT: 2, OTHER_CHAT: 1}
    assert view.queued_by_group == {CHAT: 2, OTHER_CHAT: 1}
    assert view.queued_by_provider_model == {CHAT.provider_model: 2, OTHER_CHAT.provider_model: 1}
    assert drain(q) == [ws[2], ws[4], ws[3]]
    assert q.view().queued_total == 0 and q.view().queued_by_resource == {}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["enqueue", "remove", "take"]), st.integers(0, 2), st.integers(1, 3)
        ),
        max_size=60,
    )
)
def test_random_operations_keep_view_consistent_with_membership(
    ops: list[tuple[str, int, int]],
) -> None:
    loop = asyncio.new_event_loop()
    try:
        q = RequestFairQueue()
        resources = [CHAT, EMBED, OTHER_CHAT]
        live: dict[int, RequestWaiter] = {}
        for op, which, weight in ops:
            if op == "enqueue":
                w = waiter(loop, resources[which], weight)
                q.enqueue(w)
                live[w.waiter_id] = w
            elif op == "remove" and live:
                wid = sorted(live)[which % len(live)]
                assert q.remove(wid) is live.pop(wid)
            elif op == "take":
                sel = q.select_next(not_for(resources[which]))
                if sel is not None:
                    got = q.commit(sel)
                    assert got is not None and live.pop(got.waiter_id) is got
            view = q.view()
            assert view.queued_total == len(q) == len(live)
            assert sum(view.queued_by_resource.values()) == len(live)
            assert set(q.waiters()) == set(live.values())
            for r in resources:
                expected = sum(1 for w in live.values() if w.item.resource == r)
                assert q.queued_for_resource(r) == expected
        # FIFO per group survives any interleaving.
        taken = drain(q)
        for r in resources:
            ids = [w.waiter_id for w in taken if w.item.resource == r]
            assert ids == sorted(ids)
    finally:
        loop.close()
