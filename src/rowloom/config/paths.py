"""Custom functions named in a config are imported relative to the config file: the module
of `function: "myfuncs:hint"` is found beside the YAML, with no `PYTHONPATH`.

`DatasetConfig.from_file/from_yaml(path)/from_json(path)` know the file's folder
(`config.base_dir`, with `config.resolve_path()` for seed paths); validation receives it as
the pydantic context key `"base_dir"` (`base_dir_of(info)` in a validator).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo

BASE_DIR = "base_dir"
"""The pydantic validation-context key holding the config file's folder."""


def base_dir_of(info: ValidationInfo | None) -> Path | None:
    """The config file's folder from a validator's context (None: the current folder)."""
    context = info.context if info is not None else None
    if isinstance(context, dict):
        value = context.get(BASE_DIR)
        if isinstance(value, Path):
            return value
    return None


def import_callable(spec: str, base_dir: Path | None = None) -> Any:
    """The object named by `module.path:attr.path`; a module beside the config file
    (`base_dir`) wins over one of the same name elsewhere on `sys.path`."""
    module_name, _, attr = spec.partition(":")
    if base_dir is not None:
        _load_beside(module_name.split(".")[0], base_dir)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _load_beside(top: str, base_dir: Path) -> None:
    """Import the top-level module `top` from `base_dir` when a file or package of that name
    is there (and it is not imported from there already)."""
    spec = PathFinder.find_spec(top, [str(base_dir)])
    if spec is None or spec.loader is None:
        return
    loaded = sys.modules.get(top)
    if loaded is not None and getattr(loaded, "__file__", None) == spec.origin:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(top, None)
        raise
