"""`ColumnGenerator`: one per column family, producing a column's values for one task.

A generator runs either per cell (`task_type == "cell"`: one row at a time, e.g. a model call)
or per row group (`task_type == "batch"`: all live rows at once, e.g. a sampler). Generators are
deterministic: the same config, seed and inputs give the same values in any execution order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from jinja2 import StrictUndefined, Template, TemplateError

from rowloom.config.dataset import column_dependencies, column_model_aliases
from rowloom.config.scheduling import DEFAULT_SCHEDULING_METADATA, SchedulingMetadata
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.sandbox import BoundedSandbox, render_bounded
from rowloom.models.facade import ModelFacade

TaskType = Literal["cell", "batch"]


@dataclass(frozen=True, slots=True)
class CellContext:
    """Where a cell is: its global row index, row group, the run seed and the model facade."""

    seed: int
    row_group: int
    global_row: int
    facade: ModelFacade | None


@dataclass(frozen=True, slots=True)
class BatchInput:
    """The live (not dropped) rows of a row group: their global indices and upstream columns."""

    seed: int
    row_group: int
    global_rows: Sequence[int]
    columns: Mapping[str, Sequence[Any]]

    def row(self, i: int) -> dict[str, Any]:
        """The i-th live row as a mapping of upstream column values."""
        return {name: values[i] for name, values in self.columns.items()}


class ColumnGenerator:
    """Produces one column's values. Subclasses implement `generate_cell` or `generate_batch`."""

    task_type: ClassVar[TaskType] = "cell"
    runs_in_thread: ClassVar[bool] = False
    """A batch generator that blocks on I/O (seed reads) runs in a worker thread."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.name: str = config.name
        self.required_columns: tuple[str, ...] = column_dependencies(config)
        self.model_aliases: tuple[str, ...] = column_model_aliases(config)
        self._skip = compile_template(config.skip_when) if config.skip_when else None

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        """The resource kind this generator uses; `local/default/1` unless overridden."""
        return DEFAULT_SCHEDULING_METADATA

    def should_skip(self, row: Mapping[str, Any]) -> bool:
        """True when the column's `skip_when` condition holds for this row."""
        if self._skip is None:
            return False
        return render(self._skip, row).strip().lower() not in ("", "false", "0", "none", "no")

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        """The value for one row (cell generators)."""
        raise NotImplementedError(f"{type(self).__name__} is not a cell generator")

    def generate_batch(self, batch: BatchInput) -> list[Any]:
        """Values for every live row of a row group, in order (batch generators)."""
        raise NotImplementedError(f"{type(self).__name__} is not a batch generator")


@dataclass(frozen=True, slots=True)
class RowFailure:
    """A batch generator's value for a row it could not produce: that row alone is dropped."""

    reason: str
    message: str = ""


class BatchGenerator(ColumnGenerator, ABC):
    """A generator that fills a whole row group at once.

    It may return a `RowFailure` for a row it cannot produce; only that row is dropped. An
    exception drops the whole row group.
    """

    task_type: ClassVar[TaskType] = "batch"

    @abstractmethod
    def generate_batch(self, batch: BatchInput) -> list[Any]: ...


_ENV = BoundedSandbox(
    autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True, optimized=False
)
"""`optimized=False`: Jinja folds constant expressions while compiling, which would run (and
refuse with an untyped error) `{{ (''.__class__) ~ x }}` at compile time; unfolded, the sandbox
refuses it at render time as this row's `template_error`."""


def compile_template(source: str) -> Template:
    """A sandboxed Jinja2 template: no attribute escapes, no file access, immutable values,
    bounded work and output (`rowloom.generators.sandbox`), and an error (not an empty
    string) for an undefined name."""
    return _ENV.from_string(source)


def render(template: Template, row: Mapping[str, Any]) -> str:
    """Render a compiled template over a row; failures raise `NonRetryableTaskError`."""
    try:
        return render_bounded(template, row)
    except TemplateError as exc:
        raise NonRetryableTaskError("template_error", f"template failed: {exc}") from None
    except Exception as exc:  # whatever a template raises is this row's template error
        raise NonRetryableTaskError(
            "template_error", f"template failed: {type(exc).__name__}: {exc}"
        ) from None
