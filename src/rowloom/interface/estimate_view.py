"""An estimate as people read it: the terminal table and the report's comparison block."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from rich.console import Console
from rich.table import Table

from rowloom.interface.estimate import Estimate


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def print_estimate(result: Estimate, console: Console) -> None:
    """The prediction, the resource that binds, and what each resource needs."""
    pilot = result.pilot
    console.print(
        f"estimate for {result.num_records:,} rows (from a pilot of {pilot.rows} rows, "
        f"{pilot.wall_seconds:.1f} s):",
        highlight=False,
    )
    console.print(f"  wall time    ~{_duration(result.predicted_wall_seconds)}", highlight=False)
    console.print(f"  requests     ~{result.predicted_requests:,}", highlight=False)
    if result.predicted_cost is not None:
        console.print(
            f"  cost         ~{result.predicted_cost:,.2f} {result.currency or ''}".rstrip(),
            highlight=False,
        )
    console.print(f"  binding      {result.binding_reason}", highlight=False)
    table = Table("resource", "requests", "usable limit", "req/s", "time", "limited by")
    for f in sorted(result.resources, key=lambda f: -f.seconds):
        table.add_row(
            f.resource,
            f"{f.requests:,}",
            f"{f.usable_limit:g}",
            f"{f.requests_per_second:.1f}",
            _duration(f.seconds),
            f.limited_by,
        )
    console.print(table)
    for alias, tokens in sorted(result.predicted_tokens_by_model.items()):
        console.print(
            f"  {alias}: ~{tokens.get('prompt_tokens', 0):,} prompt + "
            f"{tokens.get('completion_tokens', 0):,} completion tokens",
            highlight=False,
        )
    for note in result.notes:
        console.print(f"  note: {note}", highlight=False)


def estimate_vs_actual_html(estimate: Mapping[str, Any] | None, summary: Mapping[str, Any]) -> str:
    """The report block: predicted beside measured, when the run folder has an estimate."""
    if not estimate:
        return ""
    wall = float(summary.get("wall_seconds") or 0.0)
    predicted = float(estimate.get("predicted_wall_seconds") or 0.0)
    error = f"{100 * (predicted - wall) / wall:+.0f}%" if wall > 0 else "-"
    requests = summary.get("request_attempts")
    rows = [
        ("wall time", _duration(predicted), _duration(wall), error),
        ("model requests", f"{estimate.get('predicted_requests', 0):,}", f"{requests}", ""),
        ("binding resource", str(estimate.get("binding_resource")), "", ""),
    ]
    body = "".join(
        f"<tr><td>{escape(a)}</td><td class='n'>{escape(b)}</td><td class='n'>{escape(c)}</td>"
        f"<td class='n'>{escape(d)}</td></tr>"
        for a, b, c, d in rows
    )
    return (
        "<h2 id='estimate'>Estimate and outcome</h2><table><tr><th></th><th>estimated</th>"
        f"<th>measured</th><th>error</th></tr>{body}</table>"
        f"<div class='caption'>{escape(str(estimate.get('binding_reason', '')))}</div>"
    )
