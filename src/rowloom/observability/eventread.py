"""Reading a run's events: Arrow tables per stream, event dicts, JSON lines, event objects.

`read_events(run_dir, stream)` reads every segment of a stream (`events/<stream>.arrows`,
`<stream>.1.arrows`, ... in write order); a segment cut short by a killed run yields its
complete batches. A run folder written before the Arrow form (`events/<stream>.jsonl`) is
read too, as the first segment. `json_lines` gives each event exactly as its JSON line
(`event.as_json()`), the form `rowloom events RUN_DIR --format jsonl` prints.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from rowloom.observability.event_schema import (
    CORRELATION_FIELDS,
    ID_FIELDS,
    PRESSURE_FIELDS,
    STREAMS,
    schema,
)
from rowloom.observability.eventlog import events_to_table, segments
from rowloom.observability.events import RequestAdmissionEvent, SchedulerAdmissionEvent

_log = logging.getLogger(__name__)


def read_events(run_dir: str | Path, stream: str, columns: Sequence[str] | None = None) -> pa.Table:
    """Every recorded event of one stream of a run folder (empty when there is none).

    With `columns`, only those columns are read (decompressed), in schema order.
    """
    events_dir = Path(run_dir) / "events"
    full = schema(stream)
    wanted = sorted({full.get_field_index(name) for name in columns}) if columns else None
    if wanted is not None and -1 in wanted:
        raise ValueError(
            f"unknown {stream} event columns: {sorted(set(columns or ()) - set(full.names))}"
        )
    sch = pa.schema([full.field(i) for i in wanted], metadata=full.metadata) if wanted else full
    batches: list[pa.RecordBatch] = []
    legacy = events_dir / f"{stream}.jsonl"
    if legacy.is_file():
        table = events_to_table(stream, _read_jsonl(legacy))
        batches.extend(table.select(sch.names).to_batches())
    for path in segments(events_dir, stream):
        batches.extend(_read_segment(path, wanted))
    return pa.Table.from_batches(batches, schema=sch)


def has_events(run_dir: str | Path) -> bool:
    """Whether the run folder holds any recorded event file."""
    events_dir = Path(run_dir) / "events"
    return any(segments(events_dir, s) or (events_dir / f"{s}.jsonl").is_file() for s in STREAMS)


def _read_segment(path: Path, fields: list[int] | None) -> list[pa.RecordBatch]:
    batches: list[pa.RecordBatch] = []
    options = ipc.IpcReadOptions(use_threads=False, included_fields=fields or None)
    try:
        with pa.memory_map(str(path)) as source:
            reader = ipc.open_stream(source, options=options)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                batches.append(batch)
    except (OSError, pa.ArrowInvalid) as exc:  # cut short by a killed run: keep what is whole
        _log.debug("%s ends early (%s); %d batches read", path, exc, len(batches))
    return batches


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn last line of a killed run


# --- tables -> event dicts, lines and objects ---------------------------------------------------


def event_dicts(table: pa.Table, stream: str) -> Iterator[dict[str, Any]]:
    """Each event of a stream table as its JSON object (`as_json()`), in order."""
    ids = ID_FIELDS[stream]
    for batch in table.to_batches():
        col = _columns(batch)
        correlations = _objects(
            col("correlation_form"),
            col("correlation_json"),
            CORRELATION_FIELDS,
            col,
            "correlation_",
        )
        snapshots = _objects(
            col("snapshot_form"), col("snapshot_json"), PRESSURE_FIELDS, col, "snapshot_"
        )
        kinds, seqs, times = col("event_kind"), col("sequence"), col("captured_at_monotonic")
        id_cols = [col(name) for name in ids]
        reasons, diags, diag_ex = (
            col("reason"),
            col("diagnostics"),
            col("diagnostics_task_execution_id"),
        )
        for i in range(batch.num_rows):
            event: dict[str, Any] = {
                "stream": stream,
                "event_kind": kinds[i],
                "sequence": seqs[i],
                "captured_at_monotonic": times[i],
                "captured_correlation": correlations[i] if correlations[i] is not None else {},
            }
            for name, values in zip(ids, id_cols, strict=True):
                event[name] = values[i]
            event["reason"] = reasons[i]
            event["snapshot"] = snapshots[i]
            diagnostics = orjson.loads(diags[i]) if diags[i] is not None else {}
            if diag_ex[i] is not None:
                diagnostics["task_execution_id"] = diag_ex[i]
            event["diagnostics"] = diagnostics
            yield event


def _columns(batch: pa.RecordBatch) -> Any:
    cache: dict[str, list[Any]] = {}

    def col(name: str) -> list[Any]:
        if name not in cache:
            cache[name] = batch.column(name).to_pylist()
        return cache[name]

    return col


def _objects(
    forms: list[int], texts: list[str | None], fields: Any, col: Any, prefix: str
) -> list[Any]:
    """Per row: None (form 0), a dict of the typed fields (1), or the decoded JSON text (2)."""
    names = [name for name, _ in fields]
    typed = [col(prefix + name) for name in names] if 1 in forms else None
    out: list[Any] = []
    for i, form in enumerate(forms):
        if form == 1 and typed is not None:
            out.append({name: values[i] for name, values in zip(names, typed, strict=True)})
        elif form == 2:
            text = texts[i]
            out.append(orjson.loads(text) if text is not None else None)
        else:
            out.append(None)
    return out


def iter_event_dicts(
    run_dir: str | Path, streams: Iterable[str] = STREAMS
) -> Iterator[dict[str, Any]]:
    """The run's events as JSON objects; with both streams, merged in capture order (time,
    then scheduler before requests, then sequence)."""
    chosen = [s for s in STREAMS if s in set(streams)]
    iterators = [
        (
            (e["captured_at_monotonic"], rank, e["sequence"] or 0, e)
            for e in _stream_dicts(run_dir, s)
        )
        for rank, s in enumerate(chosen)
    ]
    if len(iterators) == 1:
        yield from (item[3] for item in iterators[0])
        return
    for *_, event in heapq.merge(*iterators, key=lambda item: item[:3]):
        yield event


def _stream_dicts(run_dir: str | Path, stream: str) -> Iterator[dict[str, Any]]:
    yield from event_dicts(read_events(run_dir, stream), stream)


def json_lines(run_dir: str | Path, streams: Iterable[str] = STREAMS) -> Iterator[bytes]:
    """The run's events as JSON lines (no newline), as the JSONL sinks used to write them."""
    for event in iter_event_dicts(run_dir, streams):
        yield orjson.dumps(event)


def iter_event_objects(
    run_dir: str | Path,
) -> Iterator[SchedulerAdmissionEvent | RequestAdmissionEvent]:
    """Both streams as event objects in capture order (to replay into a live sink)."""
    for d in iter_event_dicts(run_dir):
        stream = d.pop("stream")
        if stream == "scheduler":
            yield SchedulerAdmissionEvent(**d)
        else:
            yield RequestAdmissionEvent(**d)
