"""`GenerationHost`: runs one task's generator against the row-group buffers and checkpoints
finished row groups. Both engines (sequential and async) drive the same host, so they produce
the same values."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from rowloom.builder.arrow_values import arrow_type_for_shape
from rowloom.builder.processors import Processor
from rowloom.builder.row_groups import RowGroupBuffer, RowGroupPlan
from rowloom.builder.storage import MAX_ERROR_SAMPLES, ErrorSample, RunStorage, encode_table
from rowloom.errors import NonRetryableTaskError, TaskError
from rowloom.generators.base import CellContext, CellOutput, ColumnGenerator, RowFailure
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
        processors: Sequence[Processor] = (),
        on_rows_finished: Callable[[int], None] | None = None,
    ) -> None:
        self.generators = generators
        self.processors = list(processors)
        self.kept_processor_rows: dict[str, dict[int, list[dict[str, Any]]]] = {}
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
        self._file_writers = [gen for gen in generators.values() if gen.writes_files]
        self._unwritten_file_writers = [
            gen for gen in self._file_writers if gen.name not in output_columns
        ]
        """File columns the dataset does not keep (`drop: true`): their files go too."""
        self._types = {
            name: arrow_type_for_shape(_shape_of(gen)) for name, gen in generators.items()
        }
        self._buffers: dict[int, RowGroupBuffer] = {}
        self._on_checkpoint = on_checkpoint
        self._on_rows_finished = on_rows_finished
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
        -> reason; only whole-row-group tasks report rows). Generator errors propagate.

        Skipped cells (`skip.when`, or a skipped input with `propagate_skip`) get the column's
        skip value without running the generator."""
        buf = self._buffers[task.row_group]
        try:
            return await self._run(task, buf)
        except TaskError as exc:  # remembered to explain the drop, if the row is dropped
            buf.note_failure(task.row_index, task.column, exc.reason, str(exc))
            raise

    async def _run(self, task: TaskLike, buf: RowGroupBuffer) -> Mapping[int, str]:
        gen = self.generators[task.column]
        if task.task_type == "batch":
            return await self._run_batch(gen, buf, task)
        assert task.row_index is not None
        row = buf.row(task.row_index, gen.required_columns)
        if gen.skip_decision(row, buf.skipped_in(task.row_index)):
            self._skip_cell(gen, buf, task.row_index)
            self._rows_finished(buf.complete((task.row_index,), self._width))
            return _NO_FAILURES
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
        self._store(gen, buf, task.row_index, value)
        self._rows_finished(buf.complete((task.row_index,), self._width))
        return _NO_FAILURES

    @property
    def _width(self) -> int:
        return len(self.generators)

    def _rows_finished(self, count: int) -> None:
        if count and self._on_rows_finished is not None:
            self._on_rows_finished(count)

    async def _run_batch(
        self, gen: ColumnGenerator, buf: RowGroupBuffer, task: TaskLike
    ) -> Mapping[int, str]:
        live = buf.live_rows()
        if buf.skipped or gen.has_skip_condition:
            run = [i for i in live if not self._skips_in_batch(gen, buf, i)]
        else:  # nothing skipped in this row group and no condition: every live row runs
            run = live
        batch = buf.batch_input(gen.required_columns, self.seed, run)
        facade = self._facades[task.column]
        if facade is not None:
            facade = facade.bind(CallTag(task.column, task.row_group, buf.offset))
        ctx = CellContext(self.seed, task.row_group, buf.offset, facade)
        values = await gen.agenerate_batch(batch, ctx)
        if len(values) != len(run):
            raise AssertionError(
                f"{task.column}: batch generator returned {len(values)} values for {len(run)} rows"
            )
        failed: dict[int, str] = {}
        column = buf.column(gen.name)
        for i, v in zip(run, values, strict=True):
            if isinstance(v, RowFailure):
                failed[i] = v.reason
                buf.note_failure(i, task.column, v.reason, v.message)
            elif isinstance(v, CellOutput):
                self._store(gen, buf, i, v)
            else:
                column[i] = v
        self._rows_finished(buf.complete((i for i in live if i not in failed), self._width))
        return failed

    def _skips_in_batch(self, gen: ColumnGenerator, buf: RowGroupBuffer, i: int) -> bool:
        skipped = buf.skipped_in(i)
        if not skipped and not gen.has_skip_condition:
            return False
        if gen.skip_decision(buf.row(i, gen.required_columns), skipped):
            self._skip_cell(gen, buf, i)
            return True
        return False

    @staticmethod
    def _skip_cell(gen: ColumnGenerator, buf: RowGroupBuffer, i: int) -> None:
        buf.mark_skipped(i, (gen.name, *gen.side_effect_columns))
        buf.set(gen.name, i, gen.skip_value)
        for extra in gen.side_effect_columns:
            buf.set(extra, i, None)

    @staticmethod
    def _store(gen: ColumnGenerator, buf: RowGroupBuffer, i: int, value: Any) -> None:
        if isinstance(value, CellOutput):
            extras = value.extras
            unknown = set(extras) - set(gen.side_effect_columns)
            if unknown:
                raise NonRetryableTaskError(
                    "undeclared_side_effect",
                    f"column {gen.name!r} returned undeclared columns {sorted(unknown)}",
                )
            for extra in gen.side_effect_columns:
                buf.set(extra, i, extras.get(extra))
            value = value.value
        buf.set(gen.name, i, value)

    def drop_row(self, row_group: int, row_index: int, reason: str) -> None:
        """Forget a row: later whole-row-group tasks skip it and it is not written."""
        buf = self._buffers[row_group]
        buf.drop(row_index, reason)
        self._rows_finished(buf.finish((row_index,)))

    async def checkpoint_row_group(self, row_group: int, dropped: Mapping[int, str]) -> int:
        """Write a finished row group (without its dropped rows); return rows written."""
        buf = self._buffers.pop(row_group)
        for row, reason in dropped.items():
            buf.drop(row, reason)
        self._rows_finished(buf.finish(range(buf.size)))
        live = buf.live_rows()
        values = {c: [buf.column(c)[i] for i in live] for c in self.output_columns}
        reasons = Counter(buf.dropped.values())
        usage = self._usage.take(row_group) if self._usage is not None else UsageTotals()
        self.kept_usage.merge(usage)
        errors = _error_samples(buf)
        outputs = self._processor_outputs(buf, live)
        if self.storage is not None:
            table = encode_table(self.output_columns, values, self._types)
            if buf.dropped and self._file_writers:  # before the part: no kept file is lost
                await asyncio.to_thread(self._discard_files, buf)
            if self._unwritten_file_writers:
                await asyncio.to_thread(self._discard_unwritten_files, buf, live, outputs)
            await asyncio.to_thread(
                self._write, row_group, table, reasons, usage, errors[:MAX_ERROR_SAMPLES], outputs
            )
        else:
            self.kept[row_group] = values
            self.kept_errors[row_group] = errors
            for name, rows in outputs.items():
                self.kept_processor_rows.setdefault(name, {})[row_group] = rows
        self.error_samples.extend(errors[: MAX_ERROR_SAMPLES - len(self.error_samples)])
        self.stats.row_groups += 1
        self.stats.rows_written += len(live)
        self.stats.dropped.update(reasons)
        if self._on_checkpoint is not None:
            self._on_checkpoint(row_group, len(live))
        return len(live)

    def _processor_outputs(
        self, buf: RowGroupBuffer, live: Sequence[int]
    ) -> dict[str, list[dict[str, Any]]]:
        """Each processor's output rows for a finished row group (every column is visible)."""
        if not self.processors:
            return {}
        rows = [{c: values[i] for c, values in buf.values.items()} for i in live]
        out: dict[str, list[dict[str, Any]]] = {}
        for proc in self.processors:
            produced = proc.transform(rows)
            if produced is not None:
                out[proc.name] = produced
        return out

    def _write(
        self,
        row_group: int,
        table: Any,
        reasons: Mapping[str, int],
        usage: UsageTotals,
        errors: list[ErrorSample],
        outputs: Mapping[str, list[dict[str, Any]]],
    ) -> None:
        assert self.storage is not None
        for name, rows in outputs.items():  # before the part the manifest records
            columns = list(dict.fromkeys(k for r in rows for k in r))
            extra = encode_table(columns, {c: [r.get(c) for r in rows] for c in columns})
            self.storage.write_processor_part(name, row_group, extra)
        self.storage.write_row_group(row_group, table, reasons, usage, errors)

    def _discard_files(self, buf: RowGroupBuffer) -> None:
        """Remove the files of the dropped rows' values (image columns)."""
        for gen in self._file_writers:
            gen.discard_files([buf.column(gen.name)[i] for i in buf.dropped])

    def _discard_unwritten_files(
        self, buf: RowGroupBuffer, live: Sequence[int], outputs: Mapping[str, Any]
    ) -> None:
        """Remove the files of columns the dataset does not keep, once every column of the
        row group is done; a file a processor's output names is kept with that output."""
        named = json.dumps(outputs, default=str) if outputs else ""
        for gen in self._unwritten_file_writers:
            values = [buf.column(gen.name)[i] for i in live]
            gen.discard_files([v for v in values if not (isinstance(v, str) and v in named)])

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


def _shape_of(gen: ColumnGenerator) -> Any:
    """The declared output shape of a generator's column (None when unknown or broken)."""
    try:
        return gen.output_shape()
    except Exception:  # a plugin's shape must not break writing
        return None
