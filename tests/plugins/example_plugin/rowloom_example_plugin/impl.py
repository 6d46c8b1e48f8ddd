"""Implementations of the example plugin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rowloom.builder.processors import Processor
from rowloom.generators.base import BatchGenerator, BatchInput


class ReverseTextGenerator(BatchGenerator):
    """Reverses its source column for a whole row group at once."""

    def generate_batch(self, batch: BatchInput) -> list[Any]:
        values = batch.columns[self.config.source]
        out = [str(v)[::-1] for v in values]
        return [v.upper() for v in out] if self.config.upper else out


class RowStatsProcessor(Processor):
    """One row per dataset row: how many of its values are set."""

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
        return [{"filled": sum(v is not None for v in row.values())} for row in rows]
