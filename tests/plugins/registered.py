"""The example plugin package's column type and processor, registered for one test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rowloom.config.plugins import REGISTRY, Plugin

EXAMPLE = Path(__file__).parent / "example_plugin"


@contextmanager
def example_plugins_registered() -> Iterator[None]:
    """`reverse_text` columns and `row_stats` processors, importable from the example package."""
    sys.path.insert(0, str(EXAMPLE))
    plugins = [
        Plugin(
            "column_generator",
            "rowloom_example_plugin.config:ReverseTextColumnConfig",
            "rowloom_example_plugin.impl:ReverseTextGenerator",
        ),
        Plugin(
            "processor",
            "rowloom_example_plugin.config:RowStatsProcessorConfig",
            "rowloom_example_plugin.impl:RowStatsProcessor",
        ),
    ]
    for p in plugins:
        REGISTRY.register(p)
    try:
        yield
    finally:
        for p in plugins:
            REGISTRY.unregister(p.plugin_type, p.name)
        sys.path.remove(str(EXAMPLE))
