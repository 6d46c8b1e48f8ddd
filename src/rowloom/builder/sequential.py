"""The sequential engine: one cell at a time in dependency order. The correctness oracle.

It drives the same `GenerationHost` as the async engine, so for deterministic generators both
produce identical datasets.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rowloom.builder.host import GenerationHost
from rowloom.errors import NonRetryableTaskError, RetryableTaskError, RunAbortedError
from rowloom.scheduling.task_model import Task


@dataclass(slots=True)
class EngineOutcome:
    """What an engine did: finished row groups, unfinished ones, and why it stopped."""

    completed_row_groups: list[int] = field(default_factory=list)
    incomplete_row_groups: list[int] = field(default_factory=list)
    dropped_rows: Counter[str] = field(default_factory=Counter)
    tasks_run: int = 0
    stop_reason: str | None = None


class ErrorRateBreaker:
    """Trips when at least `threshold` of the last `window` task outcomes were failures."""

    def __init__(self, threshold: float, window: int) -> None:
        self.threshold = threshold
        self.window = window
        self._recent: deque[bool] = deque(maxlen=window)
        self._failures = 0
        self.last_error: str | None = None

    def record(self, failed: bool, error: str | None = None) -> bool:
        """Record one outcome; True when the breaker trips."""
        if len(self._recent) == self.window and self._recent[0]:
            self._failures -= 1
        self._recent.append(failed)
        if failed:
            self._failures += 1
            self.last_error = error
        return len(self._recent) >= self.window and self._failures >= self.threshold * self.window


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

    async def run(self, row_groups: Sequence[int]) -> EngineOutcome:
        outcome = EngineOutcome()
        pending = list(row_groups)
        while pending:
            rg = pending.pop(0)
            try:
                dropped = await self._run_row_group(rg, outcome)
            except BaseException:
                self.host.discard_row_group(rg)
                outcome.incomplete_row_groups.extend([rg, *pending])
                raise
            if dropped is None:
                outcome.incomplete_row_groups.extend([rg, *pending])
                outcome.stop_reason = (
                    f"error-rate breaker tripped (last error: {self.breaker.last_error})"
                )
                self.host.discard_row_group(rg)
                raise RunAbortedError(outcome.stop_reason)
            await self.host.checkpoint_row_group(rg, dropped)
            outcome.dropped_rows.update(dropped.values())
            outcome.completed_row_groups.append(rg)
        return outcome

    async def _run_row_group(self, rg: int, outcome: EngineOutcome) -> dict[int, str] | None:
        size = self.host.open_row_group(rg)
        dropped: dict[int, str] = {}
        for column in self.column_order:
            gen = self.host.generators[column]
            if gen.task_type == "batch":
                reason = await self._attempt(Task(column, rg, None, "batch"), outcome)
                if reason == "__tripped__":
                    return None
                if reason is not None:
                    return dict.fromkeys(range(size), reason)
                continue
            for row in range(size):
                if row in dropped:
                    continue
                reason = await self._attempt(Task(column, rg, row, "cell"), outcome)
                if reason == "__tripped__":
                    return None
                if reason is not None:
                    dropped[row] = reason
        return dropped

    async def _attempt(self, task: Task, outcome: EngineOutcome) -> str | None:
        """Run a task with salvage retries; return a drop reason, None, or "__tripped__"."""
        rounds = 0
        while True:
            outcome.tasks_run += 1
            try:
                await self.host.run_task(task)
            except RetryableTaskError as exc:
                tripped = self.breaker.record(True, exc.reason)
                if tripped:
                    return "__tripped__"
                if rounds < self.max_salvage_rounds:
                    rounds += 1
                    continue
                return exc.reason
            except NonRetryableTaskError as exc:
                return "__tripped__" if self.breaker.record(True, exc.reason) else exc.reason
            self.breaker.record(False)
            if self._on_task_done is not None:
                self._on_task_done()
            return None
