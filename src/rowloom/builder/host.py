"""`GenerationHost`: runs one task's generator against the row-group buffers and checkpoints
finished row groups. Both engines (sequential and async) drive the same host, so they produce
the same values."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from rowloom.builder.row_groups import RowGroupBuffer, RowGroupPlan
from rowloom.builder.storage import MAX_ERROR_SAMPLES, ErrorSample, RunStorage, encode_table
from rowloom.errors import TaskError
from rowloom.generators.base import CellContext, ColumnGenerator, RowFailure
from rowloom.models.facade import ModelFacade
from rowloom.models.usage import CallTag, UsageLedger, UsageTotals
from rowloom.observability.redaction import redact
from rowloom.simulation.cell_key import bound_cell_key

_NO_FAILURES: Mapping[int, str] = MappingProxyType({})
MAX_MESSAGE = 500
"""Characters of an error message kept in a sample."""


class TaskLike(Protocol):
    """What the host needs of a task (`rowloom.scheduling.Task` satisfies it)."""

    @property
    def column(self) -> str: ...

    @property
    def row_group(self) -> int: ...

    @property
    def row_index(self) -> int | None: ...

    @property
    def task_type(self) -> str: ...


@dataclass(slots=True)
class CheckpointStats:
    """Running totals across checkpoints."""

    row_groups: int = 0
    rows_written: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


class GenerationHost:
    """Owns the in-flight row-group buffers; executes tasks; writes finished row groups."""

    def __init__(
        self,
        generators: Mapping[str, ColumnGenerator],
        plan: RowGroupPlan,
        seed: int,
        output_columns: list[str],
        facade_for: Callable[[ColumnGenerator], ModelFacade | None],
        storage: RunStorage | None,
        on_checkpoint: Callable[[int, int], None] | None = None,
        usage: UsageLedger | None = None,
    ) -> None:
        self.generators = generators
        self.plan = plan
        self.seed = seed
        self.output_columns = output_columns
        self.storage = storage
        self.stats = CheckpointStats()
        self.kept: dict[int, dict[str, list[Any]]] = {}
        self.kept_errors: dict[int, list[ErrorSample]] = {}
        """Without storage (previews): every dropped row's error, per row group."""
        self.error_samples: list[ErrorSample] = []
        """The first sample errors of this run's checkpointed row groups (in finish order)."""
        self._facades = {name: facade_for(gen) for name, gen in generators.items()}
        self._buffers: dict[int, RowGroupBuffer] = {}
        self._on_checkpoint = on_checkpoint
        self._usage = usage
        self.kept_usage = UsageTotals()
        """Usage of the row groups checkpointed by this host (in memory or on disk)."""

    def open_row_group(self, row_group: int) -> int:
        """Create the buffer for a row group; return its row count."""
        size = self.plan.size(row_group)
        self._buffers[row_group] = RowGroupBuffer(row_group, self.plan.offset(row_group), size)
        return size

    @property
    def open_row_groups(self) -> int:
        """Row groups currently buffered."""
        return len(self._buffers)

    async def run_task(self, task: TaskLike) -> Mapping[int, str]:
        """Run one task and store its values; return the rows it could not produce (row index
        -> reason; only whole-row-group tasks report rows). Generator errors propagate."""
        buf = self._buffers[task.row_group]
        try:
            return await self._run(task, buf)
        except TaskError as exc:  # remembered to explain the drop, if the row is dropped
            buf.note_failure(task.row_index, task.column, exc.reason, str(exc))
            raise

    async def _run(self, task: TaskLike, buf: RowGroupBuffer) -> Mapping[int, str]:
        gen = self.generators[task.column]
        if task.task_type == "batch":
            live, batch = buf.batch_input(gen.required_columns, self.seed)
            if gen.runs_in_thread:
                values = await asyncio.to_thread(gen.generate_batch, batch)
            else:
                values = gen.generate_batch(batch)
            if len(values) != len(live):
                raise AssertionError(
                    f"{task.column}: batch generator returned {len(values)} values "
                    f"for {len(live)} rows"
                )
            col = buf.column(task.column)
            failed: dict[int, str] = {}
            for i, v in zip(live, values, strict=True):
                if isinstance(v, RowFailure):
                    failed[i] = v.reason
                    buf.note_failure(i, task.column, v.reason, v.message)
                else:
                    col[i] = v
            return failed
        assert task.row_index is not None
        row = buf.row(task.row_index, gen.required_columns)
        global_row = buf.offset + task.row_index
        facade = self._facades[task.column]
        ctx = CellContext(
            seed=self.seed,
            row_group=task.row_group,
            global_row=global_row,
            facade=(
                facade.bind(CallTag(task.column, task.row_group, global_row))
                if facade is not None
                else None
            ),
        )
        with bound_cell_key(task.column, ctx.global_row):
            value = await gen.generate_cell(row, ctx)
        buf.set(task.column, task.row_index, value)
        return _NO_FAILURES

    def drop_row(self, row_group: int, row_index: int, reason: str) -> None:
        """Forget a row: later whole-row-group tasks skip it and it is not written."""
        self._buffers[row_group].drop(row_index, reason)

    async def checkpoint_row_group(self, row_group: int, dropped: Mapping[int, str]) -> int:
        """Write a finished row group (without its dropped rows); return rows written."""
        buf = self._buffers.pop(row_group)
        for row, reason in dropped.items():
            buf.drop(row, reason)
        live = buf.live_rows()
        values = {c: [buf.column(c)[i] for i in live] for c in self.output_columns}
        reasons = Counter(buf.dropped.values())
        usage = self._usage.take(row_group) if self._usage is not None else UsageTotals()
        self.kept_usage.merge(usage)
        errors = _error_samples(buf)
        if self.storage is not None:
            table = encode_table(self.output_columns, values)
            await asyncio.to_thread(
                self.storage.write_row_group,
                row_group,
                table,
                reasons,
                usage,
                errors[:MAX_ERROR_SAMPLES],
            )
        else:
            self.kept[row_group] = values
            self.kept_errors[row_group] = errors
        self.error_samples.extend(errors[: MAX_ERROR_SAMPLES - len(self.error_samples)])
        self.stats.row_groups += 1
        self.stats.rows_written += len(live)
        self.stats.dropped.update(reasons)
        if self._on_checkpoint is not None:
            self._on_checkpoint(row_group, len(live))
        return len(live)

    def discard_row_group(self, row_group: int) -> None:
        """Forget an unfinished row group (cancelled run); it is regenerated on resume."""
        self._buffers.pop(row_group, None)


def _error_samples(buf: RowGroupBuffer) -> list[ErrorSample]:
    """One `ErrorSample` per dropped row of a row group, in row order."""
    out = []
    for row in sorted(buf.dropped):
        reason = buf.dropped[row]
        failure = buf.failure_of(row)
        column, message = ("", "")
        if failure is not None:
            column, failed_reason, message = failure
            if failed_reason != reason:
                message = f"{failed_reason}: {message}"
        out.append(ErrorSample(column, buf.offset + row, reason, redact(message)[:MAX_MESSAGE]))
    return out
