"""The `rowloom` command line.

Exit codes: 0 done, 1 run failed or incomplete, 2 invalid config or arguments.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rowloom.bench.cli import bench_app
from rowloom.builder.builder import RunMonitor
from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigError
from rowloom.errors import ResumeError, RunAbortedError
from rowloom.interface import cli_data
from rowloom.interface.designer import Designer
from rowloom.interface.loading import load_config
from rowloom.interface.progress import ProgressDisplay, ProgressMode
from rowloom.interface.report import format_usage

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Generate synthetic datasets with LLMs, as fast as each provider accepts.",
)
app.add_typer(bench_app, name="bench")
cli_data.register(app)
_out = Console()
_err = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


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
        _err.print(f"[red]invalid config[/red] {path}:\n{exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None


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


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="dataset config (YAML or JSON)")],
    providers: ProvidersOption = None,
    simulate: SimulateOption = False,
) -> None:
    """Check a config statically (and its environment) without calling any model."""
    cfg = _load(config, providers, simulate)
    try:
        cfg.check_environment()
    except ConfigError as exc:
        _err.print(f"[red]invalid config[/red] {config}:\n{exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    _out.print(
        f"[green]ok[/green] {config}: {len(cfg.columns)} columns "
        f"({', '.join(cfg.topological_order)}), {len(cfg.models)} models, "
        f"{len(cfg.providers)} providers",
        highlight=False,
    )


@app.command()
def preview(
    config: Annotated[Path, typer.Argument(help="dataset config (YAML or JSON)")],
    num_records: Annotated[int, typer.Option("-n", "--num-records", min=1)] = 10,
    engine: Annotated[
        str, typer.Option(help="async (default) or sequential (the oracle)")
    ] = "async",
    providers: ProvidersOption = None,
    simulate: SimulateOption = False,
) -> None:
    """Generate a few rows in memory and print them."""
    cfg = _load(config, providers, simulate)
    try:
        result = Designer(engine=_engine(engine)).preview(cfg, num_records)
    except ConfigError as exc:
        _err.print(f"[red]invalid config[/red]:\n{exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    for i in range(len(result)):
        row = {c: v[i] for c, v in result.data.items()}
        _out.print_json(json.dumps(row, default=str, ensure_ascii=False))
    _summary_line(result.summary.as_json())
    if result.summary.status != "complete":
        raise typer.Exit(EXIT_FAILED)


def _engine(value: str) -> Any:
    if value not in ("async", "sequential"):
        _err.print(f"[red]--engine must be async or sequential, not {value!r}[/red]")
        raise typer.Exit(EXIT_INVALID)
    return value


def _summary_line(summary: dict[str, Any]) -> None:
    dropped = summary["dropped_rows"]
    dropped_text = ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) if dropped else "none"
    _out.print(
        f"{summary['status']}: {summary['rows_written']}/{summary['num_records']} rows, "
        f"{summary['request_attempts']} model requests, {summary['wall_seconds']:.1f} s wall; "
        f"dropped rows: {dropped_text}",
        highlight=False,
    )
    usage = format_usage(summary.get("token_usage"))
    if usage:
        _out.print(f"token usage: {usage}", highlight=False)
    if summary.get("stop_reason"):
        _out.print(f"stopped because: {summary['stop_reason']}", highlight=False)


@app.command()
def create(
    config: Annotated[Path, typer.Argument(help="dataset config (YAML or JSON)")],
    num_records: Annotated[int, typer.Option("-n", "--num-records", min=1)] = 100,
    name: Annotated[str | None, typer.Option(help="run name (default: config file stem)")] = None,
    artifact_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("artifacts"),
    resume: Annotated[bool, typer.Option(help="continue a stopped run with the same config")] = (
        False
    ),
    engine: Annotated[
        str, typer.Option(help="async (default) or sequential (the oracle)")
    ] = "async",
    buffer_size: Annotated[int | None, typer.Option(min=1, help="rows per row group")] = None,
    max_concurrent_row_groups: Annotated[int | None, typer.Option(min=1)] = None,
    quiet: Annotated[bool, typer.Option(help="no progress output")] = False,
    plain: Annotated[bool, typer.Option(help="plain log lines instead of a live display")] = False,
    providers: ProvidersOption = None,
    simulate: SimulateOption = False,
) -> None:
    """Generate a dataset into ARTIFACT_DIR/NAME (parquet parts, manifest, events, report)."""
    loaded = _load(config, providers, simulate)
    cfg = _with_overrides(loaded, buffer_size, max_concurrent_row_groups)
    run_name = name or config.stem
    mode: ProgressMode = (
        "quiet" if quiet else ("plain" if plain or not _err.is_terminal else "live")
    )
    monitor = RunMonitor()
    designer = Designer(artifact_dir, engine=_engine(engine))
    display = ProgressDisplay(monitor, mode=mode, console=_err)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            display.run(
                designer.acreate(cfg, num_records, run_name, resume=resume, monitor=monitor)
            )
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    try:
        result = asyncio.run(main())
    except ConfigError as exc:
        _err.print(f"[red]invalid config[/red]:\n{exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except ResumeError as exc:
        _err.print(f"[red]cannot resume[/red]: {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except (asyncio.CancelledError, KeyboardInterrupt):
        _err.print(f"[yellow]stopped[/yellow]: {_saved(artifact_dir / run_name)}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except RunAbortedError as exc:
        _err.print(f"[red]run stopped[/red]: {exc}", highlight=False)
        _err.print(_saved(artifact_dir / run_name), highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    summary = result.summary.as_json()
    _out.print(f"dataset:       {result.data_dir}", highlight=False)
    _out.print(f"manifest:      {result.manifest_path}", highlight=False)
    _out.print(f"capacity plan: {result.capacity_plan_path}", highlight=False)
    _out.print(f"report:        {result.report_path}", highlight=False)
    _summary_line(summary)
    if summary["status"] != "complete":
        raise typer.Exit(EXIT_FAILED)


def _saved(run_dir: Path) -> str:
    """What a stopped run kept (from its manifest) and how to finish it."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        total = -(-int(manifest["num_records"]) // int(manifest["buffer_size"]))
        done = len(manifest["row_groups"])
        rows = sum(int(r["rows"]) for r in manifest["row_groups"].values())
    except (OSError, ValueError, KeyError, TypeError):
        return f"nothing was checkpointed in {run_dir}"
    return (
        f"{done} of {total} row groups ({rows} rows) are saved in {run_dir}; "
        f"{total - done} incomplete; run again with --resume to complete it"
    )


@app.command()
def convert(
    config: Annotated[Path, typer.Argument(help="a config (Data Designer's or rowloom's)")],
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
        _err.print(f"[red]cannot write[/red] {output}: {exc.strerror}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    _err.print(f"[green]wrote[/green] {output}", highlight=False)


@app.command("mock-server")
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
) -> None:
    """Serve the simulated provider over real OpenAI-compatible HTTP until Ctrl-C."""
    from rowloom.simulation.server import MockServerOptions, serve

    if overload not in ("reject", "queue"):
        _err.print(f"[red]--overload must be reject or queue, not {overload!r}[/red]")
        raise typer.Exit(EXIT_INVALID)
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
        )
    except ValueError as exc:
        _err.print(f"[red]invalid mock-server options[/red]: {exc}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    serve(options)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run folder (ARTIFACT_DIR/NAME)")],
) -> None:
    """Print a run's summary (where the time went, provider limits) and rewrite report.html."""
    from rowloom.interface.report import load_report, print_summary, write_report

    if not (run_dir / "manifest.json").is_file():
        _err.print(f"[red]not a run folder[/red]: {run_dir} has no manifest.json", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    print_summary(load_report(run_dir), _out)
    _out.print(f"report: {write_report(run_dir)}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - signal during startup
        sys.exit(EXIT_FAILED)
