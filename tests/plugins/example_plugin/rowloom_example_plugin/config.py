"""Config classes of the example plugin."""

from __future__ import annotations

from typing import Any, Literal

from rowloom.config.columns import ColumnConfigBase
from rowloom.config.processors import ProcessorConfigBase


class ReverseTextColumnConfig(ColumnConfigBase):
    """A column holding `source` reversed (`upper` to shout it)."""

    column_type: Literal["reverse_text"] = "reverse_text"
    source: str
    upper: bool = False

    @property
    def required_columns(self) -> list[str]:
        return [self.source]

    def output_shape(self) -> dict[str, Any] | None:
        return {"type": "string"}


class RowStatsProcessorConfig(ProcessorConfigBase):
    """An extra table with each row's number of non-empty values."""

    processor_type: Literal["row_stats"] = "row_stats"
