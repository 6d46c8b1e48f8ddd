"""The bounded Jinja2 sandbox every column template renders in.

`ImmutableSandboxedEnvironment` already refuses unsafe attributes (`__class__`, `__globals__`,
...), mutation of values, and (with no loader) `include` / `import` / `extends`. `BoundedSandbox`
adds bounds on work and size, so no template can hang a run or exhaust its memory:

- a per-render step budget (`MAX_TEMPLATE_STEPS`): every loop iteration, call and
  intercepted operator costs a step, a size-amplifying operation its result size / 100;
- size-amplifying operations are checked before they run: `*` and `**`, `%` and `str.format`
  widths, `~` and `+` concatenation, `range`, `lipsum`, the `center`, `indent`, `format`,
  `batch`, `slice`, `replace` and `join` filters and the string methods `center`, `ljust`,
  `rjust`, `zfill`, `expandtabs` and `replace`;
- the rendered text is capped at `MAX_TEMPLATE_OUTPUT` characters.

Exceeding a bound raises `jinja2.exceptions.SecurityError` (a `TemplateError`), which
`render()` turns into a dropped row with reason `template_error`.

A text value holding a whole object or list (JSON, or Python's printed form, as an expression
column writes `{{ person.openness }}`) can be read into: `{{ openness.description }}` looks
the field up in the parsed value, as Data Designer reads JSON text in its records.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from jinja2 import Template, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_TEMPLATE_OUTPUT = 1_000_000
"""Characters one render may produce (and the largest string or list it may build)."""
MAX_TEMPLATE_STEPS = 200_000
"""Work units one render may spend (loop iterations, calls, operators, range items)."""
MAX_INT_BITS = 4096
"""Largest integer `**` may produce, in bits."""

_STEP_FILTER = "rowloom_counted"
_SIZE_FILTER = "rowloom_sized"
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")
_STR_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


class _Budget:
    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps


_BUDGET: ContextVar[_Budget | None] = ContextVar("rowloom_template_budget", default=None)


def spend(units: int) -> None:
    """Charge `units` to the current render's budget (no-op outside `render_bounded`)."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.left -= units
    if budget.left < 0:
        raise SecurityError(f"the template needs more than {MAX_TEMPLATE_STEPS:,} steps")


def _check_size(size: int, what: str) -> None:
    if size > MAX_TEMPLATE_OUTPUT:
        raise SecurityError(f"{what} would be {size:,} long (limit {MAX_TEMPLATE_OUTPUT:,})")
    spend(1 + size // 100)


def _check_number(value: Any, what: str) -> None:
    if isinstance(value, int) and value > MAX_TEMPLATE_OUTPUT:
        raise SecurityError(f"{what} {value:,} is above the limit {MAX_TEMPLATE_OUTPUT:,}")


def _check_percent_format(fmt: str) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise SecurityError("'*' widths are not allowed in templates")
            if part:
                _check_number(int(part), "a format width")


def _check_brace_format(fmt: str) -> None:
    for _literal, _field, spec, _conversion in string.Formatter().parse(fmt):
        if spec and "{" in spec:
            raise SecurityError("nested format specs are not allowed in templates")
        for number in re.findall(r"\d+", spec or ""):
            _check_number(int(number), "a format width")


def _replace_size(s: Any, old: Any, new: Any, count: Any) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        hits = len(s) + 1 if old == "" else s.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _check_size(len(s) + hits * len(new), "a replaced string")


def _indent_size(s: Any, width: Any) -> None:
    if isinstance(s, str):
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        _check_size(len(s) + pad * (s.count("\n") + 1), "an indented string")


_FILTER_CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "center": lambda a: _check_number(a.get("width"), "a width"),
    "indent": lambda a: _indent_size(a.get("s"), a.get("width")),
    "format": lambda a: (
        _check_percent_format(a["value"]) if isinstance(a.get("value"), str) else None
    ),
    "batch": lambda a: _check_number(a.get("linecount"), "a batch size"),
    "slice": lambda a: _check_number(a.get("slices"), "a slice count"),
    "replace": lambda a: _replace_size(a.get("s"), a.get("old"), a.get("new"), a.get("count")),
}


def _guarded(func: Callable[..., Any], check: Callable[[Mapping[str, Any]], None]) -> Any:
    signature = inspect.signature(func)
    first = next(iter(signature.parameters), "")
    # Jinja's async-variant filters get a context argument their visible signature lacks.
    skip = int(
        getattr(func, "jinja_pass_arg", None) is not None
        and first not in ("eval_ctx", "context", "environment", "env")
    )

    @functools.wraps(func)  # keeps Jinja's pass_context/eval_context markers
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args[skip:], **kwargs)
        bound.apply_defaults()
        check(bound.arguments)
        return func(*args, **kwargs)

    return wrapper


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        spend(1)
        yield item


def _sized(value: Any) -> Any:
    if isinstance(value, str):
        _check_size(len(value), "a concatenated string")
    return value


def _guarded_join(join: Callable[..., Any]) -> Any:
    @functools.wraps(join)  # join is pass_eval_context: (eval_ctx, value, d="", attribute=None)
    def wrapper(eval_ctx: Any, value: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        items = list(value)
        spend(len(items))
        _check_size(sum(len(x) for x in items if isinstance(x, str)), "a joined string")
        return join(eval_ctx, items, *args, **kwargs)

    return wrapper


class _Bounder(NodeTransformer):
    """Routes loop iterables through the step counter and concatenations (`~`) through the
    size check."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _STEP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, _SIZE_FILTER, [], [], None, None, lineno=node.lineno)


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    _check_size(len(rng), "a range")  # iterating it costs a step per item on top
    return rng


def _bounded_lipsum(lipsum: Callable[..., str]) -> Callable[..., str]:
    signature = inspect.signature(lipsum)

    @functools.wraps(lipsum)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        n, top = bound.arguments["n"], bound.arguments["max"]
        if isinstance(n, int) and isinstance(top, int):
            _check_size(n * max(top, 1) * 12, "lorem ipsum")
        return lipsum(*args, **kwargs)

    return wrapper


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus bounds on steps, sizes and output (see the module doc)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        lipsum: Callable[..., str] = self.globals["lipsum"]  # type: ignore[assignment]
        self.globals["lipsum"] = _bounded_lipsum(lipsum)
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _guarded(self.filters[name], check)
        self.filters["join"] = _guarded_join(self.filters["join"])
        self.filters[_STEP_FILTER] = _counted
        self.filters[_SIZE_FILTER] = _sized

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str) and not hasattr(str, attribute):
            parsed = structured_text(obj)
            if parsed is not None:
                return super().getitem(parsed, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str) and not isinstance(argument, int | slice):
            parsed = structured_text(obj)
            if parsed is not None:
                return super().getitem(parsed, argument)
        return super().getitem(obj, argument)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then bound loops and concatenations (see `_Bounder`)."""
        tree = _Bounder().visit(super()._parse(source, name, filename))
        assert isinstance(tree, nodes.Template)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        spend(1)
        if operator == "*":
            ints = isinstance(left, int) and isinstance(right, int)
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError(f"the product would exceed {MAX_INT_BITS} bits")
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _check_size(len(seq) * max(times, 0), "a repeated sequence")
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _check_size(len(left) + len(right), "a concatenation")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and right > 0 and right * abs(left).bit_length() > MAX_INT_BITS:
                raise SecurityError(f"the power would exceed {MAX_INT_BITS} bits")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        spend(1)
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        method = getattr(target, "__name__", "")
        if isinstance(owner, str):
            if method in _STR_WIDTH_METHODS and args:
                _check_number(args[0], "a width")
            elif method == "expandtabs":
                size = args[0] if args and isinstance(args[0], int) else 8
                _check_size(len(owner) + owner.count("\t") * size, "an expanded string")
            elif method == "replace" and len(args) >= 2:
                _replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
            elif method in ("format", "format_map"):
                _check_brace_format(owner)
        return super().call(__context, __obj, *args, **kwargs)


def structured_text(text: str) -> dict[str, Any] | list[Any] | None:
    """The object or list a text holds (JSON, or Python's printed form), else None."""
    stripped = text.strip()
    if stripped[:1] not in ("{", "[") or len(stripped) > MAX_TEMPLATE_OUTPUT:
        return None
    spend(len(stripped) // 100)
    try:
        value = json.loads(stripped)
    except ValueError:
        try:
            value = ast.literal_eval(stripped)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict | list) else None


def render_bounded(template: Template, variables: Mapping[str, Any]) -> str:
    """Render with a fresh step budget; the text is capped at `MAX_TEMPLATE_OUTPUT`."""
    token = _BUDGET.set(_Budget(MAX_TEMPLATE_STEPS))
    try:
        size = 0
        chunks: list[str] = []
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_TEMPLATE_OUTPUT:
                raise SecurityError(
                    f"the template output is longer than {MAX_TEMPLATE_OUTPUT:,} characters"
                )
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)
