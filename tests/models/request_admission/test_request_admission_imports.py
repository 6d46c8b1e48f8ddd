"""Import rules: request admission never reaches into the scheduler or the model clients."""

from __future__ import annotations

import ast
from pathlib import Path

import rowloom.models.request_admission as package

FORBIDDEN = ("rowloom.scheduling", "rowloom.scheduler", "rowloom.models.clients")
ALLOWED_ROOTS = (
    "rowloom.models.request_admission",
    "rowloom.models.resources",
    "rowloom.observability",
    "rowloom.clock",
    "rowloom.config",
    "rowloom.errors",
)


def test_request_admission_imports_only_what_the_layout_allows() -> None:
    folder = Path(package.__file__).parent
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if not name.startswith("rowloom"):
                    continue
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
                assert name.startswith(ALLOWED_ROOTS), f"{path.name} imports {name}"
