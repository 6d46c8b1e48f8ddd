"""The JSONL sink writes exactly each event's `as_json()`, one line per event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom.observability.events import RequestAdmissionEvent, SchedulerAdmissionEvent
from rowloom.observability.sinks import JsonlEventSink, encode_event

texts = st.text(max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(texts, json_values, max_size=4)
shared_correlation = {"run_id": "r", "row_group": 1, "task_execution_id": "te-1"}

scheduler_events = st.builds(
    SchedulerAdmissionEvent,
    event_kind=texts,
    sequence=st.integers(0, 10**9),
    captured_at_monotonic=st.floats(0, 1e7, allow_nan=False),
    captured_correlation=st.just(shared_correlation) | objects,
    task_id=st.none() | texts,
    task_execution_id=st.none() | texts,
    task_lease_id=st.none() | texts,
    scheduler_resource_key=st.none() | texts,
    reason=st.none() | texts,
    snapshot=json_values,
    diagnostics=objects,
)
request_events = st.builds(
    RequestAdmissionEvent,
    event_kind=texts,
    sequence=st.integers(0, 10**9),
    captured_at_monotonic=st.floats(0, 1e7, allow_nan=False),
    captured_correlation=st.just(shared_correlation) | objects,
    request_attempt_id=st.none() | texts,
    request_lease_id=st.none() | texts,
    request_resource_key=st.none() | texts,
    request_group_key=st.none() | texts,
    reason=st.none() | texts,
    snapshot=json_values,
    diagnostics=objects,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(scheduler_events | request_events, max_size=6))
def test_each_line_decodes_to_the_events_json(events: list[Any]) -> None:
    for event in events:
        line = encode_event(event)
        assert b"\n" not in line
        assert json.loads(line) == event.as_json()


def test_the_sink_writes_one_line_per_event(tmp_path: Path) -> None:
    sink: JsonlEventSink[Any] = JsonlEventSink(tmp_path / "s.jsonl", max_buffered=2)
    events = [
        SchedulerAdmissionEvent("selected", i, float(i), shared_correlation, task_id=f't"{i}')
        for i in range(5)
    ]
    for e in events:
        sink.emit(e)
    sink.close()
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [e.as_json() for e in events]
