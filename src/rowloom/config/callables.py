"""User functions named in configs: a callable from Python, or `"package.module:function"`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainSerializer, WithJsonSchema

from rowloom.config.paths import import_callable


def resolve_callable(value: Any, base_dir: Path | None = None) -> Any:
    """A callable as given, or the one an import path `"package.module:attr.path"` names (a
    module beside the config file, in `base_dir`, first)."""
    if callable(value):
        return value
    if isinstance(value, str) and ":" in value:
        try:
            obj = import_callable(value, base_dir)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import {value!r}: {exc}") from None
        if not callable(obj):
            raise ValueError(f"{value!r} is not callable")
        return obj
    raise ValueError("expected a callable or an import path 'package.module:function'")


def callable_path(fn: Callable[..., Any]) -> str:
    """The import path a callable is written back as."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"{fn!r} has no importable path; define it at module level")
    return f"{module}:{qualname}"


CustomFunction = Annotated[
    Callable[..., Any],
    PlainSerializer(callable_path, return_type=str),
    WithJsonSchema({"type": "string"}),
]
"""A config field holding a user function; serialised as its import path."""
