"""`rowloom profile | export | estimate | push | events`: commands over a finished (or stopped)
run folder.

They read the run folder only (manifest, parts, config.yaml), never call a model, and exit 2
with a one-line message when the folder or an argument is wrong.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from rowloom.config.errors import ConfigError
from rowloom.interface.designer import Designer
from rowloom.interface.estimate_view import print_estimate
from rowloom.interface.exit_codes import ExitCode
from rowloom.interface.loading import load_config
from rowloom.interface.report import write_report
from rowloom.profile import write_profile
from rowloom.profile.export import FORMATS, ExportError, ExportSpec, export_run
from rowloom.profile.hub import PushError, push_run

_out = Console()
_err = Console(stderr=True)

RunDir = Annotated[Path, typer.Argument(help="a run folder (ARTIFACT_DIR/NAME)")]


def _require_run(run_dir: Path) -> None:
    if not (run_dir / "manifest.json").is_file():
        _err.print(f"[red]not a run folder[/red]: {run_dir} (no manifest.json)", highlight=False)
        raise typer.Exit(ExitCode.INVALID)


def profile(run_dir: RunDir) -> None:
    """Recompute RUN_DIR/profile.json (and the report's Dataset section) from the data."""
    _require_run(run_dir)
    path = write_profile(run_dir)
    report = write_report(run_dir)
    _out.print(f"profile: {path}\nreport:  {report}", highlight=False)


def export(
    run_dir: RunDir,
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl, csv or parquet")] = "jsonl",
    out: Annotated[
        Path | None, typer.Option(help="output file (default: NAME.FORMAT in the current folder)")
    ] = None,
    columns: Annotated[
        str | None, typer.Option(help="comma-separated columns to export (default: all)")
    ] = None,
    side_columns: Annotated[
        bool, typer.Option(help="include <column>__reasoning_content / __trace columns")
    ] = True,
    max_rows_per_file: Annotated[
        int | None, typer.Option(min=1, help="shard into files of at most N rows")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace existing output files")] = False,
) -> None:
    """Write the dataset of RUN_DIR as one JSONL/CSV/parquet file, or shards of N rows."""
    _require_run(run_dir)
    if format not in FORMATS:
        _err.print(f"[red]--format must be one of {', '.join(FORMATS)}[/red]", highlight=False)
        raise typer.Exit(ExitCode.INVALID)
    spec = ExportSpec(
        run_dir=run_dir,
        out=out or Path(f"{run_dir.resolve().name}.{format}"),
        format=format,
        columns=[c.strip() for c in columns.split(",") if c.strip()] if columns else None,
        side_columns=side_columns,
        max_rows_per_file=max_rows_per_file,
        overwrite=overwrite,
    )
    try:
        paths = export_run(spec)
    except (ExportError, OSError) as exc:
        _err.print(f"[red]cannot export[/red]: {exc}", highlight=False)
        raise typer.Exit(ExitCode.INVALID) from None
    for path in paths:
        _out.print(str(path), highlight=False)


def estimate(
    config: Annotated[Path, typer.Argument(help="dataset config (YAML or JSON)")],
    num_records: Annotated[int, typer.Option("-n", "--num-records", min=1)] = 1000,
    pilot: Annotated[int, typer.Option(min=1, help="rows in the pilot run")] = 50,
    simulate: Annotated[
        bool, typer.Option(help="pilot on the embedded simulated provider (shape only)")
    ] = False,
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    artifact_dir: Annotated[
        Path, typer.Option(help="where the estimate is kept for a later create")
    ] = Path("artifacts"),
    providers: Annotated[
        Path | None, typer.Option(help="providers file (default ~/.config/rowloom/providers.yaml)")
    ] = None,
) -> None:
    """Run a small pilot and predict wall time, requests, tokens and cost for N rows."""

    if format not in ("text", "json"):
        _err.print("[red]--format must be text or json[/red]")
        raise typer.Exit(ExitCode.INVALID)
    try:
        cfg = load_config(config, providers=providers, simulate=simulate)
        result = Designer(artifact_dir).estimate(cfg, num_records, pilot=pilot)
    except ConfigError as exc:
        _err.print(f"[red]invalid config[/red] {config}:\n{exc}", highlight=False)
        raise typer.Exit(ExitCode.INVALID) from None
    if format == "json":
        _out.print_json(json.dumps(result.as_json()))
        return
    print_estimate(result, _out)


def push(
    run_dir: RunDir,
    repo: Annotated[str, typer.Option(help="dataset repo on the Hub, ORG/NAME")],
    private: Annotated[bool, typer.Option(help="create the repo as private")] = False,
    license: Annotated[
        str, typer.Option(help="licence id for the dataset card (e.g. apache-2.0, cc-by-4.0)")
    ] = "other",
) -> None:
    """Upload RUN_DIR's dataset to the Hugging Face Hub with a generated dataset card.

    The token comes from HF_TOKEN (or a `huggingface-cli login`); HF_ENDPOINT selects another
    Hub."""
    _require_run(run_dir)
    if repo.count("/") != 1 or not all(repo.split("/")):
        _err.print(f"[red]--repo must be ORG/NAME, not {repo!r}[/red]", highlight=False)
        raise typer.Exit(ExitCode.INVALID)
    try:
        result = push_run(run_dir, repo, private=private, license_id=license)
    except PushError as exc:
        _err.print(f"[red]push failed[/red]: {exc}", highlight=False)
        raise typer.Exit(ExitCode.FAILED) from None
    _out.print(f"pushed {len(result.files)} files to {result.url}", highlight=False)


EVENT_FORMATS = ("jsonl", "parquet")
EVENT_STREAMS = ("scheduler", "requests")


def events(
    run_dir: RunDir,
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl or parquet")] = "jsonl",
    stream: Annotated[
        str | None,
        typer.Option(help="scheduler or requests (default: both, merged in capture order)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="output file (jsonl default: stdout)")
    ] = None,
) -> None:
    """Print RUN_DIR's recorded events as JSON lines (one event per line, as the spec's
    event fields), or write one stream as a parquet table."""
    from rowloom.observability import has_events, json_lines, read_events

    if not (run_dir / "manifest.json").is_file() and not has_events(run_dir):
        _fail(f"not a run folder: {run_dir} (no manifest.json, no events/)")
    if format not in EVENT_FORMATS:
        _fail(f"--format must be one of {', '.join(EVENT_FORMATS)}")
    if stream is not None and stream not in EVENT_STREAMS:
        _fail(f"--stream must be one of {', '.join(EVENT_STREAMS)}")
    streams = EVENT_STREAMS if stream is None else (stream,)
    if format == "parquet":
        if stream is None or out is None:
            _fail("--format parquet writes one stream: give --stream and --out")
        import pyarrow.parquet as pq

        try:
            pq.write_table(read_events(run_dir, stream).combine_chunks(), out)
        except OSError as exc:
            _fail(f"cannot write {out}: {exc}")
        _err.print(f"wrote {out}", highlight=False)
        return
    if out is not None:
        try:
            with out.open("wb") as fh:
                _write_lines(fh, json_lines(run_dir, streams))
        except OSError as exc:
            _fail(f"cannot write {out}: {exc.strerror or exc}")
        _err.print(f"wrote {out}", highlight=False)
        return
    try:
        _write_lines(sys.stdout.buffer, json_lines(run_dir, streams))
        sys.stdout.flush()
    except BrokenPipeError:  # `rowloom events RUN | head`: stop quietly
        sys.stderr.close()


def _write_lines(fh: IO[bytes], lines: Iterable[bytes]) -> None:
    for line in lines:
        fh.write(line)
        fh.write(b"\n")


def _fail(message: str) -> NoReturn:
    _err.print(f"[red]{escape(message)}[/red]", highlight=False)
    raise typer.Exit(ExitCode.INVALID)


def register(app: typer.Typer) -> None:
    """Add these commands to the `rowloom` app."""
    app.command()(profile)
    app.command()(export)
    app.command()(estimate)
    app.command()(push)
    app.command()(events)
