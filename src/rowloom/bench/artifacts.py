"""Benchmark artifacts: `result.json` (versioned schema), `timeline.csv` and `summary.md`.

`result.json` follows benchmarks.md's schema; `artifact_schema_version` changes whenever a
field is renamed or removed (adding fields keeps it). Target verdicts use the same rule as the
gates: a target is `met` or `missed` only when the mean and the trimmed mean (fastest and
slowest iteration dropped) agree, else `inconclusive`.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from rowloom.bench.events import TIMELINE_COLUMNS
from rowloom.bench.scenario import Scenario, Target
from rowloom.bench.stats import SummaryStats

ARTIFACT_SCHEMA_VERSION: Final = 1
HARNESS_VERSION: Final = "1.0"


def target_verdicts(
    scenario: Scenario, derived: Mapping[str, SummaryStats], *, http: bool
) -> list[dict[str, Any]]:
    """One verdict per (target, matching metric): met, missed, inconclusive, not measured."""
    rows: list[dict[str, Any]] = []
    for target in scenario.targets:
        names = sorted(
            (n for n in derived if fnmatch.fnmatchcase(n, target.metric)), key=natural_key
        )
        if target.http_only and not http:
            rows.append(_row(target, target.metric, None, "not applicable in process (--http)"))
            continue
        if not names:
            rows.append(_row(target, target.metric, None, "not measured"))
            continue
        for name in names:
            rows.append(_row(target, name, derived[name], None))
    return rows


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers numerically (`x8` before `x64`)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _row(
    target: Target, metric: str, stats: SummaryStats | None, why: str | None
) -> dict[str, Any]:
    verdict = why or "not measured"
    gap = None
    if stats is not None:
        verdict = target_verdict(target, stats)
        gap = target.gap(stats.mean)
    return {
        "metric": metric,
        "label": target.label,
        "target": target.text(),
        "mean": stats.mean if stats else None,
        "trimmed_mean": stats.trimmed_mean if stats else None,
        "n": stats.n if stats else 0,
        "verdict": verdict,
        "gap": gap,
    }


def target_verdict(target: Target, stats: SummaryStats) -> str:
    """`met` or `missed` when the mean and the trimmed mean agree, else `inconclusive`."""
    full = target.met(stats.mean)
    trimmed = target.met(stats.trimmed_mean) if stats.trimmed_mean is not None else full
    if full and trimmed:
        return "met"
    return "missed" if not full and not trimmed else "inconclusive"


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write `payload` as indented JSON (NaN and infinities become null)."""
    path.write_text(
        json.dumps(_finite(payload), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_timeline_csv(path: Path, iterations: Sequence[Mapping[str, Any]]) -> int:
    """`timeline.csv`: the sampled timeline of every measured iteration; returns rows."""
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["iteration", *TIMELINE_COLUMNS])
        for it in iterations:
            for row in it.get("timeline", ()):
                values = [it["index"]]
                for col in TIMELINE_COLUMNS:
                    v = row.get(col)
                    values.append(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)
                writer.writerow(values)
                n += 1
    return n


_PATHS = {
    True: "HTTP mock server(s) via the OpenAI-compatible client",
    False: "in-process simulated provider",
}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 1e6:
        return f"{value:.3e}"
    if mag >= 100:
        return f"{value:,.1f}"
    if mag >= 1:
        return f"{value:.3f}"
    return f"{value:.4f}"


def summary_markdown(result: Mapping[str, Any], scenario: Scenario) -> str:
    """`summary.md`: what ran, the checks, targets with their gaps, and the headline metrics."""
    inputs = result["inputs"]
    machine = result["machine"]
    lines = [
        f"# `{scenario.id}` (scenario v{scenario.version}, harness {result['harness_version']})",
        "",
        f"- shape: {scenario.shape}",
        f"- shows: {scenario.shows}",
        f"- provider path: "
        f"{_PATHS[bool(inputs['http'])] if scenario.uses_providers else 'none (no model calls)'}",
        f"- records {inputs['records']}, iterations {inputs['iterations']}, warm-ups "
        f"{inputs['warmups']}, seed {inputs['seed']}",
        f"- knobs: {json.dumps(inputs['knobs'])}",
        f"- source: {result['candidate_sha'] or 'unknown'}"
        f"{' (dirty tree)' if result.get('source', {}).get('dirty') else ''}",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}; "
        f"load average (1/5/15 min) at start {machine.get('load_average_at_start')}, at end "
        f"{machine.get('load_average_at_end')}",
        "",
        "## Checks",
        "",
    ]
    checks = result["checks"]
    lines.append(f"- overall: **{'pass' if checks['passed'] else 'FAIL'}**")
    lines.append(f"- leaks: {checks['leaks'] or 'none'}")
    lines.append(f"- hidden scheduler resource waiters (max): {checks['hidden_waiters_max']:g}")
    lines.append(f"- output hashes: {checks['hash']}")
    lines.append("")
    lines += ["## Targets (from benchmarks.md)", ""]
    if result["targets"]:
        lines.append("| figure | target | mean | trimmed mean | verdict | gap |")
        lines.append("|---|---|---|---|---|---|")
        for t in result["targets"]:
            lines.append(
                f"| `{t['metric']}` | {t['target']} | {_fmt(t['mean'])} | "
                f"{_fmt(t['trimmed_mean'])} | {t['verdict']} | {_fmt(t['gap'])} |"
            )
    else:
        lines.append("No numeric target in the spec for this scenario.")
    lines += [
        "",
        "## Metrics over measured iterations",
        "",
        "| metric | mean | p50 | p95 | min | max | stdev | trimmed mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    derived = result["derived_metrics"]
    for name in headline_names(scenario, derived):
        s = derived[name]
        lines.append(
            f"| `{name}` | {_fmt(s['mean'])} | {_fmt(s['p50'])} | {_fmt(s['p95'])} | "
            f"{_fmt(s['min'])} | {_fmt(s['max'])} | {_fmt(s['stdev'])} | "
            f"{_fmt(s['trimmed_mean'])} |"
        )
    lines += ["", *scenario.summary_extra(result)]
    lines += ["", f"Noise: {result['noise_note']}", ""]
    sampling = result.get("timeline_note")
    if sampling:
        lines += [f"Timeline: {sampling}", ""]
    lines.append(
        "All metrics per iteration are in `result.json`; the sampled event timeline is "
        "in `timeline.csv`."
    )
    return "\n".join(lines) + "\n"


def headline_names(scenario: Scenario, derived: Mapping[str, Any]) -> list[str]:
    """Metric names shown in the summary, in the scenario's headline order."""
    out: list[str] = []
    for pattern in scenario.headline:
        wildcard = any(c in pattern for c in "*?[")
        for name in sorted(derived, key=natural_key) if wildcard else [pattern]:
            if name in derived and name not in out and fnmatch.fnmatchcase(name, pattern):
                out.append(name)
    return out
