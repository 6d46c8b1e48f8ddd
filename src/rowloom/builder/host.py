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
from rowloom.builder.storage import RunStorage, encode_table
from rowloom.generators.base import CellContext, ColumnGenerator, RowFailure
from rowloom.models.facade import ModelFacade
from rowloom.models.usage import CallTag, UsageLedger, UsageTotals
from rowloom.simulation.cell_key import bound_cell_key

_NO_FAILURES: Mapping[int, str] = MappingProxyType({})


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
        gen = self.generators[task.column]
        buf = self._buffers[task.row_group]
        if task.task_type == "batch":
            live, batch = buf.batch_input(gen.required_columns, self.seed)
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
        if self.storage is not None:
            table = encode_table(self.output_columns, values)
            await asyncio.to_thread(self.storage.write_row_group, row_group, table, reasons, usage)
        else:
            self.kept[row_group] = values
        self.stats.row_groups += 1
        self.stats.rows_written += len(live)
        self.stats.dropped.update(reasons)
        if self._on_checkpoint is not None:
            self._on_checkpoint(row_group, len(live))
        return len(live)

    def discard_row_group(self, row_group: int) -> None:
        """Forget an unfinished row group (cancelled run); it is regenerated on resume."""
        self._buffers.pop(row_group, None)
