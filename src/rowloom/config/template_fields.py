"""Check what templates read from other columns against what those columns produce.

Every column config may declare the shape of its values with `output_shape()`: a JSON-schema
subset (`type`, `properties`, `additionalProperties`, `items`, `$defs`/`definitions` with
`$ref`, `anyOf`/`oneOf`/`allOf`, `enum`); `None` (or `{}`) means "not known", and nothing is
checked against it. A person sampler declares its fields, a structured column its output
schema (nested properties included), a judge its score names, a seed column what the seed file
holds. `field_issues` walks a template's attribute and key accesses rooted at a column name
(`{{ person.first_name }}`, `{{ review['scores'].quality.score }}`, `{{ topic.upper() }}`) and
reports each one the referenced column cannot have, with a "did you mean" when a known field
is close.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

Shape = Mapping[str, Any]
MAX_LISTED = 12
"""Fields named when an unknown one has no close match."""
_SCALAR_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """A template access the referenced column cannot satisfy."""

    expression: str
    column: str
    message: str


def output_shape_of(column: Any) -> Shape | None:
    """A column config's declared value shape (None when it declares none)."""
    method = getattr(column, "output_shape", None)
    if not callable(method):
        return None
    shape = method()
    return shape if isinstance(shape, Mapping) and shape else None


def field_issues(
    template: nodes.Template, shapes: Callable[[str], Shape | None]
) -> list[FieldProblem]:
    """Problems of every attribute/key access in `template` whose root is a column with a
    known shape (`shapes(name)`; None when the name is not a column or its shape is unknown)."""
    local = _assigned_names(template)
    calls = {id(call.node) for call in template.find_all(nodes.Call)}
    problems: dict[str, FieldProblem] = {}
    for node in template.find_all((nodes.Getattr, nodes.Getitem)):
        chain = _chain(node)
        if chain is None or chain[0] in local:
            continue
        root, path = chain[0], chain[1:]
        shape = shapes(root)
        if shape is None:
            continue
        problem = _walk(root, shape, path, called=id(node) in calls)
        if problem is not None:
            problems.setdefault(problem.message, problem)
    return list(problems.values())


# --- template side -----------------------------------------------------------------------------


def _assigned_names(template: nodes.Template) -> set[str]:
    """Names a template binds itself (loop variables, set, macro arguments): not columns."""
    names: set[str] = set()
    for node in template.find_all((nodes.For, nodes.Assign, nodes.AssignBlock, nodes.Macro)):
        # For, Assign and AssignBlock bind `target`; a macro binds its arguments
        targets: Iterable[nodes.Node] = (
            node.args if isinstance(node, nodes.Macro) else [getattr(node, "target")]  # noqa: B009
        )
        for target in targets:
            names |= {n.name for n in target.find_all(nodes.Name)}
            if isinstance(target, nodes.Name):
                names.add(target.name)
    return names


def _chain(node: nodes.Node) -> list[Any] | None:
    """`[root, key, key, ...]` for `root.a['b'].c`; None when any step is not constant."""
    steps: list[Any] = []
    while True:
        if isinstance(node, nodes.Getattr):
            steps.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem):
            if not isinstance(node.arg, nodes.Const):
                return None
            steps.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            return [node.name, *reversed(steps)]
        else:
            return None


# --- shape side --------------------------------------------------------------------------------


def _walk(column: str, root: Shape, path: list[Any], *, called: bool) -> FieldProblem | None:
    """Follow `path` through the shape; the first step it cannot take is the problem."""
    expression = column
    current: Shape | None = root
    for i, step in enumerate(path):
        last = i == len(path) - 1
        label = f".{step}" if isinstance(step, str) and step.isidentifier() else f"[{step!r}]"
        if current is None:
            return None
        nxt, problem = _step(_resolve(current, root), root, step, method_call=last and called)
        if problem is not None:
            return FieldProblem(expression + label, column, problem)
        expression += label
        current = nxt
    return None


def _step(
    shape: Shape, root: Shape, step: Any, *, method_call: bool
) -> tuple[Shape | None, str | None]:
    """The shape behind one access, or a problem. Unions accept what any branch accepts."""
    branches = _branches(shape, root)
    if len(branches) > 1:
        problems = []
        for branch in branches:
            nxt, problem = _step(branch, root, step, method_call=method_call)
            if problem is None:
                return nxt, None
            problems.append(problem)
        return None, problems[0]
    shape = branches[0]
    kind = _type_of(shape)
    if kind is None:
        return None, None  # unknown: nothing to check
    python_type = _SCALAR_TYPES[kind]
    if isinstance(step, str) and hasattr(python_type, step) and (method_call or kind != "object"):
        return None, None  # a method of the value (`.upper()`, `.items()`)
    if kind == "object":
        return _property(shape, root, step)
    if kind == "array" and isinstance(step, int):
        items = shape.get("items")
        return (items if isinstance(items, Mapping) else None), None
    return None, f"it is {_article(kind)} {kind}, which has no field {step!r}"


def _property(shape: Shape, root: Shape, step: Any) -> tuple[Shape | None, str | None]:
    properties = shape.get("properties")
    extra = shape.get("additionalProperties")
    if not isinstance(properties, Mapping) or not properties:
        return (extra if isinstance(extra, Mapping) else None), None
    if step in properties:
        value = properties[step]
        return (value if isinstance(value, Mapping) else None), None
    if isinstance(extra, Mapping) and extra:
        return extra, None
    if extra is True:
        return None, None
    known = sorted(str(k) for k in properties)
    close = difflib.get_close_matches(str(step), known, n=1, cutoff=0.6)
    if close:
        return None, f"it has no field {step!r}; did you mean {close[0]!r}?"
    listed = ", ".join(known[:MAX_LISTED]) + (", ..." if len(known) > MAX_LISTED else "")
    return None, f"it has no field {step!r} (its fields: {listed})"


def _branches(shape: Shape, root: Shape) -> list[Shape]:
    """The alternatives of a union shape (itself when it is none); `allOf` merges."""
    for key in ("anyOf", "oneOf"):
        options = shape.get(key)
        if isinstance(options, list) and options:
            out: list[Shape] = []
            for option in options:
                if isinstance(option, Mapping):
                    out.extend(_branches(_resolve(option, root), root))
            non_null = [o for o in out if o.get("type") != "null"]
            return non_null or out
    parts = shape.get("allOf")
    if isinstance(parts, list) and parts:
        merged: dict[str, Any] = {"type": "object", "properties": {}}
        for part in parts:
            if isinstance(part, Mapping):
                resolved = _resolve(part, root)
                merged["properties"].update(resolved.get("properties") or {})
                if "additionalProperties" in resolved:
                    merged["additionalProperties"] = resolved["additionalProperties"]
        return [merged]
    return [shape]


def _resolve(shape: Shape, root: Shape) -> Shape:
    """Follow local `$ref`s (`#/$defs/X`, `#/definitions/X`); an unknown ref is unknown."""
    seen = 0
    while isinstance(shape.get("$ref"), str) and seen < 32:
        ref: str = shape["$ref"]
        target: Any = root
        if not ref.startswith("#/"):
            return {}
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        if not isinstance(target, Mapping):
            return {}
        shape = target
        seen += 1
    return shape


def _type_of(shape: Shape) -> str | None:
    kind = shape.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind in _SCALAR_TYPES:
        return str(kind)
    if "properties" in shape:
        return "object"
    if "enum" in shape:
        values = shape["enum"]
        if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
            return "string"
    return None


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"
