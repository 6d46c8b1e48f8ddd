"""Event sinks: in-memory, JSONL file (buffered), fan-out, and a null sink."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar


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


_dumps: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_SCHEDULER_FIELDS: Final = (
    "task_id",
    "task_execution_id",
    "task_lease_id",
    "scheduler_resource_key",
    "reason",
)
_REQUEST_FIELDS: Final = (
    "request_attempt_id",
    "request_lease_id",
    "request_resource_key",
    "request_group_key",
    "reason",
)
_CACHE_LIMIT: Final = 4096


class EventLineEncoder:
    """Encodes an event as the JSON line of its `as_json()`, without building that dict.

    Guarantees `json.loads(encoder.line(e)) == e.as_json()` for scheduler and request events
    (other objects fall back to `as_json()`). Correlation mappings are shared by all events of a
    task execution and never change once built, so each one's encoding is reused (a bounded
    cache keyed by identity, holding the mapping so the identity stays valid).
    """

    __slots__ = ("_correlations",)

    def __init__(self) -> None:
        self._correlations: dict[int, tuple[Mapping[str, Any], str]] = {}

    def line(self, event: Any) -> str:
        stream = getattr(event, "stream", None)
        if stream == "scheduler":
            names = _SCHEDULER_FIELDS
        elif stream == "requests":
            names = _REQUEST_FIELDS
        else:
            return str(_dumps(event.as_json()))
        t = event.captured_at_monotonic
        parts = [
            '{"stream":"',
            stream,
            '","event_kind":',
            self._str(event.event_kind),
            ',"sequence":',
            str(event.sequence),
            ',"captured_at_monotonic":',
            repr(t) if math.isfinite(t) else "null",
            ',"captured_correlation":',
            self._correlation(event.captured_correlation),
        ]
        for name in names:
            value = getattr(event, name)
            parts += (',"', name, '":', "null" if value is None else self._str(value))
        snapshot = event.snapshot
        diagnostics = event.diagnostics
        parts += (
            ',"snapshot":',
            "null" if snapshot is None else _dumps(snapshot),
            ',"diagnostics":',
            _dumps(dict(diagnostics)) if diagnostics else "{}",
            "}",
        )
        return "".join(parts)

    @staticmethod
    def _str(value: str) -> str:
        """A JSON string: quoted as is when that is already valid JSON (plain ASCII ids)."""
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return '"' + value + '"'
        return str(_dumps(value))

    def _correlation(self, mapping: Mapping[str, Any]) -> str:
        if not mapping:
            return "{}"
        cache = self._correlations
        hit = cache.get(id(mapping))
        if hit is not None and hit[0] is mapping:
            return hit[1]
        encoded = str(_dumps(dict(mapping)))
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[id(mapping)] = (mapping, encoded)
        return encoded


class JsonlEventSink(Generic[E]):
    """Appends one JSON line per event, buffered in memory until `flush()`.

    The scheduler flushes at each row-group checkpoint and at the end of a run; `close()`
    flushes and closes. Thread-safe, so the file write may happen off the event loop.
    """

    def __init__(self, path: Path, *, max_buffered: int = 4096) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._buffer: list[str] = []
        self._max_buffered = max_buffered
        self._lock = threading.Lock()
        self._encoder = EventLineEncoder()

    def emit(self, event: E) -> None:
        line = self._encoder.line(event)
        with self._lock:
            self._buffer.append(line)
            full = len(self._buffer) >= self._max_buffered
        if full:
            self.flush()

    def flush(self) -> None:
        """Write buffered lines to the file."""
        with self._lock:
            lines, self._buffer = self._buffer, []
            if lines and not self._file.closed:
                self._file.write("\n".join(lines) + "\n")
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
