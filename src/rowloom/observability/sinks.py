"""Event sinks: in-memory, JSONL file (buffered), fan-out, and a null sink."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

import orjson


class _Event(Protocol):
    event_kind: str

    def as_json(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=_Event)


class InMemoryEventSink(Generic[E]):
    """Keeps every event in order; for tests, reports and the benchmark harness."""

    def __init__(self) -> None:
        self.events: list[E] = []

    def emit(self, event: E) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        """The event kinds in emission order."""
        return [e.event_kind for e in self.events]

    def of_kind(self, kind: str) -> list[E]:
        """Every event of one kind, in order."""
        return [e for e in self.events if e.event_kind == kind]


_PREFIX: Final = {"scheduler": b'{"stream":"scheduler",', "requests": b'{"stream":"requests",'}


def _default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError


def encode_event(event: Any) -> bytes:
    """One event as its JSON line (no newline): exactly `event.as_json()`, encoded by orjson
    straight from the frozen event (no intermediate dict) when it can be."""
    prefix = _PREFIX.get(getattr(event, "stream", ""))
    if prefix is not None:
        try:
            return prefix + orjson.dumps(event, default=_default)[1:]
        except TypeError:  # e.g. an int beyond 64 bits in diagnostics
            pass
    return json.dumps(event.as_json(), separators=(",", ":"), allow_nan=False).encode()


class JsonlEventSink(Generic[E]):
    """Appends one JSON line per event, buffered in memory until `flush()`.

    Events are kept as objects and encoded in batches at flush time. The scheduler flushes at
    each row-group checkpoint and at the end of a run; `close()` flushes and closes.
    Thread-safe, so the file write may happen off the event loop.
    """

    def __init__(self, path: Path, *, max_buffered: int = 8192) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self._buffer: list[E] = []
        self._max_buffered = max_buffered
        self._lock = threading.Lock()

    def emit(self, event: E) -> None:
        buffer = self._buffer
        buffer.append(event)
        if len(buffer) >= self._max_buffered:
            self.flush()

    def flush(self) -> None:
        """Encode and write buffered events to the file."""
        with self._lock:
            events, self._buffer = self._buffer, []
            if events and not self._file.closed:
                self._file.write(b"\n".join(map(encode_event, events)) + b"\n")
                self._file.flush()

    def close(self) -> None:
        """Flush and close the file; later events are dropped."""
        self.flush()
        with self._lock:
            self._file.close()


class FanOutEventSink(Generic[E]):
    """Delivers each event to several sinks; one failing sink does not starve the others."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = list(sinks)
        self.failures = 0

    def emit(self, event: E) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:
                self.failures += 1

    def flush(self) -> None:
        """Flush every sink that can."""
        for sink in self.sinks:
            flush = getattr(sink, "flush", None)
            if callable(flush):
                flush()
