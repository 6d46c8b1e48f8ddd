"""The two runtime event streams: scheduler admission and request admission.

Events are frozen and JSON-normalised at construction: correlation, keys, snapshots and
diagnostics are plain JSON values, so a sink never reads ambient state later. Every event
carries its kind, a monotonic capture time and a per-stream strictly increasing sequence.
Emission goes through an emitter that assigns sequences and shields the caller from sink
failures: a failing sink never interrupts generation.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeAlias

from rowloom.observability.correlation import (
    RuntimeCorrelation,
    RuntimeCorrelationProvider,
    current_correlation,
)

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonObject: TypeAlias = dict[str, JsonValue]

_log = logging.getLogger(__name__)

SCHEDULER_EVENT_KINDS: Final[tuple[str, ...]] = (
    "scheduler_job_started",
    "scheduler_job_completed",
    "scheduler_health_snapshot",
    "dependency_ready",
    "ready_enqueued",
    "row_group_admitted",
    "row_group_admission_blocked",
    "row_group_admission_target_changed",
    "row_group_checkpointed",
    "selected",
    "queue_empty",
    "admission_blocked",
    "group_capped",
    "request_pressure_advisory_skipped",
    "task_lease_acquired",
    "admission_denied",
    "worker_spawned",
    "worker_spawn_failed",
    "stale_selection",
    "retry_deferred",
    "non_retryable_dropped",
    "cancelled",
    "salvage_redispatched",
    "queue_drained",
    "task_completed",
    "task_lease_released",
    "release_diagnostic",
)

REQUEST_EVENT_KINDS: Final[tuple[str, ...]] = (
    "request_resource_registered",
    "request_effective_cap_changed",
    "request_share_changed",
    "request_queue_formed",
    "request_wait_started",
    "request_wait_completed",
    "request_wait_timeout",
    "request_wait_cancelled",
    "request_acquire_denied",
    "request_lease_acquired",
    "model_request_started",
    "model_request_straggler_cancelled",
    "model_request_completed",
    "request_queue_drained",
    "request_rate_limited",
    "request_limit_decreased",
    "request_limit_increased",
    "request_soft_ceiling_recovered",
    "request_fully_recovered",
    "request_lease_released",
    "request_release_diagnostic",
)

SPILL_ROWS: Final = 4096
"""Buffered rows an event log converts to a record batch at once (bounds the Python objects
held between checkpoints)."""

_SCHEDULER_KIND_CODES: Final = {kind: i for i, kind in enumerate(SCHEDULER_EVENT_KINDS)}
_REQUEST_KIND_CODES: Final = {kind: i for i, kind in enumerate(REQUEST_EVENT_KINDS)}
_EMPTY: Final[Mapping[str, JsonValue]] = {}


def to_json_value(value: Any) -> JsonValue:
    """Normalise a value (dataclass, enum, mapping, sequence, primitive) into plain JSON.

    An object with `as_json()` is trusted to return plain JSON already (every rowloom DTO
    that defines it does), so snapshots are not walked twice.
    """
    if value is None or type(value) in _PLAIN:
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    as_json = getattr(value, "as_json", None)
    if callable(as_json):
        return as_json()  # type: ignore[no-any-return]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {_key_str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_json_value(v) for v in items]
    return str(value)


_PLAIN: Final = frozenset({str, int, bool})
_KEY_CACHE: dict[int, tuple[Any, str]] = {}


def _key_str(key: Any) -> str:
    if isinstance(key, str):
        return key
    hit = _KEY_CACHE.get(id(key))
    if hit is not None and hit[0] is key:
        return hit[1]
    as_key = getattr(key, "as_key_str", None)
    if callable(as_key):
        text = str(as_key())
        if len(_KEY_CACHE) > 4096:
            _KEY_CACHE.clear()
        _KEY_CACHE[id(key)] = (key, text)  # holds the key, so its id stays unique
        return text
    if isinstance(key, tuple):
        return "/".join(str(k) for k in key)
    return str(key)


def key_str(key: Any) -> str | None:
    """Render a resource or group key as a stable string (None stays None)."""
    return None if key is None else _key_str(key)


@dataclass(frozen=True, slots=True)
class SchedulerAdmissionEvent:
    """One scheduler-side fact: readiness, ordering, task admission, worker lifecycle."""

    event_kind: str
    sequence: int
    captured_at_monotonic: float
    captured_correlation: Mapping[str, JsonValue]
    task_id: str | None = None
    task_execution_id: str | None = None
    task_lease_id: str | None = None
    scheduler_resource_key: str | None = None
    reason: str | None = None
    snapshot: JsonValue = None
    diagnostics: Mapping[str, JsonValue] = field(default_factory=dict)

    stream = "scheduler"

    def as_json(self) -> JsonObject:
        """This event as one JSON object (the JSONL line shape)."""
        return {
            "stream": "scheduler",
            "event_kind": self.event_kind,
            "sequence": self.sequence,
            "captured_at_monotonic": self.captured_at_monotonic,
            "captured_correlation": dict(self.captured_correlation),
            "task_id": self.task_id,
            "task_execution_id": self.task_execution_id,
            "task_lease_id": self.task_lease_id,
            "scheduler_resource_key": self.scheduler_resource_key,
            "reason": self.reason,
            "snapshot": self.snapshot,
            "diagnostics": dict(self.diagnostics),
        }


@dataclass(frozen=True, slots=True)
class RequestAdmissionEvent:
    """One request-side fact: waits, leases, outbound attempts, AIMD transitions."""

    event_kind: str
    sequence: int
    captured_at_monotonic: float
    captured_correlation: Mapping[str, JsonValue]
    request_attempt_id: str | None = None
    request_lease_id: str | None = None
    request_resource_key: str | None = None
    request_group_key: str | None = None
    reason: str | None = None
    snapshot: JsonValue = None
    diagnostics: Mapping[str, JsonValue] = field(default_factory=dict)

    stream = "requests"

    def as_json(self) -> JsonObject:
        """This event as one JSON object (the JSONL line shape)."""
        return {
            "stream": "requests",
            "event_kind": self.event_kind,
            "sequence": self.sequence,
            "captured_at_monotonic": self.captured_at_monotonic,
            "captured_correlation": dict(self.captured_correlation),
            "request_attempt_id": self.request_attempt_id,
            "request_lease_id": self.request_lease_id,
            "request_resource_key": self.request_resource_key,
            "request_group_key": self.request_group_key,
            "reason": self.reason,
            "snapshot": self.snapshot,
            "diagnostics": dict(self.diagnostics),
        }


class SchedulerAdmissionEventSink(Protocol):
    """Receives scheduler events. Must not block; may be called from any coroutine."""

    def emit(self, event: SchedulerAdmissionEvent) -> None: ...


class RequestAdmissionEventSink(Protocol):
    """Receives request events. Must not block; may be called from any coroutine."""

    def emit(self, event: RequestAdmissionEvent) -> None: ...


class _EmitterBase:
    __slots__ = (
        "_append",
        "_clock",
        "_current",
        "_failures",
        "_kinds",
        "_log",
        "_on",
        "_sequence",
        "_sink",
    )

    def __init__(
        self,
        sink: Any,
        monotonic: Callable[[], float],
        correlation: RuntimeCorrelationProvider | None,
        log: Any,
    ) -> None:
        self._sink = sink
        self._log = log
        self._append: tuple[Callable[[Any], None], ...] | None = (
            tuple(column.append for column in log.columns) if log is not None else None
        )
        self._kinds: list[Any] = log.columns[0] if log is not None else []
        self._on = sink is not None or log is not None
        self._clock = monotonic
        self._sequence = itertools.count(1)
        self._current: Callable[[], RuntimeCorrelation | None] = (
            correlation.current
            if correlation is not None and type(correlation) is not RuntimeCorrelationProvider
            else current_correlation
        )
        self._failures = 0

    @property
    def enabled(self) -> bool:
        """False when nothing receives events; callers may skip building diagnostics."""
        return self._on

    @property
    def sink_failures(self) -> int:
        """How many emissions a sink raised on (swallowed, logged once)."""
        return self._failures

    def _correlation_json(self, correlation: Any) -> Mapping[str, JsonValue]:
        if isinstance(correlation, Mapping):
            return correlation
        return correlation.as_json() if correlation is not None else _EMPTY

    def _deliver(self, event: Any) -> None:
        try:
            self._sink.emit(event)
        except Exception:
            self._failures += 1
            if self._failures == 1:
                _log.exception("an event sink failed; generation continues")


class SchedulerEventEmitter(_EmitterBase):
    """Emits scheduler events with per-stream sequence numbers.

    An `EventLog` (`log`) receives one value per buffered column (the cheap path every run uses);
    an object `sink` (in-memory, fan-out, OpenTelemetry) receives a frozen event object.
    """

    __slots__ = ()

    def __init__(
        self,
        sink: SchedulerAdmissionEventSink | None,
        monotonic: Callable[[], float],
        correlation: RuntimeCorrelationProvider | None = None,
        *,
        log: Any = None,
    ) -> None:
        super().__init__(sink, monotonic, correlation, log)

    def emit(
        self,
        event_kind: str,
        *,
        correlation: RuntimeCorrelation | None = None,
        task_id: str | None = None,
        task_execution_id: str | None = None,
        task_lease_id: str | None = None,
        scheduler_resource_key: str | None = None,
        reason: str | None = None,
        snapshot: Any = None,
        diagnostics: Mapping[str, Any] | None = None,
    ) -> None:
        """Emit one event; never raises because of the sink."""
        if not self._on:
            return
        code = _SCHEDULER_KIND_CODES.get(event_kind)
        if code is None:
            raise ValueError(f"unknown scheduler event kind {event_kind!r}")
        t = self._clock()
        corr = correlation if correlation is not None else self._current()
        append = self._append
        if append is not None:
            a0, a1, a2, a3, a4, a5, a6, a7, a8, a9 = append
            a0(code)
            a1(t)
            a2(corr)
            a3(task_id)
            a4(task_execution_id)
            a5(task_lease_id)
            a6(scheduler_resource_key)
            a7(reason)
            a8(snapshot)
            a9(diagnostics)
            if len(self._kinds) >= SPILL_ROWS:
                self._log.spill()
        if self._sink is not None:
            event = SchedulerAdmissionEvent(
                event_kind=event_kind,
                sequence=next(self._sequence),
                captured_at_monotonic=t,
                captured_correlation=self._correlation_json(corr),
                task_id=task_id,
                task_execution_id=task_execution_id,
                task_lease_id=task_lease_id,
                scheduler_resource_key=scheduler_resource_key,
                reason=reason,
                snapshot=to_json_value(snapshot) if snapshot is not None else None,
                diagnostics=_json_object(diagnostics),
            )
            self._deliver(event)


class RequestEventEmitter(_EmitterBase):
    """Emits request events with per-stream sequence numbers (`log` and `sink` as for
    `SchedulerEventEmitter`)."""

    __slots__ = ()

    def __init__(
        self,
        sink: RequestAdmissionEventSink | None,
        monotonic: Callable[[], float],
        correlation: RuntimeCorrelationProvider | None = None,
        *,
        log: Any = None,
    ) -> None:
        super().__init__(sink, monotonic, correlation, log)

    def emit(
        self,
        event_kind: str,
        *,
        correlation: RuntimeCorrelation | Mapping[str, JsonValue] | None = None,
        request_attempt_id: str | None = None,
        request_lease_id: str | None = None,
        request_resource_key: Any = None,
        request_group_key: Any = None,
        reason: str | None = None,
        snapshot: Any = None,
        diagnostics: Mapping[str, Any] | None = None,
    ) -> None:
        """Emit one event; never raises because of the sink.

        `correlation` may be an already-captured JSON mapping (from a `RequestEventContext`),
        a `RuntimeCorrelation`, or None to read the current context.
        """
        if self._on:
            self.emit_fields(
                event_kind,
                correlation,
                request_attempt_id,
                request_lease_id,
                request_resource_key,
                request_group_key,
                reason,
                snapshot,
                diagnostics,
            )

    def emit_fields(
        self,
        event_kind: str,
        correlation: RuntimeCorrelation | Mapping[str, JsonValue] | None,
        request_attempt_id: str | None,
        request_lease_id: str | None,
        request_resource_key: Any,
        request_group_key: Any,
        reason: str | None,
        snapshot: Any,
        diagnostics: Mapping[str, Any] | None,
        diagnostics_task_execution_id: str | None = None,
    ) -> None:
        """`emit` with positional fields (the request admission controller's path).

        `diagnostics_task_execution_id` belongs in `diagnostics` (as its last key): passing it
        apart spares building a dict per event.
        """
        if not self._on:
            return
        code = _REQUEST_KIND_CODES.get(event_kind)
        if code is None:
            raise ValueError(f"unknown request event kind {event_kind!r}")
        t = self._clock()
        corr = correlation if correlation is not None else self._current()
        append = self._append
        if append is not None:
            a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = append
            a0(code)
            a1(t)
            a2(corr)
            a3(request_attempt_id)
            a4(request_lease_id)
            a5(request_resource_key)
            a6(request_group_key)
            a7(reason)
            a8(snapshot)
            a9(diagnostics)
            a10(diagnostics_task_execution_id)
            if len(self._kinds) >= SPILL_ROWS:
                self._log.spill()
        if self._sink is not None:
            event = RequestAdmissionEvent(
                event_kind=event_kind,
                sequence=next(self._sequence),
                captured_at_monotonic=t,
                captured_correlation=self._correlation_json(corr),
                request_attempt_id=request_attempt_id,
                request_lease_id=request_lease_id,
                request_resource_key=key_str(request_resource_key),
                request_group_key=key_str(request_group_key),
                reason=reason,
                snapshot=to_json_value(snapshot) if snapshot is not None else None,
                diagnostics=_json_object(
                    diagnostics
                    if diagnostics_task_execution_id is None
                    else {**(diagnostics or {}), "task_execution_id": diagnostics_task_execution_id}
                ),
            )
            self._deliver(event)


def _json_object(diagnostics: Mapping[str, Any] | None) -> Mapping[str, JsonValue]:
    if not diagnostics:
        return _EMPTY
    return {str(k): to_json_value(v) for k, v in diagnostics.items()}
