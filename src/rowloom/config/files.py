"""Reading a config document: the file or text as YAML or JSON, its folder, and a shape
check that refuses alias bombs, self-references and absurd nesting before anything walks it."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rowloom.config.errors import ConfigFileError


def file_dir(source: str | Path) -> Path | None:
    """The folder of `source` when it names a config file rather than holding its text."""
    if isinstance(source, Path) or (
        "\n" not in source and Path(source).suffix in (".yaml", ".yml", ".json")
    ):
        return Path(source).parent
    return None


def load_text(source: str | Path, *, yaml_mode: bool) -> Any:
    """The parsed document of a config file or text; `ConfigFileError` naming the file."""
    text: str
    name = "config"
    if file_dir(source) is not None:
        path = Path(source)
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigFileError(f"cannot read config file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigFileError(f"cannot read config file {path}: it is not UTF-8 text") from None
    else:
        text = str(source)
    kind = "YAML" if yaml_mode else "JSON"
    try:
        return _parse_yaml(text, name) if yaml_mode else json.loads(text)
    except RecursionError:
        raise ConfigFileError(f"{name} is not valid {kind}: nested too deeply") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: JSON syntax, over-long numbers
        raise ConfigFileError(f"{name} is not valid {kind}: {exc}") from None


def _parse_yaml(text: str, name: str) -> Any:
    """`yaml.safe_load` whose error marks name the file (not `<unicode string>`)."""
    stream = io.StringIO(text)
    stream.name = name
    return yaml.safe_load(stream)


MAX_CONFIG_VALUES = 1_000_000
"""Values a config may hold once YAML aliases are expanded (refuses alias bombs); a string
counts one per 100 characters."""
MAX_CONFIG_DEPTH = 200
"""Nesting levels a config may have."""


def check_shape(data: Any) -> None:
    """Refuse self-referencing, too deeply nested or (alias-expanded) too large documents
    before anything walks them; linear in the distinct containers."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if isinstance(node, str | bytes):
            return 1 + len(node) // 100  # an aliased long string counts by its length
        if not isinstance(node, Mapping | list | tuple | set | frozenset):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise ConfigFileError("the config refers to itself (a recursive YAML anchor)")
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigFileError(f"the config is nested deeper than {MAX_CONFIG_DEPTH} levels")
        on_path.add(key)
        total = 1
        for item in (*node.keys(), *node.values()) if isinstance(node, Mapping) else node:
            total += size(item, depth + 1)
            if total > MAX_CONFIG_VALUES:
                raise ConfigFileError(
                    f"the config is too large: more than {MAX_CONFIG_VALUES:,} values once "
                    "YAML aliases are expanded"
                )
        on_path.discard(key)
        sizes[key] = total
        return total

    size(data, 0)
