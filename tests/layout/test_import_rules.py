"""The package layout's import rules (../shared/spec/layout.md), checked on the source.

Every `import` statement of `src/rowloom` counts, wherever it is: module level, inside a
function (lazy) or under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "rowloom"


@dataclass(frozen=True, slots=True)
class Edge:
    """`importer` imports `imported` at `line` of the importer's file."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def module_names(src: Path) -> dict[str, Path]:
    """Each module of the tree under `src` (a package folder) by dotted name."""
    names: dict[str, Path] = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def import_edges(src: Path) -> list[Edge]:
    """Every import of a module of `src` by a module of `src`, resolved to the module it loads:
    `from pkg import sub` loads `pkg.sub` when that is a module, `from pkg.mod import Name`
    loads `pkg.mod`; relative imports are resolved against the importer."""
    modules = module_names(src)
    root = src.name

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        while parts:
            if ".".join(parts) in modules:
                return ".".join(parts)
            parts.pop()
        return None

    edges: list[Edge] = []
    for importer, path in modules.items():
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            for target in targets:
                if target != root and not target.startswith(root + "."):
                    continue
                resolved = resolve(target)
                if resolved is not None and resolved != importer:
                    edges.append(Edge(importer, resolved, node.lineno))
    return edges


EDGES = import_edges(SRC)
MODULES: dict[str, set[str]] = {name: set() for name in module_names(SRC)}
for _edge in EDGES:
    MODULES[_edge.importer].add(_edge.imported)


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# ------------------------------------------------------------------------------------ cycles


def packages(modules: Iterable[str], paths: Mapping[str, Path]) -> list[str]:
    """Every package (a folder with `__init__.py`) among `modules`."""
    return sorted(m for m in modules if paths[m].name == "__init__.py")


def child_of(package: str, module: str) -> str | None:
    """The direct child of `package` (a module or subpackage) holding `module`; the package's
    own `__init__` is the child `package.__init__`; None for modules outside the package."""
    if module == package:
        return package + ".__init__"
    if not module.startswith(package + "."):
        return None
    return package + "." + module[len(package) + 1 :].split(".")[0]


def cycles(edges: Iterable[Edge], paths: Mapping[str, Path]) -> dict[frozenset[str], list[Edge]]:
    """The import cycles at every level: for each package, the strongly connected groups of
    its direct children (modules and subpackages; an edge between two children is any import
    from a module of one into a module of the other). Each group maps to the edges forming it.
    A cycle between top-level packages is a group of `rowloom`'s children."""
    edges = list(edges)
    found: dict[frozenset[str], list[Edge]] = {}
    for package in packages(paths, paths):
        graph: dict[str, set[str]] = {}
        why: dict[tuple[str, str], list[Edge]] = {}
        for edge in edges:
            a, b = child_of(package, edge.importer), child_of(package, edge.imported)
            if a is None or b is None or a == b:
                continue
            graph.setdefault(a, set()).add(b)
            why.setdefault((a, b), []).append(edge)
        for group in strongly_connected(graph):
            found[group] = [
                e for (a, b), es in why.items() if a in group and b in group for e in es
            ]
    return found


def strongly_connected(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm (iterative): the groups of two or more mutually reachable nodes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(frozenset(group))
    return groups


def test_no_import_cycle_at_any_level() -> None:
    """No cycle between packages, between subpackages, or between modules of a package."""
    found = cycles(EDGES, module_names(SRC))
    report = [
        f"cycle {sorted(group)}:\n  " + "\n  ".join(sorted(map(str, edges)))
        for group, edges in found.items()
    ]
    assert not found, "\n".join(report)


def test_the_cycle_check_sees_lazy_relative_and_submodule_imports(tmp_path: Path) -> None:
    """The checker itself: a lazy import closing a loop, a `from pkg import sub` edge and a
    relative import each count; an import of the parent package's `__init__` does too."""
    pkg = tmp_path / "demo"
    (pkg / "a").mkdir(parents=True)
    (pkg / "b").mkdir()
    files = {
        "__init__.py": "",
        "a/__init__.py": "from demo.a import one\n",
        "a/one.py": "from . import two\n",
        "a/two.py": "def f():\n    from demo.a.one import x\n",
        "b/__init__.py": "from demo.a import two\n",
        "b/three.py": "import demo.b\n",
        "c.py": "from demo.b import three\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    (pkg / "a" / "two.py").write_text(files["a/two.py"] + "from demo import c\n")
    found = cycles(import_edges(pkg), module_names(pkg))
    assert set(found) == {
        frozenset({"demo.a.one", "demo.a.two"}),
        frozenset({"demo.a", "demo.b", "demo.c"}),
    }
    lazy = [e for e in found[frozenset({"demo.a.one", "demo.a.two"})] if e.line == 2]
    assert lazy == [Edge("demo.a.two", "demo.a.one", 2)]


# ------------------------------------------------------------------------------ layer rules


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
        # request admission imports only its own modules and what sits below it
        "rowloom.models.request_admission",
        ["rowloom"],
        [
            "rowloom.models.request_admission",
            "rowloom.models.resources",
            "rowloom.observability",
            "rowloom.provider_wire",
            "rowloom.leases",
            "rowloom.clock",
            "rowloom.config",
            "rowloom.errors",
        ],
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
    ("rowloom.provider_wire", ["rowloom"], ["rowloom.provider_wire"]),
    ("rowloom.leases", ["rowloom"], ["rowloom.leases"]),
    ("rowloom.simulation", ["rowloom.models", "rowloom.builder", "rowloom.interface"], []),
]


@pytest.mark.parametrize(("importer", "forbidden", "allowed"), RULES, ids=[r[0] for r in RULES])
def test_import_rules(importer: str, forbidden: list[str], allowed: list[str]) -> None:
    bad = [
        str(edge)
        for edge in EDGES
        if _in(edge.importer, importer)
        and any(_in(edge.imported, f) for f in forbidden)
        and not any(_in(edge.imported, a) for a in allowed)
    ]
    assert not bad, "\n".join(sorted(bad))


def test_distributed_sits_on_top_and_alone_imports_ray() -> None:
    """`distributed` may import builder, scheduler, models and observability; nothing below it
    imports `distributed`, and `ray` is imported only inside `distributed`."""
    above = ("rowloom.distributed", "rowloom.bench", "rowloom.interface")
    below = [
        str(e)
        for e in EDGES
        if not any(_in(e.importer, a) for a in above) and _in(e.imported, "rowloom.distributed")
    ]
    assert not below, below
    ray_users = []
    for name, path in module_names(SRC).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            if any(n == "ray" or n.startswith("ray.") for n in names):
                ray_users.append(name)
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
