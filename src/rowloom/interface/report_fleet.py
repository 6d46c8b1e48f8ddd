"""The report's "Fleet" section for a Ray run: `fleet.json` as HTML (escaped text, inline SVG).

What a user of `--engine ray` asks of a run: did every worker pull its weight (rows,
requests, 429s per worker), did any die and what ran again, and how the one shared limit per
provider moved over the run, with each worker's share of it (from the share changes the
workers adopted) and each coordinator's final word (limit, ceiling, cuts, reports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from rowloom.interface.report_charts import Chart, Line, bar_rows, legend, time_chart

_COLORS = ("#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be123c", "#4d7c0f")
MAX_CHARTS = 4
"""Share keys drawn (the ones whose fleet limit moved first); the rest are in the table."""
MAX_WORKER_LINES = 8
"""Workers drawn one line each in a limit chart; beyond, only the fleet limit is drawn."""


def fleet_section(fleet: Mapping[str, Any] | None) -> str:
    """The section's HTML, or "" for a run without `fleet.json` (not a Ray run)."""
    if not fleet:
        return ""
    out = ['<h2 id="fleet">Fleet</h2>', _overview(fleet), _worker_table(fleet)]
    changes = [c for c in fleet.get("share_changes") or [] if isinstance(c, Mapping)]
    for key in _charted_keys(changes, fleet.get("coordinators") or {}):
        chart = limit_chart(key, changes)
        out.append(f"<h3>{escape(key)}</h3>{time_chart(chart)}{legend(chart)}")
    out.append(_coordinator_table(fleet.get("coordinators") or {}))
    return "".join(out)


def _overview(fleet: Mapping[str, Any]) -> str:
    started = list(fleet.get("workers_started") or [])
    died = list(fleet.get("workers_died") or [])
    parts = [
        f"{fleet.get('workers', len(started))} workers",
        f"{len(started)} started",
        f"{len(died)} died" + (f" ({escape(', '.join(map(str, died)))})" if died else ""),
        f"{fleet.get('row_groups_requeued', 0)} row groups re-queued",
        f"{fleet.get('duplicate_attempts_removed', 0)} duplicate attempts removed",
    ]
    address = fleet.get("ray_address")
    where = f"cluster {escape(str(address))}" if address else "a local Ray runtime"
    return f'<div class="caption">{" · ".join(parts)} · on {where}.</div>'


def _worker_table(fleet: Mapping[str, Any]) -> str:
    rows_by = {str(k): int(v) for k, v in (fleet.get("rows_by_worker") or {}).items()}
    requests_by = fleet.get("requests_by_worker") or {}
    died = set(map(str, fleet.get("workers_died") or []))
    workers = sorted({*rows_by, *requests_by, *map(str, fleet.get("workers_started") or [])})
    if not workers:
        return '<p class="muted">No worker finished a row group.</p>'
    out = [
        "<table><tr><th>worker</th><th>rows</th><th>model requests</th><th>429s</th>"
        "<th>429 share</th><th>state</th></tr>"
    ]
    for w in workers:
        req = requests_by.get(w) or {}
        attempts = int(req.get("attempts", 0))
        limited = int((req.get("by_outcome") or {}).get("rate_limited", 0))
        share = f"{100 * limited / attempts:.1f}%" if attempts else "-"
        state = "died (replaced)" if w in died else "finished"
        out.append(
            f"<tr><td>{escape(w)}</td><td class='n'>{rows_by.get(w, 0)}</td>"
            f"<td class='n'>{attempts}</td><td class='n'>{limited}</td>"
            f"<td class='n'>{share}</td><td>{state}</td></tr>"
        )
    out.append("</table>")
    total = sum(rows_by.values())
    if total:
        bars: Sequence[tuple[str, float, str]] = [
            (w, rows_by.get(w, 0) / total, f"{rows_by.get(w, 0)} rows") for w in workers
        ]
        out.append('<div class="caption">Rows committed per worker:</div>' + bar_rows(bars))
    return "".join(out)


def _charted_keys(
    changes: Sequence[Mapping[str, Any]], coordinators: Mapping[str, Any]
) -> list[str]:
    """Keys whose fleet limit moved (adaptive ones), most cuts first; else the first keys."""
    limits: dict[str, set[int]] = {}
    for c in changes:
        limits.setdefault(str(c.get("key")), set()).add(int(c.get("limit", 0)))
    cuts = {
        str(key): int(view.get("cuts", 0))
        for per_provider in coordinators.values()
        if isinstance(per_provider, Mapping)
        for key, view in per_provider.items()
        if isinstance(view, Mapping)
    }
    moved = [k for k, seen in limits.items() if len(seen) > 1]
    keys = moved or list(limits)
    return sorted(keys, key=lambda k: (-cuts.get(k, 0), k))[:MAX_CHARTS]


def limit_chart(key: str, changes: Sequence[Mapping[str, Any]]) -> Chart:
    """The key's fleet limit over the run and each worker's share of it (step lines).

    Times are the workers' monotonic clocks from the first change; workers on one machine
    share that clock (on a cluster each node has its own).
    """
    mine = sorted((c for c in changes if c.get("key") == key), key=lambda c: float(c["t"]))
    if not mine:
        return Chart(key, [], 1.0)
    t0 = float(mine[0]["t"])
    limit: list[tuple[float, float]] = []
    shares: dict[str, list[tuple[float, float]]] = {}
    for c in mine:
        t = float(c["t"]) - t0
        if not limit or limit[-1][1] != c["limit"]:
            limit.append((t, float(c["limit"])))
        shares.setdefault(str(c["worker"]), []).append((t, float(c["share"])))
    x_max = max(float(mine[-1]["t"]) - t0, 1e-3)
    limit.append((x_max, limit[-1][1]))
    lines = [Line("fleet limit (shared)", limit, "#111827", width=2.2)]
    if len(shares) <= MAX_WORKER_LINES:
        for i, (worker, points) in enumerate(sorted(shares.items())):
            points.append((x_max, points[-1][1]))
            color = _COLORS[i % len(_COLORS)]
            lines.append(Line(f"share of {worker}", points, color, dashed=True))
    return Chart(key, lines, x_max, y_label="requests in flight")


def _coordinator_table(coordinators: Mapping[str, Any]) -> str:
    rows = []
    for provider, keys in sorted(coordinators.items()):
        if not isinstance(keys, Mapping):
            continue
        if "error" in keys:
            rows.append(
                f"<tr><td>{escape(str(provider))}</td><td colspan='5'>lost: "
                f"{escape(str(keys['error']))}</td></tr>"
            )
            continue
        for key, v in sorted(keys.items()):
            if not isinstance(v, Mapping):
                continue
            ceiling = v.get("ceiling")
            rows.append(
                f"<tr><td>{escape(str(key))}</td><td class='n'>{v.get('fleet_limit', '-')}</td>"
                f"<td class='n'>{v.get('max_limit', '-')}</td>"
                f"<td class='n'>{ceiling if ceiling is not None else '-'}</td>"
                f"<td class='n'>{v.get('cuts', 0)}</td>"
                f"<td class='n'>{v.get('reports', 0)}</td></tr>"
            )
    if not rows:
        return ""
    return (
        '<div class="caption">Each coordinator at the end of the run (one per provider; the '
        "limit is shared by the whole fleet):</div><table><tr><th>share key</th>"
        "<th>fleet limit</th><th>configured max</th><th>ceiling learnt</th><th>cuts</th>"
        "<th>reports</th></tr>" + "".join(rows) + "</table>"
    )
