"""`@custom_column_generator`: declare a custom function's inputs, extra outputs and models
(Data Designer's decorator shape)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def custom_column_generator(
    required_columns: list[str] | None = None,
    side_effect_columns: list[str] | None = None,
    model_aliases: list[str] | None = None,
) -> Callable[[F], F]:
    """Attach `custom_column_metadata` to a generator function; a `custom` column using it
    takes these lists where its own config leaves them empty. The function is returned
    unchanged (sync or async)."""

    def decorate(fn: F) -> F:
        fn.custom_column_metadata = {  # type: ignore[attr-defined]
            "required_columns": list(required_columns or []),
            "side_effect_columns": list(side_effect_columns or []),
            "model_aliases": list(model_aliases or []),
        }
        return fn

    return decorate
