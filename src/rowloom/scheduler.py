"""`AsyncTaskScheduler`: the runtime coordinator.

It owns no ordering, ledger, retry-of-requests or AIMD logic: it asks the `CompletionTracker`
what is ready, hands it to the `FairTaskQueue`, and runs the dispatch critical section (select,
acquire, commit, spawn: no `await` in between) against the `TaskAdmissionController`. Workers
run tasks through a `TaskHost` and release their task lease exactly once in a `finally`. The
loop sleeps on one event, woken by enqueue, lease release, a policy deadline, a checkpoint or
shutdown; it never polls.

Error classes: `RetryableTaskError` defers the task to a salvage round of its row group (it
re-enters through the tracker's frontier); `NonRetryableTaskError` drops the row (a cell task)
or the row group (a batch task); any other exception is a programming error: the run stops and
the original exception propagates (with a note naming the task). An `ErrorRateBreaker` stops
a run that fails everywhere. On cancellation the scheduler stops admitting, cancels in-flight
workers, waits for their releases, and keeps every row group already checkpointed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rowloom.clock import Clock, TimerHandle
from rowloom.errors import NonRetryableTaskError, RetryableTaskError, RunAbortedError
from rowloom.observability.correlation import RuntimeCorrelation, RuntimeCorrelationProvider
from rowloom.observability.events import SchedulerEventEmitter
from rowloom.scheduling.admission_view import TaskAdmissionLease
from rowloom.scheduling.breaker import ErrorRateBreaker
from rowloom.scheduling.completion import CompletionTracker
from rowloom.scheduling.queue import FairTaskQueue
from rowloom.scheduling.resources import SUBMISSION, SchedulableTask
from rowloom.scheduling.task_admission import TaskAdmissionController
from rowloom.scheduling.task_model import Task


class TaskHost(Protocol):
    """What the scheduler needs from the dataset builder."""

    def open_row_group(self, row_group: int) -> int: ...

    async def run_task(self, task: Task) -> Mapping[int, str] | None:
        """Run a task; return the rows (index -> reason) a whole-row-group task could not
        produce, which are dropped alone."""
        ...

    async def checkpoint_row_group(self, row_group: int, dropped: Mapping[int, str]) -> int: ...

    def drop_row(self, row_group: int, row_index: int, reason: str) -> None:
        """Forget a row: later whole-row-group tasks skip it; it is not written."""
        ...

    def discard_row_group(self, row_group: int) -> None: ...


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Row-group window, salvage bound and breaker settings of one run."""

    max_concurrent_row_groups: int = 3
    max_salvage_rounds: int = 2
    error_rate_threshold: float = 0.5
    error_rate_window: int = 200


@dataclass(slots=True)
class SchedulerOutcome:
    """What a run did: finished and unfinished row groups, drops, and why it stopped."""

    completed_row_groups: list[int] = field(default_factory=list)
    incomplete_row_groups: list[int] = field(default_factory=list)
    dropped_rows: Counter[str] = field(default_factory=Counter)
    tasks_run: int = 0
    stop_reason: str | None = None
    max_row_groups_in_flight: int = 0
    max_queued_by_group: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Running:
    task: SchedulableTask
    lease: TaskAdmissionLease
    execution_id: str
    correlation: RuntimeCorrelation


class AsyncTaskScheduler:
    """Drives one run's row groups to completion (see the module docstring)."""

    def __init__(
        self,
        *,
        host: TaskHost,
        tracker: CompletionTracker,
        queue: FairTaskQueue,
        admission: TaskAdmissionController,
        events: SchedulerEventEmitter,
        correlation: RuntimeCorrelationProvider,
        clock: Clock,
        config: SchedulerConfig,
        run_id: str,
        on_task_done: Callable[[], None] | None = None,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]] | None = None,
    ) -> None:
        self._host = host
        self._tracker = tracker
        self._queue = queue
        self._admission = admission
        self._events = events
        self._correlation = correlation
        self._clock = clock
        self._config = config
        self._run_id = run_id
        self._on_task_done = on_task_done
        self._spawn = spawn or asyncio.create_task
        self._breaker = ErrorRateBreaker(config.error_rate_threshold, config.error_rate_window)
        self._wake = asyncio.Event()
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self._pending_groups: deque[int] = deque()
        self._open_groups: set[int] = set()
        self._rows: dict[int, int] = {}
        self._checkpointing: dict[int, asyncio.Task[int]] = {}
        self._active: Counter[int] = Counter()  # queued + running tasks per row group
        self._deferred: defaultdict[int, list[Task]] = defaultdict(list)
        self._salvage_rounds: Counter[str] = Counter()
        self._running: dict[str, _Running] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._execution_ids = itertools.count(1)
        self._base_correlation: dict[tuple[int, str], RuntimeCorrelation] = {}
        self._fatal: BaseException | None = None
        self._idle_reason: str | None = None
        self._rg_blocked = False
        self._fed = False
        self.outcome = SchedulerOutcome()

    # --- public --------------------------------------------------------------------------------

    async def run(self, row_groups: Sequence[int], *, fed: bool = False) -> SchedulerOutcome:
        """Generate `row_groups`; returns when all are checkpointed (or raises).

        `fed`: more row groups come through `feed` while it runs (a Ray worker keeps one
        engine across its batches); it returns once `close_feed` was called and every row
        group it was given is checkpointed.
        """
        self._pending_groups.extend(row_groups)
        self._fed = fed
        emit = self._events.emit
        emit(
            "scheduler_job_started",
            diagnostics={
                "row_groups": len(row_groups),
                "max_concurrent_row_groups": self._config.max_concurrent_row_groups,
            },
        )
        emit(
            "row_group_admission_target_changed",
            diagnostics={"target": self._config.max_concurrent_row_groups},
        )
        try:
            while self._has_work():
                self._wake.clear()
                if self._fatal is not None:
                    raise self._fatal
                self._admit_row_groups()
                self._pump_frontier()
                self._dispatch()
                self._emit_advisory_skips()
                if self._fatal is not None:
                    raise self._fatal
                if not self._has_work():
                    break
                await self._wake.wait()
        except BaseException as exc:
            await self._stop(exc)
            raise
        finally:
            self._cancel_timer()
            emit(
                "scheduler_job_completed",
                reason=self.outcome.stop_reason or "completed",
                diagnostics=self._health(),
            )
        return self.outcome

    def feed(self, row_groups: Sequence[int]) -> None:
        """Queue more row groups for a `run(..., fed=True)` (admitted after those queued)."""
        self._pending_groups.extend(row_groups)
        self._wake.set()

    def close_feed(self) -> None:
        """No more row groups come: a fed `run` returns when those it has are checkpointed."""
        self._fed = False
        self._wake.set()

    def _has_work(self) -> bool:
        return bool(self._pending_groups or self._open_groups or self._checkpointing or self._fed)

    @property
    def breaker(self) -> ErrorRateBreaker:
        return self._breaker

    # --- row groups ----------------------------------------------------------------------------

    def _admit_row_groups(self) -> None:
        limit = self._config.max_concurrent_row_groups
        while self._pending_groups and len(self._open_groups) + len(self._checkpointing) < limit:
            rg = self._pending_groups.popleft()
            num_rows = self._host.open_row_group(rg)
            self._rows[rg] = num_rows
            self._open_groups.add(rg)
            ready = self._tracker.admit_row_group(rg, num_rows)
            self._rg_blocked = False
            self._events.emit(
                "row_group_admitted",
                correlation=self._corr(rg, None),
                diagnostics={"row_group": rg, "rows": num_rows},
            )
            self._emit_ready(ready)
        in_flight = len(self._open_groups) + len(self._checkpointing)
        self.outcome.max_row_groups_in_flight = max(
            self.outcome.max_row_groups_in_flight, in_flight
        )
        if self._pending_groups and not self._rg_blocked:
            self._rg_blocked = True
            self._events.emit(
                "row_group_admission_blocked",
                diagnostics={
                    "in_flight": in_flight,
                    "limit": limit,
                    "pending": len(self._pending_groups),
                },
            )

    def _maybe_checkpoint(self, rg: int) -> None:
        if rg not in self._open_groups or not self._tracker.is_row_group_complete(rg):
            return
        if self._active[rg] or self._deferred.get(rg):
            return
        self._open_groups.discard(rg)
        dropped = dict(self._tracker.dropped_rows(rg))
        reason = self._tracker.row_group_drop_reason(rg)
        if reason is not None:
            dropped = {r: dropped.get(r, reason) for r in range(self._rows[rg])}
        self._checkpointing[rg] = asyncio.ensure_future(self._checkpoint(rg, dropped))

    async def _checkpoint(self, rg: int, dropped: Mapping[int, str]) -> int:
        try:
            rows = await self._host.checkpoint_row_group(rg, dropped)
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self._checkpointing.pop(rg, None)
            self._wake.set()
        self._tracker.compact_row_group(rg)
        self._rows.pop(rg, None)
        self._active.pop(rg, None)
        self._deferred.pop(rg, None)
        self.outcome.completed_row_groups.append(rg)
        self.outcome.dropped_rows.update(dropped.values())
        self._events.emit(
            "row_group_checkpointed",
            correlation=self._corr(rg, None),
            diagnostics={"row_group": rg, "rows": rows, "dropped": len(dropped)},
        )
        self._events.emit("scheduler_health_snapshot", diagnostics=self._health())
        return rows

    # --- frontier -> queue ---------------------------------------------------------------------

    def _emit_ready(self, tasks: Sequence[SchedulableTask]) -> None:
        if not self._events.enabled:
            return
        for item in tasks:
            self._events.emit(
                "dependency_ready", correlation=self._corr_of(item), task_id=item.task_id
            )

    def _pump_frontier(self) -> None:
        frontier = self._tracker.ready_frontier()
        if not frontier:
            return
        accepted = self._queue.enqueue(frontier)
        self._tracker.mark_enqueued(accepted)
        if not accepted:
            return
        accepted_set = set(accepted)
        for item in frontier:
            if item.task_id in accepted_set:
                self._active[item.task.row_group] += 1
                if self._events.enabled:
                    self._events.emit(
                        "ready_enqueued", correlation=self._corr_of(item), task_id=item.task_id
                    )
        self._idle_reason = None
        maxima = self.outcome.max_queued_by_group
        for group, n in self._queue.view().queued_by_group.items():
            key = group.as_key_str()
            if n > maxima.get(key, 0):
                maxima[key] = n

    # --- dispatch ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """The dispatch critical section, repeated while work can be admitted (no awaits)."""
        queue, admission, emit = self._queue, self._admission, self._events.emit
        while self._fatal is None:
            selection = queue.select_next(admission.is_eligible)
            if selection is None:
                self._idle()
                return
            item = selection.item
            execution_id = f"te-{next(self._execution_ids)}"
            corr = self._corr_of(item, execution_id)
            decision = admission.try_acquire(item, selection.queue_view)
            if not isinstance(decision, TaskAdmissionLease):
                emit(
                    "admission_denied",
                    correlation=corr,
                    task_id=item.task_id,
                    task_execution_id=execution_id,
                    reason=decision.reason,
                    scheduler_resource_key=SUBMISSION,
                )
                self._wake.set()
                return
            task = queue.commit(selection)
            if task is None:
                result = admission.release(decision)
                emit(
                    "stale_selection",
                    correlation=corr,
                    task_id=item.task_id,
                    task_execution_id=execution_id,
                    task_lease_id=decision.lease_id,
                    reason=result.reason,
                )
                continue
            emit("selected", correlation=corr, task_id=task.task_id, task_execution_id=execution_id)
            emit(
                "task_lease_acquired",
                correlation=corr,
                task_id=task.task_id,
                task_execution_id=execution_id,
                task_lease_id=decision.lease_id,
                scheduler_resource_key=SUBMISSION,
            )
            if not len(queue):
                emit("queue_drained")
            running = _Running(task, decision, execution_id, corr)
            try:
                worker = self._spawn(self._worker(running))
            except BaseException as exc:
                self._release(running)
                emit(
                    "worker_spawn_failed",
                    correlation=corr,
                    task_id=task.task_id,
                    task_execution_id=execution_id,
                    task_lease_id=decision.lease_id,
                    reason=type(exc).__name__,
                )
                self._active[task.task.row_group] -= 1
                self._fail(exc)
                return
            self._running[execution_id] = running
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
            emit(
                "worker_spawned",
                correlation=corr,
                task_id=task.task_id,
                task_execution_id=execution_id,
                task_lease_id=decision.lease_id,
            )

    def _idle(self) -> None:
        queue_view = self._queue.view()
        if queue_view.queued_total == 0:
            if self._idle_reason != "queue_empty":
                self._idle_reason = "queue_empty"
                self._events.emit("queue_empty", diagnostics={"running": len(self._running)})
            return
        summary = self._admission.explain_blocked(queue_view)
        kind = (
            "group_capped"
            if summary.dominant_reasons[:1] == ("group_cap",)
            else ("admission_blocked")
        )
        if self._idle_reason != kind:
            self._idle_reason = kind
            self._events.emit(
                kind,
                reason=",".join(summary.dominant_reasons),
                scheduler_resource_key=SUBMISSION,
                diagnostics={
                    "queued": summary.queued_count,
                    "available_after": summary.available_after,
                    **summary.diagnostics,
                },
            )
        if summary.available_after is not None:
            self._wake_at(summary.available_after)

    def _emit_advisory_skips(self) -> None:
        """One `request_pressure_advisory_skipped` per skip episode the admission recorded."""
        for skip in self._admission.drain_advisory_skips():
            item = skip.item
            self._events.emit(
                "request_pressure_advisory_skipped",
                correlation=self._corr_of(item),
                task_id=item.task_id,
                reason=skip.why,
                scheduler_resource_key=SUBMISSION,
                diagnostics={
                    **skip.diagnostics,
                    "group": item.group.key.as_key_str(),
                    "request_resource": skip.resource,
                    "available_after": skip.available_after,
                },
            )

    def _wake_at(self, when: float) -> None:
        if self._timer_at is not None and self._timer_at <= when:
            return
        self._cancel_timer()
        self._timer_at = when
        self._timer = self._clock.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._wake.set()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    # --- workers -------------------------------------------------------------------------------

    async def _worker(self, running: _Running) -> None:
        task = running.task.task
        token = self._correlation.set(running.correlation)
        error: BaseException | None = None
        failed_rows: Mapping[int, str] | None = None
        try:
            if not self._tracker.is_dropped(task):  # a dropped row's cells are not worth a call
                failed_rows = await self._host.run_task(task)
        except BaseException as exc:
            error = exc
        finally:
            self._correlation.reset(token)
            self._release(running)
            self._finish(running, error, failed_rows)
            self._wake.set()
        if isinstance(error, asyncio.CancelledError):
            raise error

    def _release(self, running: _Running) -> None:
        result = self._admission.release(running.lease)
        self._running.pop(running.execution_id, None)
        emit = self._events.emit
        emit(
            "task_lease_released",
            correlation=running.correlation,
            task_id=running.task.task_id,
            task_execution_id=running.execution_id,
            task_lease_id=running.lease.lease_id,
            scheduler_resource_key=SUBMISSION,
            reason=result.reason,
        )
        if not result.released:
            emit(
                "release_diagnostic",
                correlation=running.correlation,
                task_id=running.task.task_id,
                task_lease_id=running.lease.lease_id,
                reason=result.reason,
                diagnostics=result.diagnostics,
            )

    def _finish(
        self,
        running: _Running,
        error: BaseException | None,
        failed_rows: Mapping[int, str] | None = None,
    ) -> None:
        """Book a finished worker's outcome in the tracker (after its lease is released)."""
        item, task = running.task, running.task.task

        def emit(kind: str, reason: str | None = None, diagnostics: Any = None) -> None:
            self._events.emit(
                kind,
                correlation=running.correlation,
                task_id=item.task_id,
                task_execution_id=running.execution_id,
                reason=reason,
                diagnostics=diagnostics,
            )

        rg = task.row_group
        self._active[rg] -= 1
        self.outcome.tasks_run += 1
        if error is None:
            self._breaker.record(False)
            for row, reason in (failed_rows or {}).items():
                self._on_failure(NonRetryableTaskError(reason))
                emit("non_retryable_dropped", reason=reason, diagnostics={"row": row})
                self._host.drop_row(rg, row, reason)
                self._emit_ready(self._tracker.drop_row(rg, row, reason))
            emit("task_completed", reason="success")
            self._emit_ready(self._tracker.mark_complete(task))
            if self._on_task_done is not None:
                self._on_task_done()
        elif isinstance(error, asyncio.CancelledError):
            emit("cancelled")
            return
        elif isinstance(error, RetryableTaskError):
            self._on_failure(error)
            rounds = self._salvage_rounds[item.task_id]
            if rounds < self._config.max_salvage_rounds:
                self._salvage_rounds[item.task_id] = rounds + 1
                self._deferred[rg].append(task)
                emit(
                    "retry_deferred",
                    reason=error.reason,
                    diagnostics={"salvage_round": rounds + 1},
                )
            else:
                self._drop(task, error.reason, emit)
        elif isinstance(error, NonRetryableTaskError):
            self._on_failure(error)
            self._drop(task, error.reason, emit)
        elif isinstance(error, RunAbortedError):  # e.g. a provider found unusable: stop
            emit("task_completed", reason="run_aborted")
            if self.outcome.stop_reason is None:
                self.outcome.stop_reason = str(error)
            self._fail(error)
            return
        else:
            emit(
                "task_completed",
                reason="programming_error",
                diagnostics={"error": type(error).__name__},
            )
            where = "the whole row group" if task.row_index is None else f"row {task.row_index}"
            error.add_note(
                f"rowloom: while generating column {task.column!r}, row group {rg}, {where}"
            )
            self._fail(error)
            return
        if self._active[rg] == 0 and self._deferred.get(rg):
            self._salvage(rg)
        self._maybe_checkpoint(rg)

    def _on_failure(self, error: RetryableTaskError | NonRetryableTaskError) -> None:
        if self._breaker.record(True, error.reason, str(error), error.provider) and (
            self._fatal is None
        ):
            self.outcome.stop_reason = self._breaker.describe()
            self._fail(RunAbortedError(self.outcome.stop_reason))

    def _drop(self, task: Task, reason: str, emit: Callable[..., None]) -> None:
        emit("non_retryable_dropped", reason=reason)
        if task.row_index is None:
            self._tracker.drop_row_group(task.row_group, reason)
        else:
            self._host.drop_row(task.row_group, task.row_index, reason)
            self._emit_ready(self._tracker.drop_row(task.row_group, task.row_index, reason))

    def _salvage(self, rg: int) -> None:
        """Re-dispatch a row group's deferred tasks once nothing else of it is in flight."""
        for task in self._deferred.pop(rg, []):
            if self._tracker.requeue(task):
                self._events.emit(
                    "salvage_redispatched",
                    correlation=self._corr(rg, task),
                    diagnostics={"column": task.column},
                )

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
            if self.outcome.stop_reason is None:
                self.outcome.stop_reason = f"{type(exc).__name__}: {exc}"
        self._wake.set()

    async def _stop(self, exc: BaseException) -> None:
        """Stop admitting, cancel in-flight work, wait for every lease to come back."""
        self._admission.shutdown()
        if isinstance(exc, asyncio.CancelledError) and self.outcome.stop_reason is None:
            self.outcome.stop_reason = "cancelled"
        for worker in list(self._workers):
            worker.cancel()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
        # A worker cancelled before its first step never ran its `finally`: release for it.
        for running in list(self._running.values()):
            self._release(running)
            self._finish(running, asyncio.CancelledError())
        if self._checkpointing:  # a row group being written is finished, not lost
            await asyncio.gather(*self._checkpointing.values(), return_exceptions=True)
        for rg in sorted(self._open_groups):
            self._host.discard_row_group(rg)
        self.outcome.incomplete_row_groups = sorted({*self._open_groups, *self._pending_groups})

    # --- correlation and health ----------------------------------------------------------------

    def _corr(self, rg: int, task: Task | None) -> RuntimeCorrelation:
        column = task.column if task is not None else ""
        key = (rg, column)
        corr = self._base_correlation.get(key)
        if corr is None:
            corr = RuntimeCorrelation(
                self._run_id, rg, column or None, task.task_type if task is not None else None
            )
            if len(self._base_correlation) > 4096:
                self._base_correlation.clear()
            self._base_correlation[key] = corr
        return corr

    def _corr_of(
        self, item: SchedulableTask, execution_id: str | None = None
    ) -> RuntimeCorrelation:
        task = item.task
        if execution_id is None:
            return self._corr(task.row_group, task)
        key = item.group.key
        return RuntimeCorrelation(
            self._run_id,
            task.row_group,
            task.column,
            task.task_type,
            key.kind,
            key.identity_hash,
            execution_id,
        )

    def _health(self) -> dict[str, Any]:
        view = self._admission.view()
        return {
            "open_row_groups": len(self._open_groups),
            "pending_row_groups": len(self._pending_groups),
            "queued": len(self._queue),
            "running": len(self._running),
            "leased": dict(view.leased),
            "tasks_run": self.outcome.tasks_run,
        }
