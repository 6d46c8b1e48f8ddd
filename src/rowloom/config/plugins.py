"""Plugins: column generators, seed readers and processors from installed packages.

A package declares each plugin as an entry point in the `rowloom.plugins` group whose object is
a `Plugin`: its `plugin_type`, its config class (a pydantic model whose discriminator field,
`column_type` / `seed_type` / `processor_type`, is a `Literal` with a default) and its
implementation class, each a class or an import path `"package.module:Class"`. Entry points are
read once, on first use; a plugin that fails to load is reported (never silently dropped) when a
config names its type. `ROWLOOM_DISABLE_PLUGINS=1` turns discovery off.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import entry_points
from typing import Any, Literal, TypeAlias, get_args, get_origin

from pydantic import BaseModel

ENTRY_POINT_GROUP = "rowloom.plugins"
DISABLE_ENV = "ROWLOOM_DISABLE_PLUGINS"
PluginType: TypeAlias = Literal["column_generator", "seed_reader", "processor"]
DISCRIMINATORS: dict[str, str] = {
    "column_generator": "column_type",
    "seed_reader": "seed_type",
    "processor": "processor_type",
}

_log = logging.getLogger(__name__)


class PluginLoadError(Exception):
    """A plugin's classes cannot be loaded or do not have the required shape."""


def _load(ref: type | str) -> type:
    if isinstance(ref, type):
        return ref
    module_name, sep, attr = ref.partition(":")
    if not sep:
        module_name, _, attr = ref.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise PluginLoadError(f"cannot import {ref!r}: {exc}") from None
    if not isinstance(obj, type):
        raise PluginLoadError(f"{ref!r} is not a class")
    return obj


@dataclass(frozen=True)
class Plugin:
    """One extension: `config` and `impl` are classes or `"package.module:Class"` paths."""

    plugin_type: PluginType
    config: type | str
    impl: type | str
    description: str = ""

    def __post_init__(self) -> None:
        if self.plugin_type not in DISCRIMINATORS:
            raise PluginLoadError(
                f"plugin_type must be one of {list(DISCRIMINATORS)}, got {self.plugin_type!r}"
            )

    @cached_property
    def config_cls(self) -> type[BaseModel]:
        """The config class (checked: a pydantic model with a Literal discriminator)."""
        cls = _load(self.config)
        if not issubclass(cls, BaseModel):
            raise PluginLoadError(f"{cls.__name__} is not a pydantic model")
        key = DISCRIMINATORS[self.plugin_type]
        info = cls.model_fields.get(key)
        if info is None or get_origin(info.annotation) is not Literal:
            raise PluginLoadError(f"{cls.__name__}.{key} must be a Literal field")
        if not isinstance(info.default, str) or info.default not in get_args(info.annotation):
            raise PluginLoadError(f"{cls.__name__}.{key} needs its one value as default")
        return cls

    @cached_property
    def impl_cls(self) -> type:
        """The implementation class (loaded on first use)."""
        return _load(self.impl)

    @property
    def name(self) -> str:
        """The type name configs use (the config class's discriminator default)."""
        default = self.config_cls.model_fields[DISCRIMINATORS[self.plugin_type]].default
        return str(default)


class PluginRegistry:
    """Plugins by type and name, from entry points (read once) and `register()`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._plugins: dict[tuple[str, str], Plugin] = {}
        self._errors: dict[str, str] = {}
        self._discovered = False

    def register(self, plugin: Plugin) -> Plugin:
        """Add a plugin (its config class is loaded and checked now)."""
        key = (plugin.plugin_type, plugin.name)
        with self._lock:
            self._plugins[key] = plugin
        return plugin

    def unregister(self, plugin_type: str, name: str) -> None:
        """Remove a plugin (tests; a process normally keeps its plugins)."""
        with self._lock:
            self._plugins.pop((plugin_type, name), None)

    def find(self, plugin_type: str, name: str) -> Plugin | None:
        """The plugin of this type and name, or None."""
        self._discover()
        return self._plugins.get((plugin_type, name))

    def names(self, plugin_type: str) -> list[str]:
        """Names of the plugins of one type, sorted."""
        self._discover()
        return sorted(n for t, n in self._plugins if t == plugin_type)

    def errors(self) -> dict[str, str]:
        """Entry points that failed to load: entry point name -> why."""
        self._discover()
        return dict(self._errors)

    def _discover(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True
            if os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes"):
                return
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    plugin = ep.load()
                    if not isinstance(plugin, Plugin):
                        raise PluginLoadError(f"{ep.value} is not a rowloom Plugin")
                    self.register(plugin)
                except Exception as exc:  # a broken plugin never breaks rowloom itself
                    self._errors[ep.name] = f"{type(exc).__name__}: {exc}"
                    _log.warning("rowloom plugin %r failed to load: %s", ep.name, exc)


REGISTRY = PluginRegistry()
"""The process-wide plugin registry."""


def find_plugin(plugin_type: str, name: str) -> Plugin | None:
    """The installed plugin of this type and name, or None."""
    return REGISTRY.find(plugin_type, name)


PLUGIN_TAG = "plugin"
"""The union tag of configs whose type an installed plugin provides."""


def union_tag(
    plugin_type: PluginType, builtins: Mapping[str, type], base: type
) -> Callable[[Any], str | None]:
    """A discriminator for a config union: a built-in type's tag, `PLUGIN_TAG` for a type an
    installed plugin provides (or an instance of a non-built-in `base` subclass), else the
    unknown type itself (pydantic reports it)."""
    key = DISCRIMINATORS[plugin_type]

    def tag(value: Any) -> str | None:
        if isinstance(value, base):
            kind = getattr(value, key, None)
            return kind if type(value) is builtins.get(str(kind)) else PLUGIN_TAG
        kind = value.get(key) if isinstance(value, dict) else None
        if not isinstance(kind, str):
            return None
        if kind in builtins:
            return kind
        return PLUGIN_TAG if find_plugin(plugin_type, kind) is not None else kind

    return tag


def plugin_config_parser(plugin_type: PluginType) -> Callable[[Any], Any]:
    """Validates a plugin config given as a dict with its plugin's config class."""
    key = DISCRIMINATORS[plugin_type]

    def parse(value: Any) -> Any:
        if isinstance(value, dict):
            plugin = find_plugin(plugin_type, str(value.get(key)))
            if plugin is not None:
                return plugin.config_cls.model_validate(value)
        return value

    return parse
