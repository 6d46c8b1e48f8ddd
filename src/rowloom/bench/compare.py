"""`rowloom bench compare`: the same scenarios on two git refs, paired A B A B, with gates.

Each ref is checked out in its own `git worktree` (detached, cached by commit) and installed
into its own virtualenv (`python -m venv` + `pip install -e`, pip's cache reused; cached by
commit). Every measured iteration is one invocation of that venv's `rowloom bench run SCENARIO
--iterations 1` (with its own warm-ups), alternating baseline and candidate so drift on the
machine hits both sides alike.

Each side may also get its own environment variables and scenario knobs (`baseline_env`,
`candidate_env`, `baseline_knobs`, `candidate_knobs`), so two settings of ONE commit can be
paired the same way, e.g. the engine's benchmark switches
`ROWLOOM_REQUEST_ADMISSION_PROFILE=v1` against the default. Both refs may then be the same.

Gates (benchmarks.md): each scenario's gate metric (lower is better) may be at most its
tolerance worse than the baseline. A verdict is `pass` or `fail` only when it holds both on
the means and on the trimmed means (fastest and slowest iteration of each side dropped), else
`inconclusive` (also with fewer than 3 pairs). Every invocation must also pass its own checks
(zero leaks, oracle hashes, no hidden waiter).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rowloom.bench.artifacts import natural_key, target_verdict, write_json
from rowloom.bench.machine import machine_info
from rowloom.bench.registry import get_scenario
from rowloom.bench.scenario import Gate, Scenario, Target
from rowloom.bench.stats import SummaryStats

BENCH_MARKER = Path("src/rowloom/bench/cli.py")


class CompareError(Exception):
    """The comparison cannot run (bad ref, ref without the harness, failed install)."""


@dataclass(frozen=True, slots=True)
class CompareOptions:
    """Inputs of one `rowloom bench compare`."""

    repo: Path
    baseline: str
    candidate: str
    scenarios: tuple[str, ...]
    out: Path
    iterations: int = 5
    warmups: int = 1
    records: int | None = None
    seed: int = 42
    http: bool = False
    knobs: Mapping[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    command_line: Sequence[str] = ()
    baseline_env: Mapping[str, str] = field(default_factory=dict)
    candidate_env: Mapping[str, str] = field(default_factory=dict)
    baseline_knobs: Mapping[str, str] = field(default_factory=dict)
    candidate_knobs: Mapping[str, str] = field(default_factory=dict)

    def side_env(self, role: str) -> Mapping[str, str]:
        """The extra environment variables of one side (`baseline` or `candidate`)."""
        return self.baseline_env if role == "baseline" else self.candidate_env

    def side_own_knobs(self, role: str) -> Mapping[str, str]:
        """The scenario knobs of one side only (they override the shared `knobs`)."""
        return self.baseline_knobs if role == "baseline" else self.candidate_knobs


@dataclass(frozen=True, slots=True)
class Side:
    """One ref, built: its worktree and the `rowloom` executable of its venv."""

    role: str
    ref: str
    sha: str
    worktree: Path
    venv: Path
    env: Mapping[str, str] = field(default_factory=dict)
    knobs: Mapping[str, str] = field(default_factory=dict)

    @property
    def rowloom(self) -> Path:
        return self.venv / "bin" / "rowloom"

    def label(self) -> str:
        """`ref (sha)` plus the side's own environment and knobs, if any."""
        extra = [f"{k}={v}" for k, v in sorted(self.env.items())]
        extra += [f"--{k.replace('_', '-')} {v}" for k, v in sorted(self.knobs.items())]
        return f"{self.ref} ({self.sha[:12]})" + (f" [{', '.join(extra)}]" if extra else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "ref": self.ref,
            "sha": self.sha,
            "worktree": str(self.worktree),
            "venv": str(self.venv),
            "env": dict(self.env),
            "knobs": dict(self.knobs),
            "label": self.label(),
        }


@dataclass(frozen=True, slots=True)
class GateRow:
    """The gate on one metric: baseline vs candidate means, ratios and the verdict."""

    metric: str
    baseline_mean: float
    candidate_mean: float
    ratio: float
    trimmed_ratio: float | None
    verdict: str
    pairs_worse: int = 0
    pairs: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline_mean": self.baseline_mean,
            "candidate_mean": self.candidate_mean,
            "ratio": self.ratio,
            "trimmed_ratio": self.trimmed_ratio,
            "verdict": self.verdict,
            "pairs_worse": self.pairs_worse,
            "pairs": self.pairs,
        }


@dataclass(frozen=True, slots=True)
class CompareReport:
    """The comparison artifact and its Markdown table."""

    result: Mapping[str, Any]
    markdown: str

    @property
    def passed(self) -> bool:
        return bool(self.result["passed"])


def gate_rows(
    gate: Gate, baseline: Sequence[Mapping[str, float]], candidate: Sequence[Mapping[str, float]]
) -> list[GateRow]:
    """One verdict per gate metric present on both sides (see the module docstring)."""
    names = sorted(
        {n for m in baseline for n in m if n.startswith(gate.metric_prefix)}
        & {n for m in candidate for n in m if n.startswith(gate.metric_prefix)}
    )
    limit = 1.0 + gate.tolerance
    rows = []
    for name in names:
        a = SummaryStats.of([m[name] for m in baseline if name in m])
        b = SummaryStats.of([m[name] for m in candidate if name in m])
        ratio = b.mean / a.mean if a.mean else float("inf")
        trimmed = None
        if a.trimmed_mean and b.trimmed_mean is not None:
            trimmed = b.trimmed_mean / a.trimmed_mean
        if trimmed is None:
            verdict = "inconclusive"
        elif ratio <= limit and trimmed <= limit:
            verdict = "pass"
        elif ratio > limit and trimmed > limit:
            verdict = "fail"
        else:
            verdict = "inconclusive"
        paired = [
            (x[name], y[name])
            for x, y in zip(baseline, candidate, strict=False)
            if name in x and name in y
        ]
        worse = sum(1 for x, y in paired if y > x * limit)
        rows.append(GateRow(name, a.mean, b.mean, ratio, trimmed, verdict, worse, len(paired)))
    return rows


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=300
        )
    except subprocess.CalledProcessError as exc:
        raise CompareError(f"git {' '.join(args)} failed: {exc.stderr.strip()}") from None
    return done.stdout.strip()


def resolve_sha(repo: Path, ref: str) -> str:
    """The commit a ref names (CompareError when it names none)."""
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def _harness_origin(repo: Path) -> str:
    first = _git(repo, "log", "--diff-filter=A", "--format=%h %s", "--", str(BENCH_MARKER))
    return first.splitlines()[-1] if first else "not committed yet"


def prepare_side(repo: Path, role: str, ref: str, cache: Path, log: Callable[[str], None]) -> Side:
    """Worktree and venv for `ref` (both reused when already built for the same commit)."""
    sha = resolve_sha(repo, ref)
    worktree = cache / "worktrees" / sha[:12]
    if not (worktree / ".git").exists():
        worktree.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(worktree, ignore_errors=True)
        _git(repo, "worktree", "prune")
        log(f"{role}: git worktree {worktree} at {ref} ({sha[:12]})")
        _git(repo, "worktree", "add", "--detach", "--force", str(worktree), sha)
    if not (worktree / BENCH_MARKER).is_file():
        raise CompareError(
            f"{role} {ref} ({sha[:12]}) predates the benchmark harness: it has no "
            f"{BENCH_MARKER.parent}/, so it cannot run `rowloom bench run`. Pick a ref at or "
            f"after the commit that added it ({_harness_origin(repo)})."
        )
    venv = cache / "venvs" / sha[:12]
    marker = venv / ".rowloom-bench-installed"
    if not marker.is_file():
        log(f"{role}: creating virtualenv {venv} and installing {ref} (pip cache reused)")
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)], "python -m venv")
        _run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-e",
                str(worktree),
            ],
            f"pip install -e {ref}",
        )
        marker.write_text(sha + "\n", encoding="utf-8")
    return Side(role, ref, sha, worktree, venv)


def _run(cmd: Sequence[str], what: str) -> None:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise CompareError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHONHASHSEED"] = env.get("PYTHONHASHSEED", "0")
    return env


def parse_env_assignments(items: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` strings into a mapping; ValueError on a malformed item or name."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name or not (name.replace("_", "a").isalnum() and not name[0].isdigit()):
            raise ValueError(f"expected KEY=VALUE with a variable name as KEY, not {item!r}")
        out[name] = value
    return out


def invocation(
    side: Side, scenario: str, out: Path, options: CompareOptions
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one measured iteration on one side."""
    cmd = [
        str(side.rowloom),
        "bench",
        "run",
        scenario,
        "--iterations",
        "1",
        "--warmups",
        str(options.warmups),
        "--seed",
        str(options.seed),
        "--out",
        str(out),
    ]
    if options.records is not None:
        cmd += ["--records", str(options.records)]
    if options.http:
        cmd.append("--http")
    for name, value in {**options.knobs, **side.knobs}.items():
        cmd += ["--" + name.replace("_", "-"), value]
    return cmd, {**_clean_env(), **side.env}


def run_one(side: Side, scenario: str, out: Path, options: CompareOptions) -> dict[str, Any]:
    """One measured iteration on one side; returns its `result.json`."""
    cmd, env = invocation(side, scenario, out, options)
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=side.worktree, env=env, timeout=6 * 3600
    )
    result_path = out / "result.json"
    if done.returncode not in (0, 1) or not result_path.is_file():
        raise CompareError(
            f"{side.role} ({side.ref}) `rowloom bench run {scenario}` exited "
            f"{done.returncode}: {(done.stderr or done.stdout).strip()[-2000:]}"
        )
    data: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    return data


def run_compare(options: CompareOptions, log: Callable[[str], None] = print) -> CompareReport:
    """Build both refs, run every scenario in A B A B pairs, write the comparison artifacts."""
    for scenario in options.scenarios:
        get_scenario(scenario)  # fail early on a typo (the candidate knows the ids too)
    repo = Path(_git(options.repo, "rev-parse", "--show-toplevel"))
    cache = options.cache_dir or Path.home() / ".cache" / "rowloom-bench"
    sides = [
        replace(
            prepare_side(repo, role, ref, cache, log),
            env=dict(options.side_env(role)),
            knobs=dict(options.side_own_knobs(role)),
        )
        for role, ref in (("baseline", options.baseline), ("candidate", options.candidate))
    ]
    options.out.mkdir(parents=True, exist_ok=True)
    per_scenario: dict[str, Any] = {}
    for scenario in options.scenarios:
        results: dict[str, list[dict[str, Any]]] = {"baseline": [], "candidate": []}
        for i in range(options.iterations):
            for side in sides:
                log(f"{scenario}: pair {i + 1}/{options.iterations}, {side.role} ({side.ref})")
                out = options.out / scenario / f"pair{i}-{side.role}"
                results[side.role].append(run_one(side, scenario, out, options))
        per_scenario[scenario] = _scenario_result(scenario, results, http=options.http)
    passed = all(s["passed"] for s in per_scenario.values())
    result = {
        "artifact_schema_version": 1,
        "kind": "comparison",
        "baseline_sha": sides[0].sha,
        "candidate_sha": sides[1].sha,
        "baseline": sides[0].as_json(),
        "candidate": sides[1].as_json(),
        "inputs": {
            "iterations": options.iterations,
            "warmups": options.warmups,
            "records": options.records,
            "seed": options.seed,
            "http": options.http,
            "knobs": dict(options.knobs),
            "baseline_env": dict(options.baseline_env),
            "candidate_env": dict(options.candidate_env),
            "baseline_knobs": dict(options.baseline_knobs),
            "candidate_knobs": dict(options.candidate_knobs),
            "order": "A B A B (baseline first)",
        },
        "command_line": list(options.command_line),
        "machine": machine_info(),
        "scenarios": per_scenario,
        "passed": passed,
    }
    markdown = comparison_markdown(result)
    write_json(options.out / "comparison.json", result)
    (options.out / "comparison.md").write_text(markdown, encoding="utf-8")
    return CompareReport(result, markdown)


def metric_rows(
    scenario: Scenario,
    baseline: Sequence[Mapping[str, float]],
    candidate: Sequence[Mapping[str, float]],
    *,
    http: bool,
) -> list[dict[str, Any]]:
    """Informational rows: every target metric and `compare_metrics` entry present on both
    sides, with both sides' mean and trimmed mean, their ratios and (targets) each side's
    verdict. They never fail a comparison; the gate does."""
    patterns: list[tuple[str, Target | None]] = [
        (t.metric, t) for t in scenario.targets if http or not t.http_only
    ]
    patterns += [(p, None) for p in scenario.compare_metrics]
    common = {n for m in baseline for n in m} & {n for m in candidate for n in m}
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for pattern, target in patterns:
        for name in sorted((n for n in common if fnmatch.fnmatchcase(n, pattern)), key=natural_key):
            if name in seen:
                continue
            seen.add(name)
            a = SummaryStats.of([m[name] for m in baseline if name in m])
            b = SummaryStats.of([m[name] for m in candidate if name in m])
            trimmed = None
            if a.trimmed_mean and b.trimmed_mean is not None:
                trimmed = b.trimmed_mean / a.trimmed_mean
            rows.append(
                {
                    "metric": name,
                    "target": target.text() if target is not None else None,
                    "baseline": a.as_json(),
                    "candidate": b.as_json(),
                    "ratio": b.mean / a.mean if a.mean else None,
                    "trimmed_ratio": trimmed,
                    "baseline_verdict": target_verdict(target, a) if target else None,
                    "candidate_verdict": target_verdict(target, b) if target else None,
                }
            )
    return rows


def _scenario_result(
    scenario: str, results: Mapping[str, list[dict[str, Any]]], *, http: bool = False
) -> dict[str, Any]:
    spec = get_scenario(scenario)
    gate = spec.gate
    metrics = {
        role: [it["metrics"] for r in runs for it in r["iterations"]]
        for role, runs in results.items()
    }
    rows = gate_rows(gate, metrics["baseline"], metrics["candidate"])
    loads = {
        role: [r.get("machine", {}).get("load_average_at_start") for r in runs]
        for role, runs in results.items()
    }
    problems = [
        f"{role} pair {i}: {p}"
        for role, runs in results.items()
        for i, r in enumerate(runs)
        for p in r["checks"]["problems"]
    ]
    harness = {role: sorted({r["harness_version"] for r in runs}) for role, runs in results.items()}
    return {
        "gate": {
            "metric_prefix": gate.metric_prefix,
            "tolerance": gate.tolerance,
            "label": gate.label,
        },
        "rows": [r.as_json() for r in rows],
        "gate_verdict": _overall(rows),
        "metrics": metric_rows(spec, metrics["baseline"], metrics["candidate"], http=http),
        "load_average_at_start": loads,
        "invariants": {"passed": not problems, "problems": problems},
        "harness_versions": harness,
        "passed": not problems and all(r.verdict != "fail" for r in rows),
    }


def _overall(rows: Sequence[GateRow]) -> str:
    verdicts = {r.verdict for r in rows}
    if not rows:
        return "no gate metric on both sides"
    if "fail" in verdicts:
        return "fail"
    return "inconclusive" if "inconclusive" in verdicts else "pass"


def comparison_markdown(result: Mapping[str, Any]) -> str:
    """The comparison as Markdown: one gate table per scenario with verdicts."""
    b, c = result["baseline"], result["candidate"]
    lines = [
        f"# Comparison: {_side_label(b)} vs {_side_label(c)}",
        "",
        f"{result['inputs']['iterations']} pairs, order {result['inputs']['order']}; "
        f"machine {result['machine']['cpu']}, {result['machine']['cores']} cores. "
        f"Overall: **{'pass' if result['passed'] else 'FAIL'}**.",
    ]
    for scenario, s in result["scenarios"].items():
        lines += [
            "",
            f"## `{scenario}`: gate {s['gate_verdict']}",
            "",
            s["gate"]["label"],
            "",
            "| metric | baseline mean | candidate mean | ratio | trimmed ratio | pairs worse "
            "beyond tolerance | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in s["rows"]:
            trimmed = f"{r['trimmed_ratio']:.3f}" if r["trimmed_ratio"] is not None else "-"
            lines.append(
                f"| `{r['metric']}` | {r['baseline_mean']:.4g} | "
                f"{r['candidate_mean']:.4g} | {r['ratio']:.3f} | {trimmed} | "
                f"{r.get('pairs_worse', '-')}/{r.get('pairs', '-')} | {r['verdict']} |"
            )
        lines += _metric_table(s.get("metrics") or [])
        inv = s["invariants"]
        lines += [
            "",
            f"Invariants (leaks, oracle hashes, hidden waiters): "
            f"{'pass' if inv['passed'] else 'FAIL: ' + '; '.join(inv['problems'])}",
        ]
    return "\n".join(lines) + "\n"


def _side_label(side: Mapping[str, Any]) -> str:
    label = side.get("label")
    return str(label) if label else f"{side['ref']} ({side['sha'][:12]})"


def _metric_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Targets and scenario figures, both sides (informational: they do not gate)."""
    if not rows:
        return []

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    out = [
        "",
        "Targets and figures (mean / trimmed mean; informational):",
        "",
        "| metric | target | baseline | candidate | ratio | trimmed ratio | verdicts (A, B) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["baseline"], r["candidate"]
        verdicts = f"{r['baseline_verdict']}, {r['candidate_verdict']}" if r.get("target") else "-"
        out.append(
            f"| `{r['metric']}` | {r.get('target') or '-'} | {num(a['mean'])} / "
            f"{num(a['trimmed_mean'])} | {num(b['mean'])} / {num(b['trimmed_mean'])} | "
            f"{num(r['ratio'])} | {num(r['trimmed_ratio'])} | {verdicts} |"
        )
    return out
