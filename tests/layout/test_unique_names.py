"""One name, one thing: no two public classes of `src/rowloom` share a name."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "rowloom"

SHARED_FOR_NOW = {
    # task admission's and request admission's release answers: one concept with two homes
    # (issue 13); to move into one neutral module, then this set is empty.
    "ReleaseResult",
}


def test_public_class_names_are_unique() -> None:
    homes: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                homes[node.name].append(path.relative_to(SRC).as_posix())
    clashes = {name: where for name, where in homes.items() if len(where) > 1}
    assert set(clashes) <= SHARED_FOR_NOW, {
        n: w for n, w in clashes.items() if n not in SHARED_FOR_NOW
    }
    assert set(clashes) >= SHARED_FOR_NOW, "a shared name has one home now: drop it from the set"
