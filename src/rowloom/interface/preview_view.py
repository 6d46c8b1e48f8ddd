"""Records people can read: rich cards in the terminal, HTML in notebooks.

A card shows one record, one line per column: long text wrapped, dicts and lists as pretty
JSON, judge scores as highlighted `score` with their reasoning beside them, validation
results as a coloured pass/fail. The HTML forms (a table of records, one record as a card)
escape every value and need no script.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

HTML_ROWS = 20
HTML_CELL_CHARS = 300


def records(data: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Column lists as a list of row dicts."""
    n = len(next(iter(data.values()))) if data else 0
    return [{c: values[i] for c, values in data.items()} for i in range(n)]


def record_card(record: Mapping[str, Any], title: str = "") -> RenderableType:
    """One record as a rich panel."""
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(style="bold cyan", no_wrap=True, max_width=28)
    grid.add_column(ratio=1)
    for name, value in record.items():
        grid.add_row(name, _renderable(value))
    return Panel(grid, title=title, title_align="left", border_style="dim")


def is_judge_value(value: Any) -> bool:
    """A judge column's value: score name -> {score, reasoning}."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, Mapping) and "score" in v for v in value.values())
    )


def _renderable(value: Any) -> RenderableType:
    if value is None:
        return Text("null", style="dim italic")
    if is_judge_value(value):
        return _judge(value)
    if isinstance(value, Mapping) and "is_valid" in value:
        ok = bool(value.get("is_valid"))
        rest = {k: v for k, v in value.items() if k != "is_valid" and v not in (None, "", [])}
        head = Text("valid" if ok else "invalid", style="bold green" if ok else "bold red")
        return Group(head, JSON.from_data(rest)) if rest else head
    if isinstance(value, Mapping | list | tuple):
        if _is_vector(value):
            return Text(_vector_text(list(value)), style="magenta")
        return JSON.from_data(value, default=str)
    return Text(str(value))


def _judge(value: Mapping[str, Any]) -> RenderableType:
    lines = []
    for name, result in value.items():
        line = Text.assemble((f"{name}: ", "bold"))
        if isinstance(result, Mapping):
            line.append(str(result.get("score")), style="bold black on yellow")
            if result.get("reasoning"):
                line.append(f"  {result['reasoning']}", style="dim")
        else:
            line.append(str(result))
        lines.append(line)
    return Group(*lines)


def _is_vector(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 8
        and all(isinstance(x, int | float) for x in value)
    )


def _vector_text(value: Sequence[float]) -> str:
    head = ", ".join(f"{x:.4g}" for x in value[:4])
    return f"[{head}, ...] ({len(value)} values)"


def print_records(data: Mapping[str, Sequence[Any]], console: Console) -> None:
    """Every record as a card."""
    rows = records(data)
    for i, row in enumerate(rows):
        console.print(record_card(row, title=f"record {i + 1} of {len(rows)}"))


def print_json_lines(data: Mapping[str, Sequence[Any]], console: Console) -> None:
    """Every record as one JSON line (machine output)."""
    for row in records(data):
        console.print(json.dumps(row, default=str, ensure_ascii=False), soft_wrap=True)


# --- HTML (notebooks) ---------------------------------------------------------------------


def _cell_html(value: Any) -> str:
    if value is None:
        return '<span style="color:#9ca3af">null</span>'
    if isinstance(value, Mapping | list | tuple):
        if _is_vector(value):
            return escape(_vector_text(list(value)))
        text = json.dumps(value, default=str, ensure_ascii=False, indent=1)
        return f'<pre style="margin:0;white-space:pre-wrap">{escape(_clip(text))}</pre>'
    return escape(_clip(str(value)))


def _clip(text: str, limit: int = HTML_CELL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def records_html(data: Mapping[str, Sequence[Any]], total: int | None = None) -> str:
    """The first records as an HTML table, with a caption saying how many there are."""
    rows = records(data)
    shown = rows[:HTML_ROWS]
    head = "".join(f"<th>{escape(c)}</th>" for c in data)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align:left;vertical-align:top">{_cell_html(v)}</td>'
            for v in row.values()
        )
        + "</tr>"
        for row in shown
    )
    count = total if total is not None else len(rows)
    caption = f"{len(shown)} of {count} records" if count > len(shown) else f"{count} records"
    return (
        f"<table><caption style='text-align:left'>{escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def record_html(record: Mapping[str, Any], title: str = "") -> str:
    """One record as an HTML card (a two-column table)."""
    rows = "".join(
        f'<tr><th style="text-align:left;vertical-align:top">{escape(k)}</th>'
        f'<td style="text-align:left">{_cell_html(v)}</td></tr>'
        for k, v in record.items()
    )
    return f"<div><b>{escape(title)}</b><table>{rows}</table></div>"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython already imported, with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def display_html(html: str) -> None:
    """Show HTML in the running notebook."""
    display = sys.modules["IPython"].display
    display.display(display.HTML(html))


def show_record(record: Mapping[str, Any], title: str) -> None:
    """One record: an HTML card in a notebook, a rich card in a terminal."""
    if in_notebook():
        display_html(record_html(record, title))
    else:
        Console().print(record_card(record, title=title))
