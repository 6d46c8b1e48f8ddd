"""`rowloom estimate` and the report's advice: the throughput model on known figures, the
measurement on real simulated runs, the CLI's JSON, and the estimate beside the outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.interface.estimate import (
    AIMD_EFFICIENCY,
    ESTIMATE_FILE,
    PilotMeasurement,
    ResourceRates,
    measure_run,
    predict,
    run_advice,
)
from rowloom.observability.view import CorrelatedRuntimeView


def _rates(**kw: Any) -> ResourceRates:
    base: dict[str, Any] = {
        "resource": "p/m/chat",
        "provider": "p",
        "aliases": ["writer"],
        "attempts_per_row": 2.0,
        "successes_per_row": 2.0,
        "rate_limited_fraction": 0.0,
        "latency_seconds": 0.5,
        "limit": 10,
        "limit_source": "static cap",
    }
    return ResourceRates(**{**base, **kw})


def _pilot(resources: list[ResourceRates], **kw: Any) -> PilotMeasurement:
    base: dict[str, Any] = {
        "rows": 10,
        "wall_seconds": 2.0,
        "rows_in_flight": 300,
        "resources": resources,
        "provider_limits": {},
        "tokens_per_row": {"writer": {"prompt_tokens": 100.0, "completion_tokens": 40.0}},
        "cost_per_row": {"writer": 0.002},
        "currency": "USD",
        "chain_seconds": 1.0,
    }
    return PilotMeasurement(**{**base, **kw})


def test_static_cap_binds_and_the_advice_names_the_setting() -> None:
    e = predict(_pilot([_rates()]), 1000)
    # 2000 requests at 10 in flight / 0.5 s = 20 req/s -> 100 s, plus one row's chain (1 s)
    assert e.predicted_requests == 2000
    assert e.predicted_wall_seconds == pytest.approx(101.0)
    assert e.binding_resource == "p/m/chat"
    assert "raise max_parallel_requests of writer" in e.binding_reason
    assert e.predicted_tokens_by_model["writer"] == {
        "prompt_tokens": 100_000,
        "completion_tokens": 40_000,
    }
    assert e.predicted_cost == pytest.approx(2.0)


def test_rows_in_flight_bind_when_smaller_than_the_limit() -> None:
    e = predict(_pilot([_rates()], rows_in_flight=5), 1000)
    assert e.resources[0].usable_limit == 5
    assert e.predicted_wall_seconds == pytest.approx(2000 / 10 + 1.0)
    assert "buffer_size" in e.binding_reason


def test_a_learned_limit_is_used_below_its_value() -> None:
    r = _rates(limit=8, limit_source="learned limit (429s)", rate_limited_fraction=0.02)
    e = predict(_pilot([r]), 1000)
    assert e.resources[0].usable_limit == pytest.approx(8 * AIMD_EFFICIENCY)
    assert "nothing to gain" in e.binding_reason


def test_a_shared_provider_limit_binds_over_its_models() -> None:
    a = _rates(resource="p/a/chat", aliases=["a"], attempts_per_row=1.0)
    b = _rates(resource="p/b/chat", aliases=["b"], attempts_per_row=1.0)
    e = predict(_pilot([a, b], provider_limits={"p": 8}), 1000)
    assert e.binding_resource == "provider p"
    provider = next(f for f in e.resources if f.resource == "provider p")
    # 2000 requests x 0.5 s busy over 8 x efficiency in flight
    assert provider.seconds == pytest.approx(2000 * 0.5 / (8 * AIMD_EFFICIENCY))
    assert "raising model limits gains nothing" in e.binding_reason
    assert e.predicted_requests_by_model == {"a": 1000, "b": 1000}


def test_without_model_requests_the_pilot_wall_scales() -> None:
    e = predict(_pilot([], tokens_per_row={}, cost_per_row={}), 100)
    assert e.predicted_wall_seconds == pytest.approx(20.0)
    assert e.binding_resource is None and e.predicted_cost is None


def test_measurement_round_trips_through_json() -> None:
    pilot = _pilot([_rates()])
    assert PilotMeasurement.from_json(json.loads(json.dumps(pilot.as_json()))) == pilot


def _llm(name: str, prompt: str) -> dict[str, Any]:
    return {"name": name, "column_type": "llm_text", "model_alias": "writer", "prompt": prompt}


def _config(cap: int, capacity: int = 64) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "sim",
                    "provider_type": "simulated",
                    "simulation": {"capacity": capacity, "latency_ms": 20, "seed": 1},
                }
            ],
            "models": [
                {"alias": "writer", "model": "m", "provider": "sim", "max_parallel_requests": cap}
            ],
            "columns": [
                {
                    "name": "t",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["a", "b"]},
                },
                {
                    "name": "q",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": "{{t}}",
                },
                {
                    "name": "r",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": "{{q}}",
                },
            ],
            "run": {"buffer_size": 20},
        }
    )


def test_measure_run_reads_rates_from_a_run_folder(tmp_path: Path) -> None:
    result = Designer(tmp_path).create(_config(cap=4), 40, "m")
    measured = measure_run(result.run_dir)
    (r,) = measured.resources
    assert r.aliases == ["writer"]
    assert r.attempts_per_row == pytest.approx(2.0)
    assert r.limit == 4 and r.limit_source == "static cap"
    assert 0.015 < r.latency_seconds < 1.0
    assert measured.rows_in_flight == 20 * 3
    assert "raise max_parallel_requests of writer" in (run_advice(result.run_dir) or "")


def test_estimate_is_kept_and_shown_beside_the_outcome(tmp_path: Path) -> None:
    designer = Designer(tmp_path)
    config = _config(cap=8)
    e = designer.estimate(config, 120, pilot=20)
    assert e.predicted_requests == 240
    assert e.config_fingerprint == config.fingerprint()
    result = designer.create(config, 120, "real")
    saved = json.loads((result.run_dir / ESTIMATE_FILE).read_text())
    assert saved["num_records"] == 120 and saved["predicted_requests"] == 240
    assert "Estimate and outcome" in result.report_path.read_text()


def test_estimate_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rowloom.interface.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config(cap=8).to_dict()))
    argv = ["estimate", str(path), "-n", "500", "--pilot", "10", "--format", "json"]
    with pytest.raises(SystemExit) as exit_info:
        main_with(main, argv, tmp_path)
    assert exit_info.value.code in (0, None)
    data = json.loads(capsys.readouterr().out)
    assert data["predicted_requests"] == 1000
    assert data["binding_resource"] == "sim/m/chat"
    assert data["predicted_wall_seconds"] > 0


def main_with(main: Any, argv: list[str], tmp_path: Path) -> None:
    import sys

    old = sys.argv
    sys.argv = ["rowloom", *argv, "--artifact-dir", str(tmp_path / "art")]
    try:
        main()
    finally:
        sys.argv = old


def test_wall_time_sums_job_spans_not_the_idle_time_between_resumes() -> None:
    def job(kind: str, t: float, seq: int) -> dict[str, Any]:
        return {"event_kind": kind, "captured_at_monotonic": t, "sequence": seq}

    events = [
        job("scheduler_job_started", 100.0, 1),
        job("scheduler_job_completed", 104.0, 2),
        job("scheduler_job_started", 160.0, 3),
        job("scheduler_job_completed", 161.5, 4),
    ]
    view = CorrelatedRuntimeView.from_events(events, [])
    assert view.wall_seconds == pytest.approx(5.5)
