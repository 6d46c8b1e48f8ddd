"""Observability: the scheduler and request event streams, their sinks, runtime correlation,
the run folder's event log (`events/*.arrows`) and its readers, and `CorrelatedRuntimeView`,
which joins both streams and says which layer limited a run.

Read a run's events only through this package: `read_events(run_dir, stream)` (a `pa.Table`),
`iter_event_dicts` (each event's JSON object), `json_lines` (the JSONL form), or
`iter_event_objects` (event objects, to replay into a sink).
"""

from rowloom.observability.correlation import RuntimeCorrelation, RuntimeCorrelationProvider
from rowloom.observability.eventread import (
    has_events,
    iter_event_dicts,
    iter_event_objects,
    json_lines,
    read_events,
)
from rowloom.observability.events import (
    REQUEST_EVENT_KINDS,
    SCHEDULER_EVENT_KINDS,
    RequestAdmissionEvent,
    RequestAdmissionEventSink,
    RequestEventEmitter,
    SchedulerAdmissionEvent,
    SchedulerAdmissionEventSink,
    SchedulerEventEmitter,
)
from rowloom.observability.sinks import FanOutEventSink, InMemoryEventSink, JsonlEventSink
from rowloom.observability.view import (
    LAYERS,
    TIMELINE_FIELDS,
    CorrelatedRuntimeView,
    DerivedMetrics,
    Distribution,
    LayerWaitBreakdown,
    ResourceTimeline,
    TaskTimeline,
)

__all__ = [
    "LAYERS",
    "REQUEST_EVENT_KINDS",
    "SCHEDULER_EVENT_KINDS",
    "TIMELINE_FIELDS",
    "CorrelatedRuntimeView",
    "DerivedMetrics",
    "Distribution",
    "FanOutEventSink",
    "InMemoryEventSink",
    "JsonlEventSink",
    "LayerWaitBreakdown",
    "RequestAdmissionEvent",
    "RequestAdmissionEventSink",
    "RequestEventEmitter",
    "ResourceTimeline",
    "RuntimeCorrelation",
    "RuntimeCorrelationProvider",
    "SchedulerAdmissionEvent",
    "SchedulerAdmissionEventSink",
    "SchedulerEventEmitter",
    "TaskTimeline",
    "has_events",
    "iter_event_dicts",
    "iter_event_objects",
    "json_lines",
    "read_events",
]
