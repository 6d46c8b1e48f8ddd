"""The OpenTelemetry bridge with the SDK's in-memory exporters: names, attributes, safety."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rowloom.config.dataset import DatasetConfig
from rowloom.integrations.otel import OtelEventBridge, model_labels_from_config
from rowloom.interface.designer import Designer
from rowloom.observability import read_events
from rowloom.observability.events import (
    SchedulerEventEmitter,
)
from rowloom.observability.sinks import FanOutEventSink, InMemoryEventSink

MODEL_ID = "vendor/raw-model-id-2025-01"
MARKER = "PROMPT-MARKER-91b"
TOPICS = ["rivers", "glaciers", "deserts"]
ALLOWED_LABELS = {
    "rowloom.event_kind",
    "rowloom.resource_kind",
    "rowloom.provider",
    "rowloom.model",
    "rowloom.domain",
    "rowloom.outcome",
}


def _config() -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "sim",
                    "provider_type": "simulated",
                    "simulation": {"capacity": 3, "latency_ms": 3, "retry_after_s": 0.1, "seed": 5},
                }
            ],
            "models": [
                {
                    "alias": "writer",
                    "model": MODEL_ID,
                    "provider": "sim",
                    "max_parallel_requests": 6,
                }
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": TOPICS},
                },
                {
                    "name": "text",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": f"{MARKER} {{{{ topic }}}}",
                },
            ],
            "run": {"buffer_size": 10},
        }
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = Designer(tmp_path_factory.mktemp("otel")).create(_config(), 30, "otel")
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    bridge = OtelEventBridge(
        meter=meters.get_meter("test"),
        tracer=tracers.get_tracer("test"),
        model_labels=model_labels_from_config(_config()),
    )
    replayed = bridge.replay(result.run_dir)
    recorded = sum(read_events(result.run_dir, s).num_rows for s in ("scheduler", "requests"))
    assert replayed == recorded > 0
    points: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    value = getattr(p, "value", None)
                    if value is None:
                        value = p.count
                    points.setdefault(metric.name, []).append((dict(p.attributes), value))
    return {"points": points, "spans": spans.get_finished_spans(), "result": result}


def test_metric_names_and_final_gauges(exported: dict[str, Any]) -> None:
    points = exported["points"]
    assert set(points) >= {
        "rowloom.scheduler.events",
        "rowloom.request.events",
        "rowloom.task.leases",
        "rowloom.task.queued",
        "rowloom.request.in_flight",
        "rowloom.request.waiters",
        "rowloom.request.rate_limited",
        "rowloom.request.limit",
        "rowloom.request.static_cap",
        "rowloom.task.queue_wait.duration",
        "rowloom.request.wait.duration",
        "rowloom.request.duration",
    }
    assert all(v == 0 for _, v in points["rowloom.request.in_flight"])
    assert all(v == 0 for _, v in points["rowloom.request.waiters"])
    assert all(v == 0 for _, v in points["rowloom.task.leases"])
    limits = {a["rowloom.model"]: v for a, v in points["rowloom.request.static_cap"]}
    assert limits == {"writer": 6}
    attempts = exported["result"].summary.request_attempts
    assert sum(v for _, v in points["rowloom.request.duration"]) == attempts
    assert (
        sum(v for _, v in points["rowloom.request.rate_limited"])
        == (exported["result"].summary.requests_by_outcome.get("rate_limited", 0))
        > 0
    )


def test_metric_labels_are_bounded_and_carry_no_raw_ids_prompts_or_values(
    exported: dict[str, Any],
) -> None:
    for name, points in exported["points"].items():
        for attrs, _ in points:
            assert set(attrs) <= ALLOWED_LABELS, (name, attrs)
            for value in attrs.values():
                text = str(value)
                assert MODEL_ID not in text and "raw-model-id" not in text, (name, attrs)
                assert MARKER not in text and text not in TOPICS, (name, attrs)
                assert not text.startswith(("te-", "ra-", "tl", "rq")), (name, attrs)
    models = {a.get("rowloom.model") for pts in exported["points"].values() for a, _ in pts}
    assert models - {None} == {"writer"}


def test_spans_nest_request_attempts_under_tasks_with_genai_attributes(
    exported: dict[str, Any],
) -> None:
    spans: list[ReadableSpan] = list(exported["spans"])
    tasks = {s.context.span_id: s for s in spans if s.name == "rowloom.task"}
    attempts = [s for s in spans if s.name != "rowloom.task"]
    assert len(attempts) == exported["result"].summary.request_attempts
    for span in attempts:
        assert span.name == f"chat {MODEL_ID}"
        assert span.attributes is not None
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.request.model"] == MODEL_ID
        assert span.attributes["gen_ai.provider.name"] == "sim"
        assert span.parent is not None and span.parent.span_id in tasks
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time
    limited = [s for s in attempts if s.attributes.get("error.type") == "rate_limited"]
    assert limited and all(s.attributes["http.response.status_code"] == 429 for s in limited)
    outcomes = {s.attributes["rowloom.task.outcome"] for s in tasks.values()}
    assert outcomes == {"success"}
    for span in spans:
        assert MARKER not in json.dumps(dict(span.attributes or {}), default=str)


def test_the_bridge_attaches_beside_other_sinks() -> None:
    reader = InMemoryMetricReader()
    bridge = OtelEventBridge(
        meter=MeterProvider(metric_readers=[reader]).get_meter("t"),
        tracer=TracerProvider().get_tracer("t"),
    )
    memory: InMemoryEventSink[Any] = InMemoryEventSink()
    emitter = SchedulerEventEmitter(FanOutEventSink(memory, bridge.scheduler_sink), lambda: 1.0)
    emitter.emit("queue_empty")
    assert memory.kinds() == ["queue_empty"]
    names = [
        m.name
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    ]
    assert "rowloom.scheduler.events" in names


def test_importing_without_the_api_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "rowloom.integrations.otel", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'rowloom\[otel\]'"):
        importlib.import_module("rowloom.integrations.otel")
