"""`ColumnGenerator`: one per column family, producing a column's values for one task.

A generator runs either per cell (`task_type == "cell"`: one row at a time, e.g. a model call)
or per row group (`task_type == "batch"`: all live rows at once, e.g. a sampler). Generators are
deterministic: the same config, seed and inputs give the same values in any execution order.

Skipping is decided before a generator runs (`skip_decision`, applied by the host for every
column type): a skipped cell gets `skip.value` and never reaches `generate_cell`/`generate_batch`.
A generator with side-effect columns returns `CellOutput(value, extras)` for a cell.
"""

from __future__ import annotations

import ast
import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from jinja2 import StrictUndefined, Template, TemplateError

from rowloom.config.references import (
    column_dependencies,
    column_inputs,
    column_model_aliases,
    column_side_effects,
)
from rowloom.config.scheduling import DEFAULT_SCHEDULING_METADATA, SchedulingMetadata
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.sandbox import BoundedSandbox, render_bounded
from rowloom.models.facade import ModelFacade

TaskType = Literal["cell", "batch"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CellOutput:
    """A cell's value plus the values of the generator's side-effect columns for that row."""

    value: Any
    extras: Mapping[str, Any]


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
    writes_files: ClassVar[bool] = False
    """Values are files of the run folder (image columns): see `discard_files`."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.name: str = config.name
        self.required_columns: tuple[str, ...] = column_dependencies(config)
        self.input_columns: tuple[str, ...] = column_inputs(config)
        self.side_effect_columns: tuple[str, ...] = column_side_effects(config)
        self.model_aliases: tuple[str, ...] = column_model_aliases(config)
        skip = getattr(config, "skip", None)
        self._skip = compile_template(skip.when) if skip is not None else None
        self.skip_value: Any = skip.value if skip is not None else None
        self.propagate_skip: bool = bool(getattr(config, "propagate_skip", True))

    def output_shape(self) -> dict[str, Any] | None:
        """The shape of this column's values, which gives its Arrow type: the config's
        (`output_shape()`), unless the generator knows more (e.g. from a dataset file)."""
        method = getattr(self.config, "output_shape", None)
        shape = method() if callable(method) else None
        return shape if isinstance(shape, dict) else None

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        """The resource kind this generator uses; `local/default/1` unless overridden."""
        return DEFAULT_SCHEDULING_METADATA

    @property
    def has_skip_condition(self) -> bool:
        """True when the column has a `skip.when`."""
        return self._skip is not None

    def skip_decision(self, row: Mapping[str, Any], skipped: frozenset[str] | set[str]) -> bool:
        """True when this cell is skipped: a column it reads was skipped for the row (with
        `propagate_skip`), or `skip.when` is truthy. A `skip.when` that fails to evaluate
        skips the cell (no call is made on a row whose filter is unknown)."""
        if self.propagate_skip and skipped and not skipped.isdisjoint(self.input_columns):
            return True
        if self._skip is None:
            return False
        try:
            text = render_bounded(self._skip, row)
        except Exception as exc:  # undefined names, type errors on skipped inputs, bounds
            _log.debug("column %r: skip.when failed (%s); the cell is skipped", self.name, exc)
            return True
        return truthy(text)

    def discard_files(self, values: Sequence[Any]) -> None:
        """Remove the files behind the values of dropped rows (`writes_files` generators;
        called from a worker thread when their row group is written)."""

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        """The value for one row (cell generators)."""
        raise NotImplementedError(f"{type(self).__name__} is not a cell generator")

    def generate_batch(self, batch: BatchInput) -> list[Any]:
        """Values for every live row of a row group, in order (batch generators)."""
        raise NotImplementedError(f"{type(self).__name__} is not a batch generator")

    async def agenerate_batch(self, batch: BatchInput, ctx: CellContext) -> list[Any]:
        """`generate_batch` for the engine (in a worker thread with `runs_in_thread`);
        generators that wait on I/O asynchronously override this."""
        if self.runs_in_thread:
            return await asyncio.to_thread(self.generate_batch, batch)
        return self.generate_batch(batch)


@dataclass(frozen=True, slots=True)
class RowFailure:
    """A batch generator's value for a row it could not produce: that row alone is dropped."""

    reason: str
    message: str = ""


def truthy(text: str) -> bool:
    """Truth of a rendered condition, as Jinja's native types give it: the text read as a
    Python literal when it is one (`False`, `0`, `None`, `[]` are false), else non-empty."""
    stripped = text.strip()
    try:
        return bool(ast.literal_eval(stripped))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return bool(stripped)


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
