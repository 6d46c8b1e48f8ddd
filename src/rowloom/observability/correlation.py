"""Runtime correlation: the primitives that tie scheduler and request events to one task.

`RuntimeCorrelationProvider` keeps the current `RuntimeCorrelation` in a context variable, so
child asyncio tasks inherit it. Code that crosses threads must pass it explicitly.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_CURRENT: contextvars.ContextVar[RuntimeCorrelation | None] = contextvars.ContextVar(
    "rowloom_runtime_correlation", default=None
)


class CorrelationJson(dict[str, Any]):
    """`RuntimeCorrelation.as_json()`: a plain JSON object that also remembers its correlation
    (`correlation`), so event logs encode one correlation once however it reached them."""

    __slots__ = ("correlation", "encoded")

    def __init__(self, correlation: RuntimeCorrelation) -> None:
        super().__init__()
        self.correlation = correlation
        self.encoded: Any = None


@dataclass(frozen=True, slots=True)
class RuntimeCorrelation:
    """Who is running: primitives only, safe to put in any event (no row values)."""

    run_id: str
    row_group: int | None = None
    task_column: str | None = None
    task_type: str | None = None
    scheduling_group_kind: str | None = None
    scheduling_group_identity_hash: str | None = None
    task_execution_id: str | None = None
    _json: CorrelationJson = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_json", CorrelationJson(self))

    def as_json(self) -> CorrelationJson:
        """The correlation as a JSON object (built once, then shared read-only)."""
        if not self._json:
            self._json.update(
                run_id=self.run_id,
                row_group=self.row_group,
                task_column=self.task_column,
                task_type=self.task_type,
                scheduling_group_kind=self.scheduling_group_kind,
                scheduling_group_identity_hash=self.scheduling_group_identity_hash,
                task_execution_id=self.task_execution_id,
            )
        return self._json


def current_correlation() -> RuntimeCorrelation | None:
    """The correlation of the running context, if any."""
    return _CURRENT.get()


class RuntimeCorrelationProvider:
    """Sets, resets and reads the current correlation through a context variable."""

    __slots__ = ()

    def current(self) -> RuntimeCorrelation | None:
        """The correlation of the running context, if any."""
        return _CURRENT.get()

    def set(self, correlation: RuntimeCorrelation | None) -> contextvars.Token[Any]:
        """Make `correlation` current; keep the token to `reset` it."""
        return _CURRENT.set(correlation)

    def reset(self, token: contextvars.Token[Any]) -> None:
        """Restore the correlation that was current before `set`."""
        _CURRENT.reset(token)

    @contextmanager
    def bound(self, correlation: RuntimeCorrelation | None) -> Iterator[None]:
        """Make `correlation` current for the duration of a `with` block."""
        token = _CURRENT.set(correlation)
        try:
            yield
        finally:
            _CURRENT.reset(token)
