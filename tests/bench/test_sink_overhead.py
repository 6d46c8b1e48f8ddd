"""`sink_overhead` pairs events-off and events-on runs and measures the event files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rowloom.bench.registry import get_scenario
from rowloom.bench.scenario import IterationContext


def test_sink_overhead_pairs_runs_and_sizes_the_event_files(tmp_path: Path) -> None:
    scenario = get_scenario("sink_overhead")
    knobs = scenario.resolve_knobs({"pairs": "1"})
    ctx = IterationContext(200, 7, knobs, False, tmp_path, 0)
    result = asyncio.run(scenario.run_iteration(ctx))
    assert result.status == "complete"
    m = result.metrics
    assert m["events_on_cpu_seconds"] > 0 and m["events_off_cpu_seconds"] > 0
    assert (
        m["events_cpu_overhead_fraction"]
        == m["events_on_cpu_seconds"] / m["events_off_cpu_seconds"] - 1
    )
    assert m["events_per_run"] > 200 * 2 * 10  # two model cells per row, ~15+ events each
    assert m["jsonl_bytes_per_event"] > m["arrow_bytes_per_event"] > 0
    assert m["report_cpu_seconds"] > 0
    assert result.details["pairs"] == [
        {"off": m["events_off_cpu_seconds"], "on": m["events_on_cpu_seconds"]}
    ]
    assert not list(tmp_path.iterdir())  # the runs' folders are removed
