"""Observability: the scheduler and request event streams, their sinks, runtime correlation,
and `CorrelatedRuntimeView`, which joins both streams and says which layer limited a run."""

from rowloom.observability.correlation import RuntimeCorrelation, RuntimeCorrelationProvider
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
]
