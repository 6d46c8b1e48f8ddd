"""`ErrorRateBreaker`: stops a run that is failing everywhere."""

from __future__ import annotations

from collections import deque


class ErrorRateBreaker:
    """Trips when at least `threshold` of the last `window` task outcomes were failures.

    It keeps the last failure's reason and message so the stop names what went wrong.
    """

    __slots__ = ("_failures", "_recent", "last_error", "last_message", "threshold", "window")

    def __init__(self, threshold: float, window: int) -> None:
        self.threshold = threshold
        self.window = window
        self._recent: deque[bool] = deque(maxlen=window)
        self._failures = 0
        self.last_error: str | None = None
        self.last_message: str | None = None

    def record(self, failed: bool, error: str | None = None, message: str | None = None) -> bool:
        """Record one task outcome; True when the breaker (now) trips."""
        if len(self._recent) == self.window and self._recent[0]:
            self._failures -= 1
        self._recent.append(failed)
        if failed:
            self._failures += 1
            self.last_error = error
            self.last_message = message
        return self.tripped

    @property
    def tripped(self) -> bool:
        """True while the recent failure fraction is at or above the threshold."""
        return len(self._recent) >= self.window and self._failures >= self.threshold * self.window

    def describe(self) -> str:
        """A one-line reason for stopping."""
        detail = (
            f"{self.last_error}: {self.last_message}"
            if self.last_message
            else (str(self.last_error))
        )
        return (
            f"error-rate breaker tripped: {self._failures} of the last {len(self._recent)} "
            f"tasks failed; last error {detail}"
        )
