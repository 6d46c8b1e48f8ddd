"""The sequential engine: one cell at a time in dependency order. The correctness oracle.

It drives the same `GenerationHost` as the async engine and applies the same error classes
(retry a retryable failure up to `max_salvage_rounds` times, drop the row or row group on a
non-retryable one, stop on a programming error or when the error-rate breaker trips), so for
deterministic generators both engines produce identical datasets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rowloom.builder.host import GenerationHost
from rowloom.errors import NonRetryableTaskError, RetryableTaskError, RunAbortedError
from rowloom.scheduler import SchedulerOutcome
from rowloom.scheduling.breaker import ErrorRateBreaker
from rowloom.scheduling.task_model import Task


class SequentialEngine:
    """Runs row groups one after another, columns in topological order, rows in order."""

    def __init__(
        self,
        host: GenerationHost,
        column_order: Sequence[str],
        *,
        max_salvage_rounds: int,
        breaker: ErrorRateBreaker,
        on_task_done: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self.column_order = list(column_order)
        self.max_salvage_rounds = max_salvage_rounds
        self.breaker = breaker
        self._on_task_done = on_task_done
        self.outcome = SchedulerOutcome()

    async def run(self, row_groups: Sequence[int]) -> SchedulerOutcome:
        """Generate and checkpoint each row group in order."""
        outcome = self.outcome
        pending = list(row_groups)
        while pending:
            rg = pending[0]
            try:
                dropped = await self._run_row_group(rg)
            except BaseException as exc:
                self.host.discard_row_group(rg)
                outcome.incomplete_row_groups.extend(pending)
                outcome.stop_reason = (
                    str(exc) if isinstance(exc, RunAbortedError) else (outcome.stop_reason)
                )
                raise
            await self.host.checkpoint_row_group(rg, dropped)
            pending.pop(0)
            outcome.dropped_rows.update(dropped.values())
            outcome.completed_row_groups.append(rg)
        return outcome

    async def _run_row_group(self, rg: int) -> dict[int, str]:
        size = self.host.open_row_group(rg)
        dropped: dict[int, str] = {}

        def drop(row: int, reason: str) -> None:
            dropped.setdefault(row, reason)
            self.host.drop_row(rg, row, reason)

        for column in self.column_order:
            if self.host.generators[column].task_type == "batch":
                reason, failed_rows = await self._attempt(Task(column, rg, None, "batch"))
                if reason is not None:
                    return {r: dropped.get(r, reason) for r in range(size)}
                for row, row_reason in failed_rows.items():
                    self._record_failure(NonRetryableTaskError(row_reason))
                    drop(row, row_reason)
                continue
            for row in range(size):
                if row not in dropped:
                    reason, _ = await self._attempt(Task(column, rg, row, "cell"))
                    if reason is not None:
                        drop(row, reason)
        return dropped

    async def _attempt(self, task: Task) -> tuple[str | None, Mapping[int, str]]:
        """Run a task, retrying retryable failures; return (a drop reason or None, the rows a
        whole-row-group task could not produce)."""
        rounds = 0
        while True:
            self.outcome.tasks_run += 1
            try:
                failed_rows = await self.host.run_task(task)
            except RetryableTaskError as exc:
                self._record_failure(exc)
                if rounds < self.max_salvage_rounds:
                    rounds += 1
                    continue
                return exc.reason, {}
            except NonRetryableTaskError as exc:
                self._record_failure(exc)
                return exc.reason, {}
            except RunAbortedError as exc:  # e.g. a provider found unusable: stop
                self.outcome.stop_reason = str(exc)
                raise
            except Exception as exc:
                row = "the whole row group" if task.row_index is None else f"row {task.row_index}"
                exc.add_note(
                    f"rowloom: while generating column {task.column!r}, row group "
                    f"{task.row_group}, {row}"
                )
                raise
            self.breaker.record(False)
            if self._on_task_done is not None:
                self._on_task_done()
            return None, failed_rows

    def _record_failure(self, exc: RetryableTaskError | NonRetryableTaskError) -> None:
        if self.breaker.record(True, exc.reason, str(exc), exc.provider):
            self.outcome.stop_reason = self.breaker.describe()
            raise RunAbortedError(self.outcome.stop_reason)
