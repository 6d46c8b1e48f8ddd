"""Recording a run's events: column buffers in memory, Arrow IPC stream files on disk.

An emitter appends one value per field to an `EventLog`'s column lists (no event object, no
JSON line, nothing for the garbage collector to trace per event). Every `SPILL_ROWS` events,
and at each flush, the buffer becomes Arrow record batches (`event_schema`), appended to the
stream's IPC stream file (`events/scheduler.arrows`, `events/requests.arrows`, zstd-compressed
buffers). The scheduler flushes at every row-group checkpoint and at the end of a run, handing
the bytes to the operating system, so a run killed with SIGKILL loses at most the events since
its last checkpoint. A resumed run writes a new segment (`scheduler.1.arrows`, ...).

Snapshot and diagnostics values are captured by reference at emission and JSON-normalised at
conversion: emit only values nobody mutates afterwards (frozen snapshots, fresh dicts), as
every call site does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from rowloom.observability.event_schema import (
    BUFFER_FIELDS,
    ID_FIELDS,
    STREAMS,
    as_mapping,
    columns_to_batch,
    schema,
)
from rowloom.observability.events import SPILL_ROWS

_log = logging.getLogger(__name__)

BATCH_ROWS: Final = SPILL_ROWS
"""Rows per record batch: converting in slices this size keeps each conversion's buffers
small (measurably cheaper per event than one large batch)."""


class EventLog:
    """One stream's events as column lists, written as Arrow record batches.

    Emitters append one value to each of `columns` per event (`BUFFER_FIELDS` order) and call
    `spill()` every `SPILL_ROWS` events, which converts the buffer to record batches. With
    `path`, batches go to an Arrow IPC stream file, handed to the OS at each `flush()`;
    without, they are kept in memory (`table()`). Never raises into generation: a failing
    write is logged once and counted in `failures`. Thread-safe.
    """

    def __init__(self, stream: str, path: Path | None = None) -> None:
        if stream not in ID_FIELDS:
            raise ValueError(f"unknown event stream {stream!r}")
        self.stream = stream
        self.path = path
        self.columns: tuple[list[Any], ...] = tuple([] for _ in BUFFER_FIELDS[stream])
        self._sequence = 1  # the next buffered row's sequence
        self.failures = 0
        self._batches: list[pa.RecordBatch] = []
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._writer: ipc.RecordBatchStreamWriter | None = None
        self._closed = False

    def spill(self) -> None:
        """Convert the buffered events to record batches (written, not yet flushed to the OS)."""
        with self._lock:
            self._spill()

    def flush(self) -> None:
        """Write every buffered event and hand the file's bytes to the OS."""
        with self._lock:
            self._spill()
            if self._file is not None and not self._closed:
                try:
                    self._file.flush()
                except Exception:
                    self._failed()

    def close(self) -> None:
        """Flush, then end the file; later events are dropped."""
        self.flush()
        with self._lock:
            self._closed = True
            try:
                if self._writer is not None:
                    self._writer.close()
            except Exception:
                _log.exception("could not close the %s event file", self.stream)
            finally:
                if self._file is not None:
                    self._file.close()

    def append_table(self, table: pa.Table) -> None:
        """Append recorded events (a table in this stream's schema, e.g. from `read_events`)
        after the buffered ones."""
        with self._lock:
            self._spill()
            if self._closed:
                return
            try:
                for batch in table.cast(schema(self.stream)).to_batches(BATCH_ROWS):
                    self._put(batch)
            except Exception:
                self._failed()

    def table(self) -> pa.Table:
        """Every event so far (in-memory logs; a file-backed log holds only the unwritten)."""
        with self._lock:
            self._spill()
            batches = list(self._batches)
        return pa.Table.from_batches(batches, schema=schema(self.stream))

    def _take(self) -> list[list[Any]]:
        """The complete buffered rows, removed from the buffer (a row another thread is
        appending stays)."""
        n = min(map(len, self.columns))
        taken = [col[:n] for col in self.columns]
        for col in self.columns:
            del col[:n]
        return taken

    def _spill(self) -> None:
        if self._closed:
            return
        taken = self._take()
        n = len(taken[0])
        first, self._sequence = self._sequence, self._sequence + n
        sequences = pa.array(np.arange(first, first + n, dtype=np.int64))
        try:
            for i in range(0, n, BATCH_ROWS):
                rows = [c[i : i + BATCH_ROWS] for c in taken]
                self._put(columns_to_batch(self.stream, rows, sequences[i : i + BATCH_ROWS]))
        except Exception:
            self._failed()

    def _put(self, batch: pa.RecordBatch) -> None:
        if self.path is None:
            self._batches.append(batch)
        else:
            self._write(batch)

    def _write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("xb")
            self._writer = ipc.new_stream(
                self._file,
                schema(self.stream),
                options=ipc.IpcWriteOptions(compression="zstd", use_threads=False),
            )
        self._writer.write_batch(batch)

    def _failed(self) -> None:
        self.failures += 1
        if self.failures == 1:
            _log.exception("could not write %s events; generation continues", self.stream)


def open_run_logs(events_dir: Path) -> dict[str, EventLog]:
    """A new log per stream writing the next segment file in `events_dir` (resume-safe)."""
    return {s: EventLog(s, next_segment(events_dir, s)) for s in STREAMS}


def next_segment(events_dir: Path, stream: str) -> Path:
    """`stream.arrows`, or `stream.N.arrows` when earlier segments exist."""
    existing = segments(events_dir, stream)
    if not existing:
        return events_dir / f"{stream}.arrows"
    return events_dir / f"{stream}.{_segment_index(existing[-1]) + 1}.arrows"


def segments(events_dir: Path, stream: str) -> list[Path]:
    """The stream's segment files in write order."""
    if not events_dir.is_dir():
        return []
    found = [p for p in events_dir.glob(f"{stream}*.arrows") if _segment_index(p) >= 0]
    return sorted(found, key=_segment_index)


def _segment_index(path: Path) -> int:
    parts = path.name.split(".")
    if len(parts) == 2:
        return 0
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return -1


def events_to_table(stream: str, events: Iterable[Any]) -> pa.Table:
    """A stream table of event objects (`as_json()`) or their JSON dicts (the line shape)."""
    ids = ID_FIELDS[stream]
    extra = stream == "requests"
    columns: list[list[Any]] = [[] for _ in BUFFER_FIELDS[stream]]
    sequences: list[Any] = []
    for e in events:
        d = as_mapping(e)
        sequences.append(d.get("sequence"))
        row = (
            d["event_kind"],
            d["captured_at_monotonic"],
            d.get("captured_correlation") or None,
            *(d.get(name) for name in ids),
            d.get("reason"),
            d.get("snapshot"),
            d.get("diagnostics") or None,
            *((None,) if extra else ()),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    batches = [
        columns_to_batch(
            stream, [c[i : i + BATCH_ROWS] for c in columns], sequences[i : i + BATCH_ROWS]
        )
        for i in range(0, len(sequences), BATCH_ROWS)
    ]
    return pa.Table.from_batches(batches, schema=schema(stream))
