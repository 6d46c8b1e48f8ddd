"""Runtime errors a task or run can end with, and how the scheduler treats each class.

- `RetryableTaskError`: transient (provider down for a while, retry budget spent); the task is
  deferred and re-dispatched through the frontier in a later salvage round.
- `NonRetryableTaskError`: this cell cannot be produced (bad request, invalid structured output
  after corrections); the row (or, for whole-column tasks, the row group) is dropped with a reason.
- Any other exception from a generator is a programming error: the run stops with the original
  traceback and the row that caused it.
"""

from __future__ import annotations


class RowloomError(Exception):
    """Base of rowloom's runtime errors."""


class TaskError(RowloomError):
    """A classified task failure; `reason` is a short stable code for summaries, `provider`
    the provider that failed (None when no provider was involved)."""

    def __init__(self, reason: str, message: str = "", *, provider: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.provider = provider


class RetryableTaskError(TaskError):
    """Transient failure: try the task again later."""


class NonRetryableTaskError(TaskError):
    """Permanent failure for this cell: drop the row."""


class RunAbortedError(RowloomError):
    """The run stopped early (breaker, programming error, cancellation); finished work is kept."""


class ProviderUnavailableError(RunAbortedError):
    """A provider or model cannot be used at all (unreachable, key refused, wrong URL, every
    request refused): the run stops. The message is one line naming provider, URL, model and
    cause."""

    def __init__(self, message: str, *, provider: str, endpoint: str, model: str, cause: str):
        super().__init__(message)
        self.provider = provider
        self.endpoint = endpoint
        self.model = model
        self.cause = cause

    def again(self) -> ProviderUnavailableError:
        """A fresh copy to raise in another task (one instance, one traceback)."""
        return ProviderUnavailableError(
            str(self),
            provider=self.provider,
            endpoint=self.endpoint,
            model=self.model,
            cause=self.cause,
        )


class RunFolderError(RowloomError):
    """A run folder cannot be used: it holds a run and no flag says what to do with it, it
    cannot be created or written, or it is not a run folder. Raised before any model call."""


class ResumeError(RunFolderError):
    """A run folder cannot be resumed with this config."""


class EngineUnavailableError(RowloomError):
    """The engine asked for cannot run here (an optional extra is missing, a cluster is out of
    reach); the message says what to do."""
