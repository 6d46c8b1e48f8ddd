"""The report's Fleet section: what a Ray run's `fleet.json` says, per worker and over time."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rowloom.interface.report import write_report
from rowloom.interface.report_fleet import fleet_section, limit_chart


def _fleet() -> dict[str, Any]:
    changes = []
    # the shared limit ramps 6 -> 10, a 429 cuts it to 7; two workers split it
    for t, limit, a, b in [(0.0, 6, 3, 3), (1.0, 10, 5, 5), (2.0, 7, 4, 3), (3.0, 8, 4, 4)]:
        for worker, share in (("w1", a), ("w3", b)):
            changes.append(
                {
                    "t": 100.0 + t,
                    "worker": worker,
                    "key": "provider:mock",
                    "share": share,
                    "limit": limit,
                    "generation": 1,
                }
            )
    changes.append(
        {"t": 100.5, "worker": "w1", "key": "<b>fixed</b>", "share": 4, "limit": 8, "generation": 1}
    )
    return {
        "engine": "ray",
        "workers": 2,
        "ray_address": None,
        "workers_started": ["w1", "w2", "w3"],
        "workers_died": ["w2"],
        "batches": 9,
        "row_groups_requeued": 2,
        "duplicate_attempts_removed": 1,
        "rows_by_worker": {"w1": 60, "w3": 40},
        "requests_by_worker": {
            "w1": {"attempts": 125, "by_outcome": {"success": 120, "rate_limited": 5}},
            "w2": {"attempts": 10, "by_outcome": {"success": 10}},
            "w3": {"attempts": 80, "by_outcome": {"success": 80}},
        },
        "coordinators": {
            "mock": {
                "provider:mock": {
                    "fleet_limit": 8,
                    "max_limit": 64,
                    "generation": 3,
                    "ceiling": 10,
                    "cuts": 1,
                    "reports": 240,
                },
                "<b>fixed</b>": {"fleet_limit": 8, "max_limit": 8, "cuts": 0, "reports": 240},
            },
            "other": {"error": "coordinator lost <again>"},
        },
        "share_changes": changes,
    }


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_fleet_section_shows_every_worker_and_the_shared_limit() -> None:
    html = fleet_section(_fleet())
    text = _text(html)
    assert html.startswith('<h2 id="fleet">Fleet</h2>')
    assert "3 started · 1 died (w2) · 2 row groups re-queued" in text
    assert "1 duplicate attempts removed · on a local Ray runtime" in text
    # per worker: rows, requests, 429s (w1 drew 5 of 125: 4.0%), the dead one marked
    assert "w1 60 125 5 4.0% finished" in text
    assert "w2 0 10 0 0.0% died (replaced)" in text
    assert "w3 40 80 0 0.0% finished" in text
    # the adaptive key is drawn (its limit moved), with each worker's share; the fixed cap
    # (its limit never moved) is only in the coordinators' table
    assert html.count("<svg") == 1 and "<h3>provider:mock</h3>" in html
    assert "fleet limit (shared)" in text and "share of w1" in text and "share of w3" in text
    assert "provider:mock 8 64 10 1 240" in text
    assert "lost: coordinator lost &lt;again&gt;" in html
    # untrusted names are escaped everywhere
    assert "<b>fixed</b>" not in html and "&lt;b&gt;fixed&lt;/b&gt;" in html


def test_the_limit_chart_follows_the_share_changes() -> None:
    chart = limit_chart("provider:mock", _fleet()["share_changes"])
    limit = chart.lines[0]
    assert limit.label == "fleet limit (shared)"
    # one step per change of the limit, from the first change, held to the end
    assert list(limit.points) == [(0.0, 6.0), (1.0, 10.0), (2.0, 7.0), (3.0, 8.0), (3.0, 8.0)]
    shares = {ln.label: list(ln.points) for ln in chart.lines[1:]}
    assert shares["share of w1"][:3] == [(0.0, 3.0), (1.0, 5.0), (2.0, 4.0)]
    assert chart.x_max == 3.0


def test_only_a_ray_run_has_a_fleet_section(tmp_path: Path) -> None:
    assert fleet_section(None) == "" and fleet_section({}) == ""
    plain = tmp_path / "plain"
    plain.mkdir()
    assert 'id="fleet"' not in write_report(plain).read_text(encoding="utf-8")
    ray_run = tmp_path / "ray"
    ray_run.mkdir()
    (ray_run / "fleet.json").write_text(json.dumps(_fleet()), encoding="utf-8")
    html = write_report(ray_run).read_text(encoding="utf-8")
    assert '<h2 id="fleet">Fleet</h2>' in html and "share of w3" in html
