"""`rowloom bench`: list, run, compare and smoke (the typer sub-app).

Exit codes: 0 done (targets may be missed: they are reported), 1 a check failed (leak, hash
mismatch, hidden waiter) or a compare gate failed, 2 invalid arguments or a ref that cannot be
benchmarked.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

bench_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark harness: scenarios, A/B comparison across git refs, smoke.",
)
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


@bench_app.command("list")
def list_scenarios() -> None:
    """Show every scenario: its shape, what it shows, default records and knobs."""
    from rowloom.bench.registry import SCENARIOS

    for s in SCENARIOS:
        _out.print(f"[bold]{s.id}[/bold] (v{s.version})", highlight=False)
        _out.print(f"  shape:   {s.shape}", highlight=False)
        _out.print(f"  shows:   {s.shows}", highlight=False)
        if s.default_records:
            _out.print(f"  records: {s.default_records}", highlight=False)
        for k in s.knobs:
            _out.print(f"  {k.flag} (default {k.default}): {k.help}", highlight=False)
        for t in s.targets:
            scope = " (over HTTP)" if t.http_only else ""
            _out.print(f"  target:  {t.metric} {t.text()}{scope}", highlight=False)


def parse_knob_args(args: list[str]) -> dict[str, str]:
    """`--name value` / `--name=value` pairs into `{name_with_underscores: value}`."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise ValueError(
                f"unexpected argument {token!r}; scenario knobs look like --name VALUE"
            )
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ValueError(f"{token} needs a value")
            value = args[i + 1]
            i += 1
        out[name.replace("-", "_")] = value
        i += 1
    return out


def _knob_assignments(items: list[str]) -> dict[str, str]:
    """`name=value` (or `--name=value`) items into `{name_with_underscores: value}`."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.removeprefix("--").partition("=")
        if not eq or not name:
            raise ValueError(f"a per-side knob looks like NAME=VALUE, not {item!r}")
        out[name.replace("-", "_")] = value
    return out


@bench_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help="scenario id (see `rowloom bench list`)")],
    records: Annotated[int | None, typer.Option(min=1, help="rows (default: the scenario's)")] = (
        None
    ),
    iterations: Annotated[int, typer.Option(min=1, help="measured iterations")] = 5,
    warmups: Annotated[int, typer.Option(min=0, help="discarded warm-up iterations")] = 1,
    seed: Annotated[int, typer.Option(help="seed for data and simulated providers")] = 42,
    out: Annotated[Path | None, typer.Option(help="output folder")] = None,
    http: Annotated[
        bool, typer.Option(help="mock server(s) over real HTTP via the OpenAI-compatible client")
    ] = False,
    timeline_cap: Annotated[int, typer.Option(min=0, help="events kept per iteration")] = 5_000,
    oracle: Annotated[bool, typer.Option(help="check output hashes against the oracle")] = True,
) -> None:
    """Run SCENARIO; extra `--knob VALUE` options set scenario knobs."""
    from rowloom.bench.registry import get_scenario
    from rowloom.bench.runner import RunOptions, run_benchmark

    try:
        spec = get_scenario(scenario)
        knobs = parse_knob_args(list(ctx.args))
        spec.resolve_knobs(knobs)
    except (KeyError, ValueError) as exc:
        _err.print(f"[red]invalid arguments[/red]: {str(exc).strip(chr(39))}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    target = out or Path("bench-results") / scenario
    options = RunOptions(
        scenario_id=scenario,
        out=target,
        records=records,
        iterations=iterations,
        warmups=warmups,
        seed=seed,
        http=http,
        knobs=knobs,
        timeline_cap=timeline_cap,
        oracle=oracle,
        command_line=["rowloom", *sys.argv[1:]],
    )
    report = run_benchmark(options)
    _print_report(report.result, target)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


def _print_report(result: Mapping[str, Any], out: Path) -> None:
    checks = result["checks"]
    assert isinstance(checks, dict)
    verdict = "[green]pass[/green]" if checks["passed"] else "[red]FAIL[/red]"
    _out.print(f"{result['scenario_id']}: checks {verdict}; artifacts in {out}")
    for problem in checks["problems"]:
        _out.print(f"  problem: {problem}", highlight=False)
    targets = result["targets"]
    assert isinstance(targets, list)
    for t in targets:
        mean = t["mean"]
        shown = f"{mean:.4g}" if isinstance(mean, float | int) else "-"
        _out.print(
            f"  {t['metric']}: {shown} (target {t['target']}): {t['verdict']}", highlight=False
        )


@bench_app.command("smoke")
def smoke(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("bench-results/smoke"),
) -> None:
    """Small deterministic runs; fails on a leak, a hash mismatch or a hidden waiter."""
    from rowloom.bench.smoke import run_smoke

    report = run_smoke(out)
    for line in report.lines():
        _out.print(line, highlight=False)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


@bench_app.command(
    "compare",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def compare(
    ctx: typer.Context,
    scenarios: Annotated[list[str], typer.Argument(help="scenario ids")],
    baseline: Annotated[str, typer.Option(help="git ref of the baseline (A)")],
    candidate: Annotated[str, typer.Option(help="git ref of the candidate (B)")],
    iterations: Annotated[int, typer.Option(min=1, help="A/B pairs (A B A B ...)")] = 5,
    warmups: Annotated[int, typer.Option(min=0, help="warm-ups inside each invocation")] = 1,
    records: Annotated[int | None, typer.Option(min=1)] = None,
    seed: Annotated[int, typer.Option()] = 42,
    out: Annotated[Path | None, typer.Option(help="output folder")] = None,
    http: Annotated[bool, typer.Option()] = False,
    repo: Annotated[Path, typer.Option(help="the git repository")] = Path("."),
    cache_dir: Annotated[Path | None, typer.Option(help="worktrees and venvs (reused)")] = None,
    baseline_env: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE set for the baseline's runs only (repeatable)"),
    ] = None,
    candidate_env: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE set for the candidate's runs only (repeatable)"),
    ] = None,
    baseline_knob: Annotated[
        list[str] | None,
        typer.Option(help="scenario knob NAME=VALUE for the baseline only (repeatable)"),
    ] = None,
    candidate_knob: Annotated[
        list[str] | None,
        typer.Option(help="scenario knob NAME=VALUE for the candidate only (repeatable)"),
    ] = None,
) -> None:
    """Build BASELINE and CANDIDATE in their own worktree+venv and run paired A B A B.

    BASELINE and CANDIDATE may be the same ref when the sides differ by --baseline-env /
    --candidate-env (e.g. ROWLOOM_REQUEST_ADMISSION_PROFILE=v1) or by per-side knobs.
    """
    from rowloom.bench.compare import CompareError, CompareOptions, run_compare

    try:
        scenarios, knobs, env, own = _compare_arguments(
            [*scenarios, *ctx.args],
            env={"baseline": baseline_env or [], "candidate": candidate_env or []},
            side_knobs={"baseline": baseline_knob or [], "candidate": candidate_knob or []},
        )
    except (KeyError, ValueError) as exc:
        _err.print(f"[red]invalid arguments[/red]: {str(exc).strip(chr(39))}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    target = out or Path("bench-results") / "compare"
    options = CompareOptions(
        repo=repo,
        baseline=baseline,
        candidate=candidate,
        scenarios=tuple(scenarios),
        iterations=iterations,
        warmups=warmups,
        records=records,
        seed=seed,
        out=target,
        http=http,
        knobs=knobs,
        cache_dir=cache_dir,
        command_line=("rowloom", *sys.argv[1:]),
        baseline_env=env["baseline"],
        candidate_env=env["candidate"],
        baseline_knobs=own["baseline"],
        candidate_knobs=own["candidate"],
    )
    try:
        report = run_compare(options, log=lambda msg: _err.print(msg, highlight=False))
    except CompareError as exc:
        _err.print(f"[red]cannot compare[/red]: {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    _out.print(report.markdown, highlight=False)
    _out.print(f"artifacts in {target}", highlight=False)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


def _compare_arguments(
    tokens: list[str], env: dict[str, list[str]], side_knobs: dict[str, list[str]]
) -> tuple[list[str], dict[str, str], dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Scenario ids, shared knobs, and each side's environment and knobs, all checked.

    click hands unknown `--knob VALUE` tokens to the variadic SCENARIOS argument, so the
    scenario ids are the tokens before the first option.
    """
    from rowloom.bench.compare import parse_env_assignments
    from rowloom.bench.registry import get_scenario

    split = next((i for i, t in enumerate(tokens) if t.startswith("--")), len(tokens))
    scenarios = tokens[:split]
    knobs = parse_knob_args(tokens[split:])
    if not scenarios:
        raise ValueError("name at least one scenario")
    envs = {side: parse_env_assignments(values) for side, values in env.items()}
    own = {side: _knob_assignments(values) for side, values in side_knobs.items()}
    for sid in scenarios:
        for knobs_of_side in own.values():
            get_scenario(sid).resolve_knobs({**knobs, **knobs_of_side})
    return scenarios, knobs, envs, own
