"""Hostile templates: no attribute escape, no file access, no unbounded work or output.

Every template either renders to bounded text that leaks nothing, or fails with
`NonRetryableTaskError("template_error")` (the row is dropped); never another exception, never
a hang. Through the engine, a hostile expression drops rows (or trips the breaker) and the run
ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rowloom import DatasetConfig, Designer
from rowloom.config.errors import ConfigError
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.base import compile_template, render
from rowloom.generators.sandbox import MAX_TEMPLATE_OUTPUT

ROW: dict[str, Any] = {"x": "hello", "n": 3, "items": ["a", "b", "c"], "d": {"k": "v"}}
# What a successful escape would show: file contents, modules, the subclass list, builtins.
LEAK_MARKERS = ("root:", "<module", "Popen", "_wrap_close", "catch_warnings", "__builtins__")
HANG_SECONDS = 20.0  # generous: a bounded render takes milliseconds to about a second


def outcome(source: str, row: dict[str, Any] | None = None) -> str | NonRetryableTaskError:
    """Compile and render in a thread: the text, or the classified failure. Any other
    exception, or not finishing, fails the test."""
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(render(compile_template(source), row or ROW))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive(), f"rendering hung: {source!r}"
    value = result[0]
    if isinstance(value, NonRetryableTaskError):
        assert value.reason == "template_error"
        return value
    assert isinstance(value, str), f"{source!r} raised {value!r}"
    assert len(value) <= MAX_TEMPLATE_OUTPUT
    return value


ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ (''.__class__) ~ (x) }}",  # constant folding must not run it at compile time
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ x.__class__.__base__.__subclasses__() }}",
    "{{ ''['__class__'] }}",
    "{{ x|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '{0.__class__.__mro__}'.format(x) }}",
    "{{ '{x.__class__}'.format(x=x) }}",
    "{{ '{0[__class__]}'.format(d) }}",
    "{{ '{a.__class__.__mro__}'.format_map({'a': x}) }}",
    "{{ '{0.__init__.__globals__}'.format(cycler) }}",
    "{{ '%s'|format(x.__class__) }}",
    "{{ d.__class__.__init__.__globals__ }}",
    "{{ items.append(1) }}",
    "{{ d.update({'k': 2}) }}",
    "{{ config }}{{ request }}{{ os }}",
    "{{ (x|attr('__class__')).__mro__ }}",
    "{% set c = ''.__class__ %}{{ c }}",
    "{{ dict.__base__.__subclasses__() }}",
]
# Not escapes: a bound method's repr names no class hierarchy, module or builtins.
HARMLESS_REPRS = ["{{ x.format_map }}", "{{ '{0.upper}'.format(x) }}"]
FILE_ACCESS = [
    "{% include '/etc/passwd' %}",
    "{% include ['/etc/passwd', 'x'] %}",
    "{% import '/etc/passwd' as p %}{{ p }}",
    "{% from '/etc/passwd' import root %}{{ root }}",
    "{% extends '/etc/passwd' %}",
]
BOMBS = [
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "{% for a in items %}{% for b in range(99999) %}{% for c in range(99999) %}{% endfor %}"
    "{% endfor %}{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{{ 'x' * 999999 * 999999 }}",
    "{{ (1,) * 999999999 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 2 ** (2 ** 40) }}",
    "{{ (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) }}",
    "{% set ns = namespace(v=2) %}{% for i in range(64) %}{% set ns.v = ns.v * ns.v %}"
    "{% endfor %}{{ ns.v }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set s = 'x' * 900000 %}{{ [s, s, s, s, s]|join }}",
    "{% set s = 'x' * 900000 %}{{ s ~ s ~ s }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% for i in [1, 2] recursive %}{{ loop([1, 2]) }}{% endfor %}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:>{}}'.format(1, 999999999) }}",
    "{{ '%999999999d'|format(1) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ ('a\nb' * 1000)|indent(999999) }}",
    "{{ items|batch(999999999, 'x')|list|length }}",
    "{{ items|slice(999999999)|list|length }}",
    "{{ ('ab' * 1000)|replace('', 'x' * 5000) }}",
    "{{ x.ljust(999999999) }}",
    "{{ x.zfill(999999999) }}",
    "{{ 'a\tb'.expandtabs(999999999) }}",
    "{{ ('ab' * 1000).replace('', 'x' * 5000) }}",
    "{{ lipsum(1000000) }}",
    "{{ lipsum(3, false, 10, 999999999) }}",
    "{% for i in range(99) %}{{ dict.fromkeys(range(99999)) }}{% endfor %}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_attribute_escapes_are_refused(source: str) -> None:
    """Every escape raises (the row's `template_error`): rendering anything at all, even text
    without the markers below, would mean the sandbox let the attribute through."""
    result = outcome(source)
    assert isinstance(result, NonRetryableTaskError), f"{source!r} rendered {result!r}"
    assert "unsafe" in str(result) or "undefined" in str(result), str(result)


@pytest.mark.parametrize("source", HARMLESS_REPRS)
def test_method_reprs_leak_nothing(source: str) -> None:
    result = outcome(source)
    assert isinstance(result, str) and result.startswith("<")
    assert not any(marker in result for marker in LEAK_MARKERS), result


@pytest.mark.parametrize("source", FILE_ACCESS)
def test_no_file_access(source: str) -> None:
    assert isinstance(outcome(source), NonRetryableTaskError)


@pytest.mark.parametrize("source", BOMBS)
def test_resource_bombs_are_bounded(source: str) -> None:
    assert isinstance(outcome(source), NonRetryableTaskError), source


def test_ordinary_templates_still_work() -> None:
    assert outcome("{{ x|upper }} {{ n * 2 }} {{ items|join(',') }}") == "HELLO 6 a,b,c"
    assert outcome("{% for i in range(3) %}{{ i }}{% endfor %}") == "012"
    assert outcome("{{ '%05.1f' % 3.14159 }} {{ '{:>6}'.format(x) }}") == "003.1  hello"
    assert outcome("{{ 'ab' ~ x }}{{ [1, 2] + [3] }}") == "abhello[1, 2, 3]"
    assert (
        outcome("{% for i in range(150) %}{% for j in range(1000) %}{% endfor %}{% endfor %}ok")
        == "ok"
    )  # 150,000 iterations are within the budget
    long = outcome("{{ 'y' * 1000000 }}")
    assert isinstance(long, str) and len(long) == MAX_TEMPLATE_OUTPUT


FRAGMENTS = [
    "x",
    "n",
    "items",
    "d",
    "''",
    "'ab'",
    "1",
    "99999",
    "999999999",
    "10**9",
    "range(99999)",
    "lipsum",
    "cycler",
    "namespace",
    "self",
    "loop",
    "dict",
    "joiner",
]
ATTRS = [
    "__class__",
    "__mro__",
    "__subclasses__()",
    "__globals__",
    "__init__",
    "__base__",
    "__dict__",
    "format",
    "upper()",
    "mro()",
    "func_globals",
    "gi_frame",
    "f_back",
    "keys()",
]
FILTERS = [
    "upper",
    "join",
    "list",
    "length",
    "center(999999999)",
    "batch(99999)",
    "indent(99999)",
    "replace('', 'xxxxxxxxxx')",
    "attr('__class__')",
    "string",
    "format(1)",
    "tojson",
    "sum",
    "first",
    "reverse",
    "int",
]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    base = draw(st.sampled_from(FRAGMENTS))
    for _ in range(draw(st.integers(0, 3))):
        step = draw(st.sampled_from(["attr", "filter", "op", "index", "call"]))
        if step == "attr":
            base = f"{base}.{draw(st.sampled_from(ATTRS))}"
        elif step == "filter":
            base = f"({base})|{draw(st.sampled_from(FILTERS))}"
        elif step == "op":
            op = draw(st.sampled_from(["*", "**", "+", "~", "%"]))
            other = draw(st.sampled_from(FRAGMENTS)) if depth else draw(expressions(depth + 1))
            base = f"({base}) {op} ({other})"
        elif step == "index":
            base = f"{base}[{draw(st.sampled_from(['0', '-1', repr('__class__'), 'n']))}]"
        else:
            base = f"{base}()"
    return base


@st.composite
def templates(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        expr = draw(expressions())
        kind = draw(st.sampled_from(["out", "for", "set", "if", "macro"]))
        if kind == "out":
            parts.append(f"{{{{ {expr} }}}}")
        elif kind == "for":
            parts.append(
                f"{{% for v in {expr} %}}{{% for w in {expr} %}}{{{{ v }}}}"
                "{% endfor %}{% endfor %}"
            )
        elif kind == "set":
            parts.append(f"{{% set t = {expr} %}}{{{{ t }}}}{{{{ t ~ t }}}}")
        elif kind == "if":
            parts.append(f"{{% if {expr} %}}{{{{ {expr} }}}}{{% endif %}}")
        else:
            parts.append(
                f"{{% macro m(k) %}}{{{{ {expr} }}}}{{{{ m(k) if k else '' }}}}"
                "{% endmacro %}{{ m(n) }}"
            )
    return "".join(parts)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates())
def test_generated_hostile_templates(source: str) -> None:
    """Through the config loader (syntax is a ConfigError) and the generator's render."""
    data = {
        "columns": [
            {
                "name": "x",
                "column_type": "sampler",
                "sampler_type": "category",
                "params": {"values": ["hello"]},
            },
            {"name": "e", "column_type": "expression", "expr": source},
        ]
    }
    try:
        DatasetConfig.from_dict(data)
    except ConfigError:
        return  # refused before any work, with a typed error
    result = outcome(source)
    if isinstance(result, str):
        assert not any(marker in result for marker in LEAK_MARKERS), result


def test_hostile_expression_drops_rows_and_the_run_ends() -> None:
    config = DatasetConfig.from_dict(
        {
            "columns": [
                {
                    "name": "x",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["a", "b"]},
                },
                {"name": "ok", "column_type": "expression", "expr": "{{ x }}!"},
                {
                    "name": "bomb",
                    "column_type": "expression",
                    "expr": "{% if x == 'a' %}{% for i in range(99999) %}"
                    "{% for j in range(99999) %}{% endfor %}{% endfor %}{% endif %}{{ x }}",
                },
            ],
            "run": {"buffer_size": 10, "error_rate_threshold": 1.0},
        }
    )
    # A vectorised expression is one task per row group; a bad row drops only that row.
    result = _finishes(lambda: Designer().preview(config, 20))
    assert result.summary.row_groups_done == result.summary.row_groups_total  # the run ended
    assert result.summary.status == "incomplete"  # ... without the dropped rows
    dropped = result.summary.dropped_rows
    assert set(dropped) == {"template_error"}
    assert dropped["template_error"] + len(result) == 20
    assert set(result.data["x"]) == {"b"}


def _finishes(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(60)
    assert out, "the run hung or failed"
    return out[0]
