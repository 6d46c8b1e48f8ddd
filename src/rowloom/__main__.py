"""The `rowloom` command: the interface's commands with the bench harness mounted as `bench`.

This is the one place that knows both: the interface does not import the harness, and the
harness drives the interface (Designer, results, report) as a user would.
"""

from __future__ import annotations

from rowloom.bench.cli import bench_app
from rowloom.interface.cli import app, main

app.add_typer(bench_app, name="bench")

__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
