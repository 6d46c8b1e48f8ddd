"""The report's "Dataset" section: `profile.json` rendered as HTML (escaped text, inline SVG).

One block per column, chosen by what its profile holds: configured vs observed shares for
category samplers, histograms for numbers, length and duplicate figures for text, parse
rates for code, field coverage and schema violations for structured output, option
distributions for judge scores, pass rates for validation, a 2-D projection for embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_W, _H = 360, 110


def dataset_section(profile: Mapping[str, Any] | None) -> str:
    """The section's HTML, or a note when the run has no profile."""
    if not profile:
        return '<p class="muted">No profile.json in this run folder (run `rowloom profile`).</p>'
    out = [_overview(profile), '<div class="dgrid">']
    for name, column in profile.get("columns", {}).items():
        kind = column.get("column_type") or column.get("kind") or ""
        out.append(
            f'<div class="dcol"><h3>{escape(name)} <span class="src">{escape(str(kind))}'
            f"</span></h3>{column_block(column)}</div>"
        )
    out.append("</div>")
    return "".join(out)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value) if value is not None else "-"


def bar_rows(rows: Sequence[tuple[str, float, str]]) -> str:
    """Compact horizontal bars (label, value in [0, 1] of the largest, caption)."""
    top = max((v for _, v, _ in rows), default=0.0) or 1.0
    out = ['<div class="dbars">']
    for label, value, caption in rows:
        out.append(
            f'<span class="dl">{escape(label)}</span><span class="bt"><span class="bf" '
            f'style="width:{100 * value / top:.1f}%"></span></span>'
            f'<span class="dv">{escape(caption)}</span>'
        )
    out.append("</div>")
    return "".join(out)


def _overview(profile: Mapping[str, Any]) -> str:
    rows = profile.get("rows", 0)
    requested = profile.get("num_records")
    dropped = profile.get("dropped_rows") or {}
    parts = [f"{rows} rows profiled" + (f" of {requested} requested" if requested else "")]
    if dropped:
        parts.append("dropped: " + ", ".join(f"{escape(k)} {v}" for k, v in dropped.items()))
    usage = profile.get("token_usage")
    if isinstance(usage, Mapping) and usage:
        parts.append(_usage_text(usage))
    return f'<div class="caption">{" · ".join(parts)}</div>'


def _usage_text(usage: Mapping[str, Any]) -> str:
    totals = usage.get("total", usage)
    keys = ("prompt_tokens", "completion_tokens", "reasoning_tokens")
    shown = [f"{k.split('_')[0]} {totals[k]:,}" for k in keys if isinstance(totals.get(k), int)]
    return "tokens: " + ", ".join(shown) if shown else ""


def column_block(column: Mapping[str, Any]) -> str:
    """One column's figures."""
    facts = [f"nulls {column['nulls']}"] if column.get("nulls") else []
    if isinstance(column.get("token_usage"), Mapping):
        facts.append(_usage_text(column["token_usage"]))
    head = f'<div class="caption">{" · ".join(facts)}</div>' if facts else ""
    kind = column.get("kind")
    if "configured" in column:
        return head + _shares(column["configured"]["values"], expected=True)
    if kind == "judge":
        return head + _judge(column)
    if kind == "validation":
        return head + _validation(column)
    if kind == "embedding":
        return head + _embedding(column)
    if "chars" in column:
        return head + _text(column)
    return head + _value(column)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _shares(rows: Sequence[Mapping[str, Any]], *, expected: bool) -> str:
    bars = []
    for r in rows:
        caption = f"{r['count']} · {_pct(r['share'])}"
        caption += f" (exp. {_pct(r['expected_share'])})" if expected else ""
        bars.append((str(r["value"]), float(r["share"]), caption))
    return bar_rows(bars)


def _value(column: Mapping[str, Any]) -> str:
    kind = column.get("kind")
    if kind == "number":
        return _stats_table([("value", column)]) + histogram_svg(column.get("histogram") or {})
    if kind == "category":
        return _shares(column.get("top_values", []), expected=False)
    if kind in ("text", "list") and "length" in column:
        return _stats_table([("length", column["length"])])
    if kind == "struct":
        return _fields(column.get("fields", {}), column.get("schema_violations"))
    return '<p class="muted">no values</p>'


def _stats_table(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    keys = ("min", "median", "p95", "max", "mean")
    out = ["<table><tr><th></th>", *(f"<th>{k}</th>" for k in keys), "</tr>"]
    for label, stats in rows:
        cells = "".join(f"<td class='n'>{escape(_fmt(stats.get(k)))}</td>" for k in keys)
        out.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def _text(column: Mapping[str, Any]) -> str:
    near = column.get("near_duplicates") or {}
    facts = [
        f"empty {column.get('empty', 0)}",
        f"refusal-like {column.get('refusal_like', 0)}",
        f"exact duplicates {column.get('exact_duplicates', 0)}",
        f"near duplicates {_pct(near.get('fraction'))} of {near.get('sampled', 0)} sampled",
    ]
    parses = column.get("parses")
    if parses:
        facts.insert(0, f"{escape(str(column.get('language')))}: parses {_pct(parses.get('rate'))}")
        facts[0] += f" of {parses.get('checked', 0)} checked"
    rows = [("characters", column["chars"])]
    if column.get("tokens_estimated"):
        rows.append(("tokens (estimated)", column["tokens_estimated"]))
    return _stats_table(rows) + f'<div class="caption">{" · ".join(facts)}</div>'


def _fields(fields: Mapping[str, Any], violations: Mapping[str, Any] | None = None) -> str:
    rows = ["<table><tr><th>field</th><th>coverage</th><th>kind</th><th>values</th></tr>"]
    for name, f in fields.items():
        rows.append(
            f"<tr><td>{escape(name)}</td><td class='n'>{_pct(f.get('coverage'))}</td>"
            f"<td>{escape(str(f.get('kind')))}</td><td>{escape(_field_summary(f))}</td></tr>"
        )
    rows.append("</table>")
    if violations:
        rows.append(
            f'<div class="caption">schema violations: {violations.get("invalid", 0)} of '
            f"{violations.get('checked', 0)} checked</div>"
        )
    return "".join(rows)


def _field_summary(f: Mapping[str, Any]) -> str:
    kind = f.get("kind")
    if kind == "number":
        return f"min {f.get('min')} · median {f.get('median')} · max {f.get('max')}"
    if kind == "category":
        top = f.get("top_values", [])[:5]
        return ", ".join(f"{v['value']} ({_pct(v['share'])})" for v in top)
    if "length" in f:
        return f"length median {f['length'].get('median')} · max {f['length'].get('max')}"
    if kind == "struct":
        return f"{len(f.get('fields', {}))} fields"
    return ""


def _judge(column: Mapping[str, Any]) -> str:
    out = []
    for name, score in column.get("scores", {}).items():
        mean = score.get("mean")
        caption = f"mean {mean}" if mean is not None else "non-numeric options"
        caption += f" · reasoning present {_pct(score.get('reasoning_present'))}"
        out.append(f'<div class="caption"><b>{escape(name)}</b>: {escape(caption)}</div>')
        out.append(_shares(score.get("top_values", []), expected=False))
    return "".join(out)


def _validation(column: Mapping[str, Any]) -> str:
    out = [
        f'<div class="caption">pass rate {_pct(column.get("pass_rate"))} '
        f"({column.get('valid', 0)} of {column.get('checked', 0)})</div>"
    ]
    messages = column.get("top_messages") or []
    if messages:
        out.append("<table><tr><th>message</th><th>rows</th></tr>")
        out.extend(
            f"<tr><td>{escape(m['message'])}</td><td class='n'>{m['count']}</td></tr>"
            for m in messages
        )
        out.append("</table>")
    return "".join(out)


def _embedding(column: Mapping[str, Any]) -> str:
    norm = column.get("norm") or {}
    projection = column.get("projection") or {}
    caption = (
        f"dimension {column.get('dimension')} · norm min {norm.get('min')} · "
        f"mean {norm.get('mean')} · max {norm.get('max')} · PCA of {projection.get('sample', 0)} "
        "sampled vectors"
    )
    return f'<div class="caption">{escape(caption)}</div>' + scatter_svg(
        projection.get("points") or []
    )


def histogram_svg(hist: Mapping[str, Any]) -> str:
    """Vertical bars of a histogram (`edges`, `counts`)."""
    counts: list[int] = list(hist.get("counts") or [])
    edges: list[float] = list(hist.get("edges") or [])
    if not counts:
        return ""
    top = max(counts) or 1
    width = _W / len(counts)
    bars = "".join(
        f'<rect x="{i * width + 1:.1f}" y="{_H - 14 - (_H - 24) * c / top:.1f}" '
        f'width="{max(width - 2, 1):.1f}" height="{(_H - 24) * c / top:.1f}" fill="#2563eb">'
        f"<title>{escape(f'{edges[i]} to {edges[i + 1]}: {c}')}</title></rect>"
        for i, c in enumerate(counts)
    )
    labels = (
        f'<text class="tick" x="0" y="{_H - 2}">{escape(str(edges[0]))}</text>'
        f'<text class="tick" x="{_W}" y="{_H - 2}" text-anchor="end">'
        f"{escape(str(edges[-1]))}</text>"
    )
    return f'<svg class="mini" viewBox="0 0 {_W} {_H}" role="img">{bars}{labels}</svg>'


def scatter_svg(points: Sequence[Sequence[float]]) -> str:
    """Dots of 2-D points scaled to the chart."""
    if not points:
        return ""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (_W - 20) / ((x1 - x0) or 1)
    sy = (_W - 20) / ((y1 - y0) or 1)
    dots = "".join(
        f'<circle cx="{10 + (x - x0) * sx:.1f}" cy="{10 + (y1 - y) * sy:.1f}" r="3" '
        'fill="#2563eb" fill-opacity="0.55"/>'
        for x, y in zip(xs, ys, strict=True)
    )
    return f'<svg class="mini" viewBox="0 0 {_W} {_W}" role="img">{dots}</svg>'
