"""OpenTelemetry bridge: rowloom's two event streams as metrics and spans (`opentelemetry-api`).

`OtelEventBridge` gives a scheduler sink and a request sink to attach to event emitters
(through `FanOutEventSink`), or replays a finished run folder's events (`replay`). It
configures no SDK, exporter or provider: it takes a `Meter` and a `Tracer` (default: the
global providers the application set up).

Metrics carry bounded labels only: `rowloom.event_kind`, `rowloom.resource_kind`,
`rowloom.provider`, `rowloom.model` (a bounded label: the model's aliases from the dataset
config, never the raw model id; unknown endpoints become `other`), `rowloom.domain`,
`rowloom.outcome`. Run ids, row groups, columns, task/lease/attempt ids and raw model ids appear
on spans only. Events never carry prompts, completions, row values or secrets, so neither does
anything derived here.

Spans: one `rowloom.task` span per task execution (task lease acquired -> outcome booked), with
one child span per request attempt (request wait started -> provider call completed), named
and attributed after the GenAI semantic conventions (`{gen_ai.operation.name}
{gen_ai.request.model}`, `gen_ai.*`, `error.type`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, Meter, Observation
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
except ImportError as exc:  # pragma: no cover - exercised by the import test
    raise ImportError(
        "rowloom.integrations.otel needs the OpenTelemetry API: "
        "pip install 'rowloom[otel]' (or opentelemetry-api>=1.25)"
    ) from exc

from rowloom.config.dataset import DatasetConfig
from rowloom.observability.eventread import iter_event_objects
from rowloom.observability.events import RequestAdmissionEvent, SchedulerAdmissionEvent

OTHER_MODEL: Final = "other"
_OPERATION: Final = {"chat": "chat", "embedding": "embeddings", "image": "generate_content"}
_TERMINAL: Final = frozenset(
    {
        "task_completed",
        "retry_deferred",
        "non_retryable_dropped",
        "cancelled",
        "worker_spawn_failed",
    }
)
_ATTEMPT_ENDS: Final = frozenset(
    {"request_wait_timeout", "request_wait_cancelled", "request_acquire_denied"}
)
_WAIT_OUTCOME: Final = {
    "request_wait_completed": "granted",
    "request_wait_timeout": "timeout",
    "request_wait_cancelled": "cancelled",
    "request_acquire_denied": "denied",
}


def model_labels_from_config(config: DatasetConfig) -> dict[str, str]:
    """`provider/model_id` -> a bounded label made of the endpoint's aliases (`a+b`)."""
    aliases: dict[str, list[str]] = {}
    for m in config.models:
        aliases.setdefault(f"{m.provider}/{m.model}", []).append(m.alias)
    return {key: "+".join(sorted(names)) for key, names in aliases.items()}


def split_resource_key(key: str) -> tuple[str, str, str]:
    """`provider/model/domain` -> its parts (model ids may contain `/`)."""
    provider, _, rest = key.partition("/")
    model, _, domain = rest.rpartition("/")
    return provider, model, domain


class OtelEventBridge:
    """Turns scheduler and request events into OpenTelemetry metrics and spans.

    Attach `scheduler_sink` and `request_sink` to the run's event emitters. Never raises into
    the emitter for a malformed event (the emitter shields generation anyway). Memory is
    bounded by the open task executions and request attempts.
    """

    def __init__(
        self,
        *,
        meter: Meter | None = None,
        tracer: Tracer | None = None,
        model_labels: Mapping[str, str] | None = None,
        clock_offset_seconds: float | None = None,
    ) -> None:
        self._meter = meter or metrics.get_meter("rowloom")
        self._tracer = tracer or trace.get_tracer("rowloom")
        self._labels = dict(model_labels or {})
        self._offset = (
            clock_offset_seconds
            if clock_offset_seconds is not None
            else time.time() - time.monotonic()
        )
        m = self._meter
        self._sched_events = m.create_counter(
            "rowloom.scheduler.events", unit="{event}", description="scheduler events by kind"
        )
        self._req_events = m.create_counter(
            "rowloom.request.events", unit="{event}", description="request events by kind"
        )
        self._task_leases = m.create_up_down_counter(
            "rowloom.task.leases", unit="{lease}", description="task leases held"
        )
        self._queued = m.create_up_down_counter(
            "rowloom.task.queued", unit="{task}", description="ready tasks waiting in the queue"
        )
        self._in_flight = m.create_up_down_counter(
            "rowloom.request.in_flight", unit="{request}", description="request leases held"
        )
        self._waiters = m.create_up_down_counter(
            "rowloom.request.waiters", unit="{request}", description="attempts waiting for a lease"
        )
        self._rate_limited = m.create_counter(
            "rowloom.request.rate_limited", unit="{response}", description="429 responses"
        )
        self._queue_wait = m.create_histogram(
            "rowloom.task.queue_wait.duration", unit="s", description="ready -> selected"
        )
        self._wait = m.create_histogram(
            "rowloom.request.wait.duration", unit="s", description="request admission wait"
        )
        self._latency = m.create_histogram(
            "rowloom.request.duration", unit="s", description="provider call duration"
        )
        self._limits: dict[tuple[str, str, str], tuple[int | None, int | None]] = {}
        m.create_observable_gauge(
            "rowloom.request.limit",
            callbacks=[self._observe_limits],
            unit="{request}",
            description="current adaptive limit per provider/model/domain",
        )
        m.create_observable_gauge(
            "rowloom.request.static_cap",
            callbacks=[self._observe_caps],
            unit="{request}",
            description="static cap of the provider/model endpoint",
        )
        self._enqueued_at: dict[str, float] = {}
        self._task_spans: dict[str, Span] = {}
        self._task_ends: dict[str, float] = {}
        self._attempts: dict[str, tuple[Span, float | None]] = {}
        self._waiting: set[str] = set()
        self.scheduler_sink = _SchedulerSink(self)
        self.request_sink = _RequestSink(self)

    def replay(self, run_dir: str | Path) -> int:
        """Feed a finished run's recorded events (its folder's `events/`) to the bridge in
        capture order, as it would have seen them live; returns how many."""
        n = 0
        for event in iter_event_objects(run_dir):
            if isinstance(event, SchedulerAdmissionEvent):
                self.on_scheduler(event)
            else:
                self.on_request(event)
            n += 1
        return n

    # --- labels and time -----------------------------------------------------------------------

    def _ns(self, monotonic: float) -> int:
        return int((monotonic + self._offset) * 1e9)

    def model_label(self, provider: str, model: str) -> str:
        """The bounded metric label of an endpoint (`other` when unknown)."""
        return self._labels.get(f"{provider}/{model}", OTHER_MODEL)

    def _resource_attrs(self, key: str | None) -> dict[str, str]:
        if not key:
            return {}
        provider, model, domain = split_resource_key(key)
        return {
            "rowloom.provider": provider,
            "rowloom.model": self.model_label(provider, model),
            "rowloom.domain": domain,
        }

    # --- scheduler events ----------------------------------------------------------------------

    def on_scheduler(self, e: SchedulerAdmissionEvent) -> None:
        kind, t = e.event_kind, e.captured_at_monotonic
        attrs = {"rowloom.event_kind": kind}
        if e.scheduler_resource_key:
            attrs["rowloom.resource_kind"] = e.scheduler_resource_key
        self._sched_events.add(1, attrs)
        ex = e.task_execution_id
        if kind == "ready_enqueued" and e.task_id:
            self._enqueued_at[e.task_id] = t
            self._queued.add(1)
        elif kind == "selected" and e.task_id:
            start = self._enqueued_at.pop(e.task_id, None)
            if start is not None:
                self._queued.add(-1)
                self._queue_wait.record(max(0.0, t - start))
        elif kind == "task_lease_acquired" and ex:
            self._task_leases.add(1, {"rowloom.resource_kind": e.scheduler_resource_key or ""})
            self._task_spans[ex] = self._tracer.start_span(
                "rowloom.task",
                start_time=self._ns(t),
                attributes=_task_attrs(e),
            )
        elif kind == "task_lease_released" and ex:
            if e.reason in (None, "released"):
                self._task_leases.add(-1, {"rowloom.resource_kind": e.scheduler_resource_key or ""})
            self._task_ends[ex] = t
        if kind in _TERMINAL and ex:
            self._end_task(ex, kind, e.reason, t)
        elif kind == "scheduler_job_completed":
            for open_ex in list(self._task_spans):
                self._end_task(open_ex, "unfinished", None, t)

    def _end_task(self, ex: str, kind: str, reason: str | None, t: float) -> None:
        span = self._task_spans.pop(ex, None)
        end = max(t, self._task_ends.pop(ex, t))
        if span is None:
            return
        outcome = reason if kind == "task_completed" and reason else kind
        span.set_attribute("rowloom.task.outcome", outcome)
        if outcome != "success":
            span.set_status(Status(StatusCode.ERROR, outcome))
        span.end(end_time=self._ns(end))

    # --- request events ------------------------------------------------------------------------

    def on_request(self, e: RequestAdmissionEvent) -> None:
        kind, t = e.event_kind, e.captured_at_monotonic
        res = self._resource_attrs(e.request_resource_key)
        self._req_events.add(1, {"rowloom.event_kind": kind, **res})
        snap = e.snapshot
        if res and isinstance(snap, dict):
            key = (res["rowloom.provider"], res["rowloom.model"], res["rowloom.domain"])
            limit, cap = snap.get("current_limit"), snap.get("static_cap")
            self._limits[key] = (
                limit if isinstance(limit, int) else None,
                cap if isinstance(cap, int) else None,
            )
        attempt = e.request_attempt_id
        if kind == "request_wait_started" and attempt:
            self._waiting.add(attempt)
            self._waiters.add(1, res)
            self._start_attempt(e, attempt, t)
        elif kind in _WAIT_OUTCOME and attempt:
            if attempt in self._waiting:
                self._waiting.discard(attempt)
                self._waiters.add(-1, res)
                wait = (e.diagnostics or {}).get("wait_seconds")
                if isinstance(wait, int | float):
                    self._wait.record(float(wait), {**res, "rowloom.outcome": _WAIT_OUTCOME[kind]})
            if kind in _ATTEMPT_ENDS:
                self._end_attempt(attempt, _WAIT_OUTCOME[kind], t, None)
        elif kind == "request_lease_acquired":
            self._in_flight.add(1, res)
            self._attempt_event(attempt, "request_lease_acquired", t)
        elif kind == "request_lease_released":
            self._in_flight.add(-1, res)
        elif kind == "model_request_started" and attempt:
            span, _ = self._attempts.get(attempt, (None, None))
            if span is not None:
                self._attempts[attempt] = (span, t)
                span.add_event("model_request_started", timestamp=self._ns(t))
        elif kind == "model_request_completed" and attempt:
            outcome = e.reason or "unknown"
            _, started = self._attempts.get(attempt, (None, None))
            if started is not None:
                self._latency.record(max(0.0, t - started), {**res, "rowloom.outcome": outcome})
            if outcome == "rate_limited":
                self._rate_limited.add(1, res)
            status = (e.diagnostics or {}).get("status_code")
            self._end_attempt(attempt, outcome, t, status if isinstance(status, int) else None)

    def _start_attempt(self, e: RequestAdmissionEvent, attempt: str, t: float) -> None:
        provider, model, domain = split_resource_key(e.request_resource_key or "//")
        operation = _OPERATION.get(domain, domain)
        ex = (e.captured_correlation or {}).get("task_execution_id")
        parent = self._task_spans.get(ex) if isinstance(ex, str) else None
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self._tracer.start_span(
            f"{operation} {model}",
            context=context,
            kind=SpanKind.CLIENT,
            start_time=self._ns(t),
            attributes={
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": model,
                "gen_ai.provider.name": provider,
                "rowloom.request.domain": domain,
                "rowloom.request.attempt_id": attempt,
                "rowloom.task.execution_id": ex if isinstance(ex, str) else "",
            },
        )
        self._attempts[attempt] = (span, None)

    def _attempt_event(self, attempt: str | None, name: str, t: float) -> None:
        span, _ = self._attempts.get(attempt or "", (None, None))
        if span is not None:
            span.add_event(name, timestamp=self._ns(t))

    def _end_attempt(self, attempt: str, outcome: str, t: float, status: int | None) -> None:
        span, _ = self._attempts.pop(attempt, (None, None))
        if span is None:
            return
        span.set_attribute("rowloom.request.outcome", outcome)
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if outcome not in ("success", "granted"):
            span.set_attribute("error.type", outcome)
            span.set_status(Status(StatusCode.ERROR, outcome))
        span.end(end_time=self._ns(t))

    # --- gauges --------------------------------------------------------------------------------

    def _observe_limits(self, options: CallbackOptions) -> Iterable[Observation]:
        return [_obs(limit, key) for key, (limit, _) in self._limits.items() if limit is not None]

    def _observe_caps(self, options: CallbackOptions) -> Iterable[Observation]:
        return [_obs(cap, key) for key, (_, cap) in self._limits.items() if cap is not None]


def _obs(value: int, key: tuple[str, str, str]) -> Observation:
    provider, model, domain = key
    return Observation(
        value, {"rowloom.provider": provider, "rowloom.model": model, "rowloom.domain": domain}
    )


def _task_attrs(e: SchedulerAdmissionEvent) -> dict[str, Any]:
    corr = e.captured_correlation or {}
    attrs: dict[str, Any] = {
        "rowloom.task.id": e.task_id or "",
        "rowloom.task.execution_id": e.task_execution_id or "",
        "rowloom.task.lease_id": e.task_lease_id or "",
    }
    for src, dst in (
        ("run_id", "rowloom.run_id"),
        ("row_group", "rowloom.row_group"),
        ("task_column", "rowloom.task.column"),
        ("task_type", "rowloom.task.type"),
        ("scheduling_group_kind", "rowloom.scheduling_group.kind"),
    ):
        value = corr.get(src)
        if isinstance(value, str | int):
            attrs[dst] = value
    return attrs


class _SchedulerSink:
    """`SchedulerAdmissionEventSink` feeding the bridge."""

    __slots__ = ("_bridge",)

    def __init__(self, bridge: OtelEventBridge) -> None:
        self._bridge = bridge

    def emit(self, event: SchedulerAdmissionEvent) -> None:
        self._bridge.on_scheduler(event)


class _RequestSink:
    """`RequestAdmissionEventSink` feeding the bridge."""

    __slots__ = ("_bridge",)

    def __init__(self, bridge: OtelEventBridge) -> None:
        self._bridge = bridge

    def emit(self, event: RequestAdmissionEvent) -> None:
        self._bridge.on_request(event)
