"""`ErrorRateBreaker`: stops a run that is failing everywhere."""

from __future__ import annotations

from collections import deque


class ErrorRateBreaker:
    """Trips when at least `threshold` of the last `window` task outcomes were failures.

    It keeps the last failure's error class, message and provider so the stop names what
    went wrong and where.
    """

    __slots__ = (
        "_failures",
        "_recent",
        "last_error",
        "last_message",
        "last_provider",
        "threshold",
        "window",
    )

    def __init__(self, threshold: float, window: int) -> None:
        self.threshold = threshold
        self.window = window
        self._recent: deque[bool] = deque(maxlen=window)
        self._failures = 0
        self.last_error: str | None = None
        self.last_message: str | None = None
        self.last_provider: str | None = None

    def record(
        self,
        failed: bool,
        error: str | None = None,
        message: str | None = None,
        provider: str | None = None,
    ) -> bool:
        """Record one task outcome; True when the breaker (now) trips."""
        if len(self._recent) == self.window and self._recent[0]:
            self._failures -= 1
        self._recent.append(failed)
        if failed:
            self._failures += 1
            self.last_error = error
            self.last_message = message
            self.last_provider = provider
        return self.tripped

    @property
    def tripped(self) -> bool:
        """True while the recent failure fraction is at or above the threshold."""
        return len(self._recent) >= self.window and self._failures >= self.threshold * self.window

    def describe(self) -> str:
        """A one-line reason for stopping: the failure rate, the last failing provider (when
        one was involved) and the last error class with its message."""
        where = f" on provider {self.last_provider!r}" if self.last_provider else ""
        message = self.last_message
        detail = f" ({message})" if message and message != self.last_error else ""
        return (
            f"error-rate breaker tripped{where}: {self._failures} of the last "
            f"{len(self._recent)} tasks failed; last error class {self.last_error}{detail}"
        )
