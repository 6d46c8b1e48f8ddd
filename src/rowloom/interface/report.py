"""The run report: `report.html` (one self-contained file) and the terminal summary.

Both are built from a run folder alone (manifest, capacity plan, event streams), so
`rowloom report RUN_DIR` can (re)write them for any finished or stopped run. The HTML embeds
inline SVG charts and CSS only: no script, no network. Neither output contains prompts,
generated values or secrets: only counts, timings, limits and identifiers from the artifacts.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from rich.console import Console
from rich.table import Table

from rowloom.builder.storage import MAX_ERROR_SAMPLES, ErrorSample, write_atomic
from rowloom.interface.estimate import ESTIMATE_FILE, run_advice
from rowloom.interface.estimate_view import estimate_vs_actual_html
from rowloom.interface.report_charts import Chart, Line, bar_rows, legend, time_chart
from rowloom.interface.report_dataset import dataset_section
from rowloom.interface.report_fleet import fleet_section
from rowloom.observability.series import StepBucket, StepSeries
from rowloom.observability.view import LAYERS, CorrelatedRuntimeView, DerivedMetrics
from rowloom.profile import read_profile, write_profile

_COLORS = ("#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be123c", "#4d7c0f")
_LAYER_TEXT = {
    "dependency_readiness": "dependency readiness (ready -> queued)",
    "ready_ordering": "ready ordering (queued, fair order)",
    "task_admission": "task admission (queued, no task slot)",
    "request_admission": "request admission (no request permit)",
    "provider_cooldown": "provider cooldown (after 429)",
    "provider_execution": "provider execution",
    "downstream_completion": "downstream completion (rest of the task)",
}


@dataclass(frozen=True)
class RunReport:
    """What the report shows, loaded from a run folder."""

    run_dir: Path
    summary: dict[str, Any]
    dropped_rows: dict[str, int]
    capacity_plan: dict[str, Any] | None
    view: CorrelatedRuntimeView
    metrics: DerivedMetrics
    advice: str | None = None

    @property
    def t0(self) -> float:
        """The time origin of the charts (scheduler job start, else the first event)."""
        if self.view.job_started_at is not None:
            return self.view.job_started_at
        return self.view.first_at if self.view.first_at is not None else self.view.origin


def load_report(run_dir: str | Path, *, summary: dict[str, Any] | None = None) -> RunReport:
    """Read a run folder; `summary` (a `RunSummary.to_dict()`) overrides derived fields."""
    run_dir = Path(run_dir)
    manifest = _read_json(run_dir / "manifest.json")
    plan = _read_json(run_dir / "capacity_plan.json")
    view = CorrelatedRuntimeView.from_run_dir(run_dir)
    dropped: dict[str, int] = {}
    for rec in (manifest or {}).get("row_groups", {}).values():
        for reason, n in rec.get("dropped", {}).items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    derived: dict[str, Any] = {
        "name": run_dir.name,
        "status": (manifest or {}).get("status", "unknown"),
        "stop_reason": (manifest or {}).get("incomplete_reason"),
        "num_records": (manifest or {}).get("num_records"),
        "rows_written": (manifest or {}).get("rows_written"),
        "row_groups_done": len((manifest or {}).get("row_groups", {})),
        "dropped_rows": dropped,
        "request_attempts": sum(view.attempts_by_outcome.values()),
        "requests_by_outcome": dict(sorted(view.attempts_by_outcome.items())),
        "wall_seconds": round(view.wall_seconds, 3),
        "engine": (plan or {}).get("engine"),
        "token_usage": (manifest or {}).get("token_usage"),
        "error_samples": _error_samples(manifest),
        "stragglers_cancelled": view.attempts_by_outcome.get("straggler_cancelled", 0),
    }
    if not any(view.event_counts.values()):
        # a run without events (write_events: false): its saved summary has the figures
        saved = _read_json(run_dir / "summary.json") or {}
        for key in ("request_attempts", "requests_by_outcome", "wall_seconds", "engine"):
            if saved.get(key) is not None:
                derived[key] = saved[key]
    merged = {**derived, **{k: v for k, v in (summary or {}).items() if v is not None}}
    return RunReport(
        run_dir=run_dir,
        summary=merged,
        dropped_rows=dict(sorted(merged.get("dropped_rows", dropped).items())),
        capacity_plan=plan,
        view=view,
        metrics=view.derived_metrics(),
        advice=_advice(run_dir, view) if manifest else None,
    )


def _advice(run_dir: Path, view: CorrelatedRuntimeView) -> str:
    if not any(view.event_counts.values()):
        return "not known: this run wrote no events (write_events: false)"
    return run_advice(run_dir, view) or "local work (no model requests)"


def write_report(run_dir: str | Path, *, summary: dict[str, Any] | None = None) -> Path:
    """Write `report.html` into the run folder (atomically) and return its path."""
    report = load_report(run_dir, summary=summary)
    path = report.run_dir / "report.html"
    write_atomic(path, render_html(report).encode("utf-8"))
    return path


def write_run_report(run_dir: Path, *, summary: dict[str, Any], config: dict[str, Any]) -> Path:
    """The builder's `ReportWriter`: `profile.json`, then `report.html` (which shows it)."""
    write_profile(run_dir, config)
    return write_report(run_dir, summary=summary)


# --- HTML ---------------------------------------------------------------------------------------


def render_html(report: RunReport) -> str:
    """The report as one self-contained HTML page."""
    return _template().render(
        s=report.summary,
        metrics=report.metrics.as_json(),
        breakdown=report.view.breakdown.as_json(),
        limiting=_LAYER_TEXT.get(report.view.limiting_layer() or "", "nothing measured"),
        advice=report.advice,
        layer_bars=Markup(_layer_bars(report)),
        rows_chart=Markup(_rows_chart(report)),
        resource_charts=[(k, Markup(v), c) for k, v, c in _resource_charts(report)],
        waiters_chart=Markup(_waiters_chart(report)),
        dropped=report.dropped_rows,
        usage=report.summary.get("token_usage") or {},
        plan=_plan_tables(report.capacity_plan),
        plan_json=json.dumps(report.capacity_plan, indent=2) if report.capacity_plan else "",
        event_counts=report.view.event_counts,
        dataset=Markup(dataset_section(read_profile(report.run_dir))),
        fleet=Markup(fleet_section(_read_json(report.run_dir / "fleet.json"))),
        estimate=Markup(
            estimate_vs_actual_html(_read_json(report.run_dir / ESTIMATE_FILE), report.summary)
        ),
        sequence_violations=report.view.sequence_violations,
    )


@functools.cache
def _template() -> jinja2.Template:
    """The report template, compiled once per process (compiling costs about 0.1 s)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    source = (
        resources.files("rowloom.interface")
        .joinpath("templates/report.html")
        .read_text(encoding="utf-8")
    )
    return env.from_string(source)


def _points(
    series: StepSeries | list[StepBucket], t0: float, *, use: str = "high"
) -> list[tuple[float, float]]:
    buckets = series.buckets() if isinstance(series, StepSeries) else series
    return [(b.start - t0, getattr(b, use)) for b in buckets] + [
        (b.end - t0, b.last) for b in buckets[-1:]
    ]


def _x_max(report: RunReport) -> float:
    v = report.view
    end = v.job_completed_at if v.job_completed_at is not None else v.last_at
    return max(1e-3, (end or report.t0) - report.t0)


def _has_scheduler_events(report: RunReport) -> bool:
    return bool(report.view.event_counts.get("scheduler"))


def _rows_chart(report: RunReport) -> str:
    series = report.view.rows_written
    if not _has_scheduler_events(report):
        return ""
    chart = Chart(
        "rows written over time",
        [
            Line(
                "rows written (checkpointed)",
                _points(series, report.t0, use="last"),
                _COLORS[1],
                fill=True,
            )
        ],
        _x_max(report),
        y_label="rows",
    )
    return legend(chart) + time_chart(chart)


def _resource_charts(report: RunReport) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    t0, x_max = report.t0, _x_max(report)
    for key, res in report.view.resources.items():
        in_flight, limits = res.in_flight.buckets(), res.current_limit.buckets()
        if all(b.high == 0 for b in in_flight):
            continue
        lines = [Line("in flight", _points(in_flight, t0), _COLORS[0], fill=True)]
        if limits:
            lines.append(
                Line(
                    "current limit",
                    _points(limits, t0, use="low"),
                    _COLORS[3],
                    width=2.0,
                )
            )
        if res.static_cap is not None:
            lines.append(
                Line(
                    f"static cap ({res.static_cap})",
                    [(0.0, res.static_cap), (x_max, res.static_cap)],
                    "#111827",
                    dashed=True,
                    step=False,
                )
            )
        if res.effective_max is not None and res.effective_max != res.static_cap:
            lines.append(
                Line(
                    f"effective max ({res.effective_max})",
                    [(0.0, res.effective_max), (x_max, res.effective_max)],
                    "#6b7280",
                    dashed=True,
                    step=False,
                )
            )
        bands = [(lo - t0, hi - t0) for lo, hi in res.cooldowns]
        markers = [(t - t0, n) for t, n in res.rate_limited.points()]
        chart = Chart(
            key,
            lines,
            x_max,
            y_label="requests",
            bands=_coarsen(bands, x_max),
            band_label="cooldown (admission blocked)",
            markers=markers,
            marker_label="429 responses",
        )
        caption = {
            "max_in_flight": max(b.high for b in in_flight),
            "min_limit": res.min_limit if limits else None,
            "final_limit": res.current_limit.value,
            "static_cap": res.static_cap,
            "rate_limited": res.rate_limited.total,
            "cooldown_seconds": round(sum(hi - lo for lo, hi in res.cooldowns), 2),
        }
        out.append((key, legend(chart) + time_chart(chart), caption))
    return out


def _coarsen(bands: list[tuple[float, float]], x_max: float) -> list[tuple[float, float]]:
    """Merge bands closer than 0.5% of the chart width (keeps the SVG small)."""
    gap = x_max * 0.005
    out: list[tuple[float, float]] = []
    for lo, hi in bands:
        if out and lo - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _waiters_chart(report: RunReport) -> str:
    v, t0 = report.view, report.t0
    lines = []
    if _has_scheduler_events(report):
        lines.append(
            Line("ready tasks queued (task admission)", _points(v.queued_tasks, t0), "#111827")
        )
        lines.append(Line("task leases held", _points(v.task_leases, t0), "#6b7280", dashed=True))
    for i, (key, res) in enumerate(v.resources.items()):
        waiters = res.waiters.buckets()
        if any(b.high > 0 for b in waiters):
            lines.append(
                Line(f"request waiters {key}", _points(waiters, t0), _COLORS[i % len(_COLORS)])
            )
    if not lines:
        return ""
    chart = Chart("waiters over time", lines, _x_max(report), y_label="waiting")
    return legend(chart) + time_chart(chart)


def _layer_bars(report: RunReport) -> str:
    bd = report.view.breakdown
    rows = [
        (
            _LAYER_TEXT[layer],
            bd.seconds.get(layer, 0.0),
            f"{bd.seconds.get(layer, 0.0):,.2f} s  ({100 * bd.share(layer):.1f}%)",
        )
        for layer in LAYERS
    ]
    return bar_rows(rows)


def _plan_tables(plan: dict[str, Any] | None) -> dict[str, Any]:
    """Flatten the capacity plan into rows for the template."""
    if not plan:
        return {}
    cfg = plan.get("configured", {})
    scalar = []
    for name in ("buffer_size", "submission_capacity", "task_admission_policy"):
        scalar.append((name, cfg.get(name)))
    scalar.append(
        ("row_group_concurrency", cfg.get("row_group_admission", {}).get("row_group_concurrency"))
    )
    for name, value in cfg.get("task_resource_limits", {}).items():
        scalar.append((f"task resource limit: {name}", value))
    ra = cfg.get("request_admission_config") or {}
    for name in (
        "multiplicative_decrease_factor",
        "additive_increase_step",
        "successes_until_increase",
        "cooldown_seconds",
        "startup_ramp_seconds",
        "provider_slow_start_successes",
        "default_queue_wait_timeout_seconds",
    ):
        if name in ra:
            scalar.append((f"request admission: {name}", ra[name]))
    rt = plan.get("runtime_snapshot", {})
    om = plan.get("observed_maxima", {})
    resources = []
    for key in cfg.get("request_resources", []):
        resources.append(
            {
                "resource": key,
                "initial_limit": (cfg.get("request_domain_initial_limits", {}).get(key) or {}),
                "rule": (cfg.get("request_limit_rules", {}).get(key) or {}),
                "current_limit": rt.get("request_domain_current_limits", {}).get(key),
                "effective_max": rt.get("request_domain_effective_max", {}).get(key),
                "max_limit": om.get("request_domain_current_limits", {}).get(key),
                "max_in_flight": om.get("request_in_flight_by_resource", {}).get(key),
                "max_waiters": om.get("request_waiters_by_resource", {}).get(key),
            }
        )
    return {
        "scalar": scalar,
        "resources": resources,
        "static_caps": cfg.get("provider_model_static_caps", {}),
        "pools": cfg.get("transport_pool_limits", {}),
        "observed": om,
    }


# --- terminal -----------------------------------------------------------------------------------


def print_summary(report: RunReport, console: Console) -> None:
    """The report's headline figures as rich tables."""
    s = report.summary
    console.print(
        f"[bold]{s.get('name')}[/bold]: {s.get('status')}  {s.get('rows_written')}/"
        f"{s.get('num_records')} rows  {s.get('request_attempts')} model requests  "
        f"{s.get('wall_seconds', 0):.1f} s wall",
        highlight=False,
    )
    if s.get("stop_reason"):
        console.print(f"incomplete because: {s['stop_reason']}", highlight=False)
    m = report.metrics
    console.print(
        f"requests by outcome: {_kv(m.request_attempts_by_outcome)}; "
        f"rate-limited fraction {m.rate_limited_fraction:.3f}; "
        f"dropped rows: {_kv(report.dropped_rows) or 'none'}",
        highlight=False,
    )
    usage_text = format_usage(s.get("token_usage"))
    if usage_text:
        console.print(f"token usage: {usage_text}", highlight=False)
    for sample in s.get("error_samples") or []:
        console.print(f"  {ErrorSample.from_json(sample)}", highlight=False)
    layers = Table(title="where the time went (task-seconds)", box=None, header_style="bold")
    for col in ("layer", "seconds", "share"):
        layers.add_column(col, justify="left" if col == "layer" else "right")
    bd = report.view.breakdown
    for layer in LAYERS:
        layers.add_row(
            _LAYER_TEXT[layer],
            f"{bd.seconds.get(layer, 0.0):,.2f}",
            f"{100 * bd.share(layer):.1f}%",
        )
    console.print(layers)
    console.print(
        f"limited by: [bold]{report.advice or 'local work (no model requests)'}[/bold] "
        f"(most task time: {report.view.limiting_layer() or 'nothing measured'})",
        highlight=False,
    )
    res = Table(title="request resources", box=None, header_style="bold")
    for col in (
        "provider/model/domain",
        "max in flight",
        "min limit",
        "final limit",
        "static cap",
        "429s",
        "cooldown s",
    ):
        if col.startswith("provider"):
            res.add_column(col, overflow="fold", min_width=24)
        else:
            res.add_column(col, justify="right")
    for row in _resource_rows(report):
        res.add_row(*row)
    console.print(res)


def _resource_rows(report: RunReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for key, r in report.view.resources.items():
        limit = r.current_limit.value
        rows.append(
            (
                key,
                str(int(max((b.high for b in r.in_flight.buckets()), default=0))),
                str(int(r.min_limit)) if r.current_limit.buckets() else "-",
                str(int(limit)) if limit is not None else "-",
                str(r.static_cap) if r.static_cap is not None else "-",
                str(r.rate_limited.total),
                f"{sum(hi - lo for lo, hi in r.cooldowns):.1f}",
            )
        )
    return rows


def format_usage(usage: dict[str, Any] | None) -> str:
    """`12,345 prompt + 6,789 completion tokens (1,200 reasoning), ~0.0123 USD` or ''."""
    total = (usage or {}).get("total") or {}
    if not total.get("requests"):
        return ""
    text = f"{total['prompt_tokens']:,} prompt + {total['completion_tokens']:,} completion tokens"
    if total.get("reasoning_tokens"):
        text += f" ({total['reasoning_tokens']:,} reasoning)"
    if "estimated_cost" in total:
        currency = (usage or {}).get("currency") or ""
        text += f", ~{total['estimated_cost']:.4f} {currency}".rstrip()
    return text


def _error_samples(manifest: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The first sample errors the manifest keeps, in row-group order."""
    out: list[dict[str, Any]] = []
    groups = (manifest or {}).get("row_groups", {})
    for key in sorted(groups, key=int):
        out.extend(groups[key].get("errors", []))
    return out[:MAX_ERROR_SAMPLES]


def _kv(mapping: dict[str, int] | Any) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(dict(mapping).items()))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
