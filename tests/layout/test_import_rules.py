"""The package layout's import rules (../shared/spec/layout.md), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "rowloom"


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every rowloom module a file imports (including lazy, function-level imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rowloom")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rowloom"):
            found.add(node.module)
    return found


MODULES = {module_name(p): imports_of(p) for p in SRC.rglob("*.py")}


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


RULES: list[tuple[str, list[str], list[str]]] = [
    # (importer package, forbidden packages, allowed exceptions)
    ("rowloom.config", ["rowloom"], ["rowloom.config"]),
    (
        "rowloom.scheduling",
        [
            "rowloom.models.request_admission",
            "rowloom.models.clients",
            "rowloom.models.facade",
            "rowloom.builder",
            "rowloom.generators",
            "rowloom.interface",
            "rowloom.scheduler",
        ],
        [],
    ),
    (
        "rowloom.scheduler",
        ["rowloom.models", "rowloom.builder", "rowloom.generators", "rowloom.interface"],
        [],
    ),
    (
        "rowloom.models.request_admission",
        [
            "rowloom.scheduling",
            "rowloom.scheduler",
            "rowloom.models.clients",
            "rowloom.builder",
            "rowloom.generators",
        ],
        [],
    ),
    (
        "rowloom.observability",
        [
            "rowloom.scheduling",
            "rowloom.scheduler",
            "rowloom.models",
            "rowloom.builder",
            "rowloom.generators",
            "rowloom.simulation",
        ],
        [],
    ),
    ("rowloom.capacity", ["rowloom.models.clients", "rowloom.builder", "rowloom.interface"], []),
]


@pytest.mark.parametrize(("importer", "forbidden", "allowed"), RULES, ids=[r[0] for r in RULES])
def test_import_rules(importer: str, forbidden: list[str], allowed: list[str]) -> None:
    bad = []
    for module, imported in MODULES.items():
        if not _in(module, importer):
            continue
        for name in imported:
            if any(_in(name, f) for f in forbidden) and not any(_in(name, a) for a in allowed):
                bad.append(f"{module} imports {name}")
    assert not bad, "\n".join(sorted(bad))


def test_distributed_sits_on_top_and_alone_imports_ray() -> None:
    """`distributed` may import builder, scheduler, models and observability; nothing below it
    imports `distributed`, and `ray` is imported only inside `distributed`."""
    above = ("rowloom.distributed", "rowloom.bench", "rowloom.interface")
    below = [
        f"{m} imports {n}"
        for m, imported in MODULES.items()
        if not any(_in(m, a) for a in above)
        for n in imported
        if _in(n, "rowloom.distributed")
    ]
    assert not below, below
    ray_users = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "ray" or n.startswith("ray.") for n in names):
                ray_users.append(module_name(path))
    assert all(_in(m, "rowloom.distributed") for m in ray_users), ray_users


def test_only_the_executor_holds_both_clients_and_request_admission() -> None:
    """Only the executor calls both; the builder's wiring (the run's composition root) only
    constructs them and hands both to the executor, and the run monitor only reads them."""
    both = [
        m
        for m, imported in MODULES.items()
        if any(_in(n, "rowloom.models.request_admission") for n in imported)
        and any(
            _in(n, "rowloom.models.clients") and not _in(n, "rowloom.models.clients.base")
            for n in imported
        )
        and not _in(m, "rowloom.models.request_admission")
    ]
    assert set(both) <= {
        "rowloom.models.clients.model_request_executor",
        "rowloom.builder.wiring",
        "rowloom.builder.outputs",
    }, both


def test_no_retired_names() -> None:
    retired = (
        "ThrottleManager",
        "ThrottleDomain",
        "ThrottleConfig",
        "ThrottledModelClient",
        "SchedulingHint",
        "needs_llm_wait",
        "held_llm_wait",
        "max_llm_wait_tasks",
    )
    hits = [
        f"{p}: {name}"
        for p in SRC.rglob("*.py")
        for name in retired
        if name in p.read_text(encoding="utf-8")
    ]
    assert not hits, hits
