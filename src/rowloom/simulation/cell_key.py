"""The identity of the cell a model request serves, as a context variable.

The run binds it around each cell's generation; the embedded simulated provider mixes it into
its answers, so rows with the same prompt get different (still deterministic) answers, as a
sampling model gives. Over HTTP it travels in the `X-Rowloom-Cell` header, sent only to
loopback endpoints (`rowloom mock-server`, a local server); remote providers never see it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["CELL_KEY_HEADER", "bound_cell_key", "current_cell_key"]

CELL_KEY_HEADER = "X-Rowloom-Cell"

_CELL_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "rowloom_cell_key", default=None
)


def current_cell_key() -> str | None:
    """The key of the cell being generated in this context, if any."""
    return _CELL_KEY.get()


@contextmanager
def bound_cell_key(column: str, global_row: int) -> Iterator[None]:
    """Make (column, global row) the current cell for the duration of a `with` block."""
    token = _CELL_KEY.set(f"{column}:{global_row}")
    try:
        yield
    finally:
        _CELL_KEY.reset(token)
