from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rowloom.observability.events import to_json_value
from rowloom.scheduling.resources import (
    LOCAL,
    SUBMISSION,
    SchedulerResourceRequest,
    TaskGroupKey,
    TaskGroupSpec,
    stable_task_id,
    task_id_of,
)
from rowloom.scheduling.task_model import Task


def test_stable_task_id_is_deterministic_and_short_hex() -> None:
    first = stable_task_id("answer", 3, 17, "cell")
    assert first == stable_task_id("answer", 3, 17, "cell")
    assert len(first) == 16 and int(first, 16) >= 0
    assert task_id_of(Task.cell("answer", 3, 17)) == first


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=6),
            st.integers(0, 5),
            st.one_of(st.none(), st.integers(0, 50)),
        ),
        unique=True,
        max_size=40,
    )
)
def test_distinct_tasks_get_distinct_ids(keys: list[tuple[str, int, int | None]]) -> None:
    ids = {
        stable_task_id(col, rg, row, "batch" if row is None else "cell") for col, rg, row in keys
    }
    assert len(ids) == len(keys)


def test_column_names_cannot_collide_through_separators() -> None:
    assert stable_task_id("a|1", 2, 3, "cell") != stable_task_id("a", 12, 3, "cell")


def test_resource_request_normalises_order_and_validates() -> None:
    a = SchedulerResourceRequest({LOCAL: 1, SUBMISSION: 1})
    b = SchedulerResourceRequest({SUBMISSION: 1, LOCAL: 1})
    assert a == b and hash(a) == hash(b)
    assert list(a.amounts) == sorted(a.amounts)
    assert a.get(SUBMISSION) == 1 and a.get(LOCAL) == 1
    assert SchedulerResourceRequest({SUBMISSION: 2}).get(LOCAL) == 0
    with pytest.raises(ValueError):
        SchedulerResourceRequest({SUBMISSION: 0})
    with pytest.raises(TypeError):
        a.amounts[SUBMISSION] = 5  # type: ignore[index]


def test_group_key_carries_identity_and_columns() -> None:
    key = TaskGroupKey(("model", "p", "m", "chat"), ("answer",))
    assert key.kind == "model"
    assert key.as_key_str() == "model/p/m/chat|answer"
    assert to_json_value(key) == "model/p/m/chat|answer"
    assert key == TaskGroupKey(("model", "p", "m", "chat"), ("answer",))
    assert key != TaskGroupKey(("model", "p", "m", "chat"), ("judge",))
    assert len(key.identity_hash) == 12


def test_group_weight_must_be_positive() -> None:
    key = TaskGroupKey(("local", "default"), ("a",))
    with pytest.raises(ValueError):
        TaskGroupSpec(key, 0)
    with pytest.raises(ValueError):
        TaskGroupSpec(key, True)
