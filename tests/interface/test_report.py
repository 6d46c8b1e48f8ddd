"""The run report: a self-contained HTML file written by every create run, and `rowloom report`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rowloom.config.dataset import DatasetConfig
from rowloom.interface.cli import app
from rowloom.interface.designer import Designer
from rowloom.interface.report import load_report, render_html, write_report
from rowloom.models.facade import ModelFacade

runner = CliRunner()


def config(
    *,
    capacity: int = 64,
    latency_ms: float = 2,
    text: dict[str, Any] | None = None,
) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "providers": [
                {
                    "name": "sim",
                    "provider_type": "simulated",
                    "simulation": {
                        "capacity": capacity,
                        "latency_ms": latency_ms,
                        "retry_after_s": 0.2,
                        "seed": 3,
                    },
                }
            ],
            "models": [
                {
                    "alias": "writer",
                    "model": "sim-writer",
                    "provider": "sim",
                    "max_parallel_requests": 8,
                }
            ],
            "columns": [
                {
                    "name": "topic",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["a", "b"]},
                },
                text
                or {
                    "name": "text",
                    "column_type": "llm_text",
                    "model_alias": "writer",
                    "prompt": "Write about {{ topic }}.",
                },
            ],
            "run": {"buffer_size": 10},
        }
    )


def test_every_create_run_writes_a_self_contained_report(tmp_path: Path) -> None:
    result = Designer(tmp_path).create(config(capacity=3), 40, "demo")
    html = result.report_path.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    # self-contained: no script, no stylesheet link, no remote resource of any kind
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", html)
    assert "url(" not in html
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}
    for section in (
        "Rows over time",
        "Providers",
        "Waiters over time",
        "Where the time went",
        "Derived metrics",
        "Dropped rows",
        "Capacity plan",
    ):
        assert section in html, section
    assert "sim/sim-writer/chat" in html
    assert html.count("<svg") >= 3  # rows, one provider, waiters
    assert "static cap (8)" in html and "current limit" in html
    assert "429 responses" in html  # capacity 3 under a cap of 8 forces rate limits
    # which rules are in force: the task admission policy and each resource's limit rule
    policy = result.capacity_plan["configured"]["task_admission_policy"]["value"]
    assert re.search(rf"task_admission_policy</td><td[^>]*>{re.escape(policy)}<", html)
    assert re.search(r"sim/sim-writer/chat</td><td>aimd<", html)


def test_report_data_matches_the_run(tmp_path: Path) -> None:
    result = Designer(tmp_path).create(config(), 30, "demo")
    report = load_report(result.run_dir)
    assert report.summary["status"] == "complete"
    assert report.summary["rows_written"] == 30
    assert report.summary["request_attempts"] == result.summary.request_attempts
    assert report.metrics.request_attempts_by_outcome == result.summary.requests_by_outcome
    assert report.capacity_plan == result.capacity_plan
    assert report.view.limiting_layer() is not None


_CALLED: list[asyncio.Event] = []


async def signal_then_chat(row: Mapping[str, Any], facade: ModelFacade) -> str:
    """Tells the test a model call is under way, then makes it."""
    _CALLED[0].set()
    return await facade.chat("writer", "hello")


def test_a_stopped_run_still_gets_a_report(tmp_path: Path) -> None:
    cfg = config(
        latency_ms=200,
        text={
            "name": "text",
            "column_type": "custom",
            "function": signal_then_chat,
            "model_aliases": ["writer"],
        },
    )

    async def main() -> None:
        _CALLED[:] = [asyncio.Event()]
        run = asyncio.ensure_future(Designer(tmp_path).acreate(cfg, 200, "stopped"))
        await _CALLED[0].wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(main())
    run_dir = tmp_path / "stopped"
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "incomplete" in html
    assert (run_dir / "capacity_plan.json").is_file()


def test_cli_report_prints_the_summary_and_rewrites_the_html(tmp_path: Path) -> None:
    result = Designer(tmp_path).create(config(), 20, "demo")
    result.report_path.unlink()
    out = runner.invoke(app, ["report", str(result.run_dir)], terminal_width=160)
    assert out.exit_code == 0, out.output
    assert "demo: complete" in out.output
    assert "where the time went" in out.output
    assert "sim/sim-writer/chat" in out.output
    assert result.report_path.is_file()
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2


def test_report_escapes_untrusted_text(tmp_path: Path) -> None:
    result = Designer(tmp_path).create(config(), 10, "demo")
    report = load_report(result.run_dir, summary={"stop_reason": "<script>alert(1)</script>"})
    html = render_html(report)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_a_folder_without_events_still_renders(tmp_path: Path) -> None:
    rc = config().run_config.model_copy(update={"write_events": False})
    result = Designer(tmp_path).create(config(), 10, "quiet", run_config=rc)
    html = write_report(result.run_dir).read_text(encoding="utf-8")
    assert "No scheduler events" in html and "Capacity plan" in html


def test_a_run_without_events_reports_its_requests_and_the_jargon_is_in_details(
    tmp_path: Path,
) -> None:
    from tests.interface.cli_support import write_config

    columns = [
        {
            "name": "t",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": ["a", "b"]},
        },
        {"name": "x", "column_type": "llm_text", "model_alias": "writer", "prompt": "{{ t }}"},
    ]
    path = write_config(tmp_path / "c.yaml", columns, run={"write_events": False})
    result = Designer(tmp_path / "art").create(path, 30, "quiet_run")
    assert result.summary.request_attempts >= 30
    later = load_report(result.run_dir)  # as `rowloom report RUN_DIR` does, with no summary given
    assert later.summary["request_attempts"] == result.summary.request_attempts
    html = render_html(later)
    assert f"{result.summary.request_attempts}</b><span>model requests" in html
    details = html[html.index('<h2 id="engine">') :]
    assert details.index("<details>") < details.index("hidden scheduler resource waiters")
