"""Which fields differ between two dataset configs (plain `to_dict()` dumps): dotted paths
such as `columns.draft.prompt`, `models.writer.inference_parameters.temperature` or `seed`.
Lists of named entries (columns, models, providers) are matched by name, so reordering is
not a difference but an added or removed entry is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_NAME_KEYS = ("name", "alias")


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every dotted path whose value differs (added and removed entries included), sorted."""
    out: list[str] = []
    _diff(old, new, "", out)
    return sorted(out)


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted({*old, *new}, key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{sub} (added)")
            elif key not in new:
                out.append(f"{sub} (removed)")
            else:
                _diff(old[key], new[key], sub, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        old_named, new_named = _by_name(old), _by_name(new)
        if old_named is not None and new_named is not None:
            _diff(old_named, new_named, path, out)
            return
    if old != new:
        out.append(path or "(the whole config)")


def _by_name(items: list[Any]) -> dict[str, Any] | None:
    """`{name: item}` when every item is a mapping with a distinct name (or alias)."""
    named: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, Mapping):
            return None
        key = next((item[k] for k in _NAME_KEYS if isinstance(item.get(k), str)), None)
        if key is None or key in named:
            return None
        named[key] = item
    return named
