"""The run folder's event log (`events/*.arrows`) keeps every event exactly.

Random events go through the emitters twice: into an `EventLog` (the Arrow form every run
writes) and into an object sink (the old JSONL sink's input). Reading the log back gives, for
each event, the same JSON object as the event object's line, in order, whatever the values
(typed pressure snapshots, mappings, keys as objects, huge ints, nested diagnostics) and
wherever the checkpoints fell. Also: segments of a resumed run, a SIGKILL losing only the
events since the last checkpoint, the size against JSONL, and `rowloom events`.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.interface.cli_support import run_cli

from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.models.request_admission.pressure import RequestResourcePressureSnapshot
from rowloom.models.request_admission.resources import RequestResourceKey
from rowloom.observability import (
    REQUEST_EVENT_KINDS,
    SCHEDULER_EVENT_KINDS,
    InMemoryEventSink,
    RequestEventEmitter,
    RuntimeCorrelation,
    SchedulerEventEmitter,
    json_lines,
    read_events,
)
from rowloom.observability.eventlog import EventLog, open_run_logs
from rowloom.observability.sinks import encode_event

names = st.none() | st.sampled_from(("a", "b", "c/d", "é", ""))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=6,
)
# a correlation mapping is already plain JSON (emitters pass it on as it is)
plain_json = (
    st.none()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
correlations = (
    st.none()
    | st.builds(
        RuntimeCorrelation,
        run_id=st.sampled_from(("r1", "r2")),
        row_group=st.none() | st.integers(0, 5),
        task_column=names,
        task_type=names,
        scheduling_group_kind=names,
        scheduling_group_identity_hash=names,
        task_execution_id=names,
    )
    | st.fixed_dictionaries(
        {"task_execution_id": names}, optional={"row_group": plain_json, "x": plain_json}
    )
)
resource_keys = st.none() | st.sampled_from(
    (
        "p/m/chat",
        RequestResourceKey.of("p", "m", "chat"),
        RequestResourceKey.of("q", "n/1", "embedding"),
    )
)
pressure = st.builds(
    RequestResourcePressureSnapshot,
    resource=st.sampled_from((RequestResourceKey.of("p", "m", "chat"),)),
    limit_rule=st.sampled_from(("aimd", "static")),
    captured_at=st.floats(0, 1e6),
    sequence=st.integers(0, 10**6),
    in_flight=st.integers(0, 64),
    current_limit=st.integers(0, 64),
    effective_max=st.integers(0, 64),
    static_cap=st.integers(0, 64),
    provider_model_in_flight=st.integers(0, 64),
    waiters=st.integers(0, 64),
    blocked_until_monotonic=st.none() | st.floats(0, 1e6),
    cooldown_until_monotonic=st.none() | st.floats(0, 1e6),
    paced_until_monotonic=st.none() | st.floats(0, 1e6),
    cooldown_remaining_seconds=st.floats(0, 10),
    rate_limit_ceiling=st.none() | st.integers(0, 64),
    consecutive_rate_limits=st.integers(0, 5),
    rate_limited_total=st.integers(0, 500),
    provider_failures_total=st.integers(0, 5),
    in_startup_ramp=st.booleans(),
    last_outcome=st.none() | st.sampled_from(("success", "rate_limited")),
    provider_in_flight=st.integers(0, 64),
    provider_limit=st.none() | st.integers(0, 64),
)
snapshots = (
    st.none()
    | pressure
    | st.dictionaries(
        st.sampled_from(("current_limit", "static_cap", "blocked_until_monotonic", "other")),
        json_values,
        max_size=4,
    )
    | json_values
)
diagnostics = st.none() | st.dictionaries(st.text(max_size=4), json_values, max_size=3)
common = {
    "correlation": correlations,
    "reason": names,
    "snapshot": snapshots,
    "diagnostics": diagnostics,
}
scheduler_events = st.fixed_dictionaries(
    {
        "event_kind": st.sampled_from(SCHEDULER_EVENT_KINDS),
        "task_id": names,
        "task_execution_id": names,
        "task_lease_id": names,
        "scheduler_resource_key": names,
        **common,
    }
)
request_events = st.fixed_dictionaries(
    {
        "event_kind": st.sampled_from(REQUEST_EVENT_KINDS),
        "request_attempt_id": names,
        "request_lease_id": names,
        "request_resource_key": resource_keys,
        "request_group_key": resource_keys,
        "diagnostics_task_execution_id": names,
        **common,
    }
)
# each step: which stream, its fields, and whether a checkpoint (flush) follows
steps = st.lists(
    st.tuples(st.just("scheduler"), scheduler_events, st.booleans())
    | st.tuples(st.just("requests"), request_events, st.booleans()),
    max_size=25,
)


def _emit(emitters: dict[str, Any], stream: str, fields: dict[str, Any]) -> None:
    if stream == "scheduler":
        emitters[stream].emit(**fields)
        return
    f = dict(fields)
    emitters[stream].emit_fields(
        f.pop("event_kind"),
        f.pop("correlation"),
        f.pop("request_attempt_id"),
        f.pop("request_lease_id"),
        f.pop("request_resource_key"),
        f.pop("request_group_key"),
        f.pop("reason"),
        f.pop("snapshot"),
        f.pop("diagnostics"),
        f.pop("diagnostics_task_execution_id"),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_the_log_reads_back_every_event_as_its_json_line(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, dict[str, Any], bool]]
) -> None:
    run_dir = tmp_path_factory.mktemp("run")
    logs = open_run_logs(run_dir / "events")
    sinks: dict[str, InMemoryEventSink[Any]] = {s: InMemoryEventSink() for s in logs}
    clock = itertools.count(1).__next__
    emitters: dict[str, Any] = {
        "scheduler": SchedulerEventEmitter(
            sinks["scheduler"], lambda: clock() / 8, log=logs["scheduler"]
        ),
        "requests": RequestEventEmitter(
            sinks["requests"], lambda: clock() / 8, log=logs["requests"]
        ),
    }
    for stream, fields, checkpoint in steps:
        _emit(emitters, stream, fields)
        if checkpoint:
            logs[stream].flush()
    for log in logs.values():
        log.close()
    for stream, sink in sinks.items():
        expected = [orjson.loads(encode_event(e)) for e in sink.events]
        got = [orjson.loads(line) for line in json_lines(run_dir, [stream])]
        assert got == expected
        assert read_events(run_dir, stream).num_rows == len(expected)
    merged = [orjson.loads(line) for line in json_lines(run_dir)]
    times = [e["captured_at_monotonic"] for e in merged]
    assert times == sorted(times) and len(merged) == sum(len(s.events) for s in sinks.values())


def test_an_unknown_kind_is_refused_and_leaves_no_gap_in_the_sequences() -> None:
    logs = {"scheduler": EventLog("scheduler"), "requests": EventLog("requests")}
    emitters: dict[str, Any] = {
        "scheduler": SchedulerEventEmitter(None, lambda: 1.0, log=logs["scheduler"]),
        "requests": RequestEventEmitter(None, lambda: 1.0, log=logs["requests"]),
    }
    for stream, kind in (("scheduler", "selected"), ("requests", "request_wait_started")):
        emitters[stream].emit(kind)
        with pytest.raises(ValueError, match="no_such_kind"):
            emitters[stream].emit("no_such_kind")
        emitters[stream].emit(kind)
        table = logs[stream].table()
        assert table.column("event_kind").to_pylist() == [kind, kind]
        assert table.column("sequence").to_pylist() == [1, 2]


def test_a_resumed_run_adds_a_segment_and_readers_see_both(tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    for attempt in range(3):
        logs = open_run_logs(events_dir)
        emitter = SchedulerEventEmitter(None, lambda: 1.0, log=logs["scheduler"])
        emitter.emit("scheduler_job_started", diagnostics={"attempt": attempt})
        if attempt != 1:  # no request event in the second attempt: no segment for it
            RequestEventEmitter(None, lambda: 1.0, log=logs["requests"]).emit(
                "request_queue_drained", diagnostics={"attempt": attempt}
            )
        for log in logs.values():
            log.close()
    assert sorted(p.name for p in events_dir.iterdir()) == [
        "requests.1.arrows",
        "requests.arrows",
        "scheduler.1.arrows",
        "scheduler.2.arrows",
        "scheduler.arrows",
    ]
    lines = [json.loads(line) for line in json_lines(tmp_path, ["scheduler"])]
    assert [e["diagnostics"]["attempt"] for e in lines] == [0, 1, 2]
    requests = [json.loads(line) for line in json_lines(tmp_path, ["requests"])]
    assert [e["diagnostics"]["attempt"] for e in requests] == [0, 2]


_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from rowloom.observability.eventlog import open_run_logs
from rowloom.observability.events import SchedulerEventEmitter

logs = open_run_logs(Path(sys.argv[1]))
emitter = SchedulerEventEmitter(None, lambda: 1.0, log=logs["scheduler"])
for i in range(10_000):
    emitter.emit("selected", task_id=f"t{i}", diagnostics={"i": i, "pad": "x" * 40})
logs["scheduler"].flush()  # the checkpoint
print("checkpointed", flush=True)
for i in range(10_000, 30_000):  # spilled into record batches, never flushed
    emitter.emit("selected", task_id=f"t{i}", diagnostics={"i": i, "pad": "x" * 40})
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_run_loses_only_the_events_since_its_last_checkpoint(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_WRITER), str(tmp_path / "events")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "checkpointed" in proc.stdout
    table = read_events(tmp_path, "scheduler")
    assert 10_000 <= table.num_rows <= 30_000
    ids = table.column("task_id").to_pylist()
    assert ids == [f"t{i}" for i in range(len(ids))]  # whole events, in order, no gap


def _config() -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "sim",
                    "provider_type": "simulated",
                    "simulation": {"capacity": 4, "latency_ms": 2, "seed": 3},
                }
            ],
            "models": [
                {"alias": "w", "model": "sim-w", "provider": "sim", "max_parallel_requests": 8}
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["a", "b"]},
                },
                {
                    "name": "text",
                    "column_type": "llm_text",
                    "model_alias": "w",
                    "prompt": "Write about {{ topic }}.",
                },
            ],
            "run": {"buffer_size": 20},
        }
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Designer(tmp_path_factory.mktemp("events")).create(_config(), 120, "ev").run_dir


def test_a_run_writes_arrow_files_at_least_4x_smaller_than_its_jsonl(run_dir: Path) -> None:
    files = sorted(p.name for p in (run_dir / "events").iterdir())
    assert files == ["requests.arrows", "scheduler.arrows"]
    arrow_bytes = sum(p.stat().st_size for p in (run_dir / "events").iterdir())
    jsonl_bytes = sum(len(line) + 1 for line in json_lines(run_dir))
    assert arrow_bytes * 4 <= jsonl_bytes


def test_reading_some_columns_gives_those_columns_of_every_event(run_dir: Path) -> None:
    for stream in ("scheduler", "requests"):
        full = read_events(run_dir, stream)
        wanted = ["reason", "event_kind", "captured_at_monotonic"]
        part = read_events(run_dir, stream, wanted)
        assert part.column_names == ["event_kind", "captured_at_monotonic", "reason"]
        assert part.num_rows == full.num_rows > 0
        for name in wanted:
            assert part.column(name).to_pylist() == full.column(name).to_pylist()
        with pytest.raises(ValueError, match="no_such_column"):
            read_events(run_dir, stream, ["event_kind", "no_such_column"])


def test_cli_events_prints_the_jsonl_form(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(capsys, "events", run_dir)
    assert out.code == 0, out.err
    lines = [json.loads(line) for line in out.out.splitlines()]
    counts = {s: read_events(run_dir, s).num_rows for s in ("scheduler", "requests")}
    assert len(lines) == sum(counts.values()) and counts["requests"] > 0
    assert {e["stream"] for e in lines} == {"scheduler", "requests"}
    assert lines == [json.loads(line) for line in json_lines(run_dir)]

    only = run_cli(capsys, "events", run_dir, "--stream", "requests")
    assert only.code == 0
    assert [json.loads(x)["stream"] for x in only.out.splitlines()] == ["requests"] * counts[
        "requests"
    ]
    written = run_cli(capsys, "events", run_dir, "-o", tmp_path / "ev.jsonl")
    assert written.code == 0
    assert (tmp_path / "ev.jsonl").read_text().splitlines() == out.out.splitlines()

    table = run_cli(
        capsys,
        "events",
        run_dir,
        "--format",
        "parquet",
        "--stream",
        "scheduler",
        "-o",
        tmp_path / "s.parquet",
    )
    assert table.code == 0
    assert pq.read_table(tmp_path / "s.parquet").num_rows == counts["scheduler"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--format", "csv"), "--format must be one of jsonl, parquet"),
        (("--stream", "both"), "--stream must be one of scheduler, requests"),
        (("--format", "parquet"), "give --stream and --out"),
    ],
)
def test_cli_events_refuses_bad_arguments(
    run_dir: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    out = run_cli(capsys, "events", run_dir, *args)
    assert out.code == 2 and message in out.err and "Traceback" not in out.err


def test_cli_events_refuses_a_folder_that_is_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(capsys, "events", tmp_path)
    assert out.code == 2 and "not a run folder" in out.err


def test_a_log_without_a_file_keeps_its_events_in_memory() -> None:
    log = EventLog("requests")
    emitter = RequestEventEmitter(None, lambda: 2.0, log=log)
    emitter.emit(
        "request_queue_formed", request_resource_key=RequestResourceKey.of("p", "m", "chat")
    )
    table = log.table()
    assert table.num_rows == 1
    assert table.column("request_resource_key").to_pylist() == ["p/m/chat"]
