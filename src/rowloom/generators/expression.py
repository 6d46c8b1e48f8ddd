"""Expression columns: a sandboxed Jinja2 template over other columns, cast to a dtype."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from rowloom.config.columns import ExpressionColumnConfig
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.base import (
    BatchInput,
    CellContext,
    ColumnGenerator,
    RowFailure,
    TaskType,
    compile_template,
    render,
)


class ExpressionGenerator(ColumnGenerator):
    """Renders `expr` per row. Runs per row group when every input is itself per row group
    (so a purely local pipeline is vectorised), else per cell (so it pipelines behind models)."""

    task_type: ClassVar[TaskType] = "cell"

    def __init__(self, config: ExpressionColumnConfig, *, batch: bool = False) -> None:
        super().__init__(config)
        self.dtype = config.dtype
        self._template = compile_template(config.expr)
        if batch:
            self.task_type = "batch"  # type: ignore[misc]

    def output_shape(self) -> dict[str, Any] | None:
        """A `str` expression is stored as text, even one whose text templates may read
        into (its config's shape is left open for them)."""
        if self.dtype == "str":
            return {"type": "string"}
        return super().output_shape()

    def value_for(self, row: Mapping[str, Any]) -> Any:
        """The cast value of the expression for one row."""
        return cast_value(render(self._template, row), self.dtype, self.name)

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        return self.value_for(row)

    def generate_batch(self, batch: BatchInput) -> list[Any]:
        values: list[Any] = []
        for i in range(len(batch.global_rows)):
            try:
                values.append(self.value_for(batch.row(i)))
            except NonRetryableTaskError as exc:  # drop this row, not the row group
                values.append(RowFailure(exc.reason, str(exc)))
        return values


def cast_value(text: str, dtype: str, column: str) -> Any:
    """Cast rendered text to `dtype` (str, int, float, bool, json)."""
    stripped = text.strip()
    try:
        if dtype == "str":
            return text
        if dtype == "int":
            return int(float(stripped)) if stripped else None
        if dtype == "float":
            return float(stripped) if stripped else None
        if dtype == "bool":
            return stripped.lower() in ("true", "1", "yes", "y", "t")
        return json.loads(stripped) if stripped else None
    except ValueError as exc:
        raise NonRetryableTaskError(
            "expression_cast_error", f"column {column!r}: cannot cast {stripped[:60]!r} to {dtype}"
        ) from exc
