"""`rowloom models ...`: commands about a config's models (`check`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigError
from rowloom.interface.loading import load_config
from rowloom.models.check import ModelCheck, check_models

models_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Check the models a config uses."
)
_out = Console()
_err = Console(stderr=True)

_STYLE = {"ok": "green", "degraded": "yellow", "unusable": "red", "skipped": "dim"}


@models_app.command("check")
def check(
    config: Annotated[Path, typer.Argument(help="dataset config (YAML or JSON)")],
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds per probe request")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
    strict: Annotated[bool, typer.Option(help="a degraded model fails the check too")] = False,
    providers: Annotated[
        Path | None,
        typer.Option(help="providers file (default: ~/.config/rowloom/providers.yaml if present)"),
    ] = None,
) -> None:
    """One small request per model (chat + JSON schema, embedding or image, as its kind
    needs): latency, whether JSON-schema output is honoured, and a verdict per model.
    Exit 1 when a model is unusable (or, with --strict, degraded)."""
    try:
        cfg = load_config(config, providers=providers)
        cfg.check_environment()
    except ConfigError as exc:
        _err.print(f"[red]invalid config[/red] {config}:\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    results = asyncio.run(check_models(cfg, probe_timeout=timeout))
    if as_json:
        _out.print_json(json.dumps([r.as_json() for r in results]))
    else:
        print_checks(results, _out)
    if failed(results, strict=strict):
        raise typer.Exit(1)


def failed(results: list[ModelCheck], *, strict: bool = False) -> bool:
    """True when a model is unusable (or degraded, with `strict`)."""
    bad = {"unusable", "degraded"} if strict else {"unusable"}
    return any(r.verdict in bad for r in results)


def print_checks(results: list[ModelCheck], console: Console) -> None:
    """A table of probes per model, then one verdict line per model."""
    table = Table(box=None, header_style="bold")
    for col in ("alias", "model", "probe", "latency", "result"):
        table.add_column(col, justify="right" if col == "latency" else "left", overflow="fold")
    for r in results:
        for probe in r.probes:
            latency = f"{probe.latency_ms:,.0f} ms" if probe.latency_ms is not None else "-"
            mark = "[green]ok[/green]" if probe.ok else "[red]failed[/red]"
            table.add_row(
                r.alias, f"{r.provider}/{r.model}", probe.name, latency, f"{mark} {probe.detail}"
            )
    console.print(table)
    for r in results:
        schema = ""
        if r.schema_honoured is not None:
            schema = "; JSON schema honoured" if r.schema_honoured else "; JSON schema ignored"
        why = f": {r.reason}" if r.reason else ""
        style = _STYLE[r.verdict]
        console.print(
            f"[{style}]{r.verdict}[/{style}] {r.alias} ({r.generation_kind}){schema}{why}",
            highlight=False,
        )


def preflight(config: DatasetConfig, timeout: float = 30.0) -> None:
    """`create --check-models`: probe the models; exit 1 before the run if one is unusable."""
    try:
        config.check_environment()
    except ConfigError as exc:
        _err.print(f"[red]invalid config[/red]:\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    results = asyncio.run(check_models(config, probe_timeout=timeout))
    print_checks(results, _err)
    if failed(results):
        _err.print("[red]not starting the run[/red]: a model is unusable", highlight=False)
        raise typer.Exit(1)
