"""Code validators: Python (compile, then lint with ruff) and SQL (parse with sqlglot in the
dialect). Outputs follow Data Designer's fields.

Python: `{is_valid, python_linter_score, python_linter_severity, python_linter_messages}`; a
message is `{type, symbol, line, column, message}` with `type` one of fatal, error, warning,
convention, refactor; code is valid unless its worst message is fatal or an error; the score
is pylint's (10 - 10 * (5 * errors + others) / statements, 0 when fatal).
SQL: `{is_valid, error_messages}`.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rowloom.config.code_lang import code_dialect
from rowloom.config.errors import ConfigIssue, ConfigValidationError

RUFF_RULES = "E,F6,F7,F8,SIM,PLC,PLE,PLR,PLW"
"""The rule families Data Designer's Python validator selects."""
_SEVERITY_ORDER = ("fatal", "error", "warning", "convention", "refactor")
_VALID_SEVERITIES = frozenset({"none", "warning", "convention", "refactor"})
_TYPE_OF_PREFIX = {
    "E": "refactor",
    "F": "error",
    "SIM": "refactor",
    "PLC": "convention",
    "PLE": "error",
    "PLR": "refactor",
    "PLW": "warning",
}
_SQL_DIALECTS = {"ansi": None}
_DECIMAL_WITHOUT_SCALE = re.compile(r"DECIMAL\(\d+\)", re.IGNORECASE)


def missing_extra(what: str, module: str, location: str) -> ConfigValidationError:
    """The error for a validator whose library is not installed."""
    return ConfigValidationError(
        [
            ConfigIssue(
                "missing_dependency",
                location,
                "validator_params",
                f"{what} needs the '{module}' package: pip install 'rowloom[validation]'",
            )
        ]
    )


def ruff_binary(location: str) -> str:
    """The ruff executable shipped by the `ruff` package."""
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:
        raise missing_extra("the Python code validator", "ruff", location) from None
    return str(find_ruff_bin())


def check_sqlglot(location: str) -> None:
    """Raise a typed config error when sqlglot is not installed."""
    try:
        import sqlglot  # noqa: F401
    except ImportError:
        raise missing_extra("the SQL code validator", "sqlglot", location) from None


def validate_sql(code: Any, code_lang: str) -> dict[str, Any]:
    """Parse SQL in the dialect of `code_lang` (`sql:ansi` is sqlglot's generic dialect)."""
    if not isinstance(code, str) or not code.strip():
        return {"is_valid": False, "error_messages": "no SQL to validate"}
    messages = _sql_parse_messages(code, code_lang)
    if _DECIMAL_WITHOUT_SCALE.search(code):
        messages.append("DECIMAL definitions without a scale, which may be incorrect")
    return {"is_valid": not messages, "error_messages": "\n".join(messages)}


def syntax_error(code: str, code_lang: str) -> str | None:
    """The first reason `code` does not parse as `code_lang` (Python or SQL), None if it parses.

    Raises LookupError for a language with no parser here (or SQL without sqlglot installed).
    """
    lang = code_lang.partition(":")[0]
    if lang == "python":
        problem = _parse_python(code)[1]
        return problem["message"] if problem else None
    if lang != "sql" or importlib.util.find_spec("sqlglot") is None:
        raise LookupError(code_lang)
    messages = _sql_parse_messages(code, code_lang)
    return messages[0] if messages else None


def _sql_parse_messages(code: str, code_lang: str) -> list[str]:
    import sqlglot
    from sqlglot.errors import SqlglotError

    dialect = code_dialect(code_lang) or "ansi"
    messages: list[str] = []
    try:
        statements = sqlglot.parse(code, read=_SQL_DIALECTS.get(dialect, dialect))
        if not any(s is not None for s in statements):
            messages.append("no SQL statement")
    except SqlglotError as exc:
        errors = getattr(exc, "errors", None) or [{"description": str(exc)}]
        for err in errors[:10]:
            where = f" (line {err['line']}, col {err['col']})" if "line" in err else ""
            messages.append(f"{err.get('description', 'parse error')}{where}")
    except Exception as exc:  # sqlglot may raise other errors on odd input
        messages.append(f"exception during SQL parsing: {type(exc).__name__}: {exc}")
    return messages


async def validate_python(codes: Sequence[Any], ruff: str) -> list[dict[str, Any]]:
    """Compile and lint each piece of code; one ruff process for the whole batch."""
    with tempfile.TemporaryDirectory(prefix="rowloom-pycheck-") as tmp:
        files = []
        for i, code in enumerate(codes):
            path = Path(tmp) / f"m{i:06d}.py"
            path.write_text(code if isinstance(code, str) else "", encoding="utf-8")
            files.append(path)
        diagnostics = await _run_ruff(ruff, tmp)
    by_file: dict[str, list[dict[str, Any]]] = {p.name: [] for p in files}
    for diag in diagnostics:
        name = Path(str(diag.get("filename", ""))).name
        if name in by_file:
            by_file[name].append(_message(diag))
    return [_python_result(code, by_file[p.name]) for code, p in zip(codes, files, strict=True)]


async def _run_ruff(ruff: str, folder: str) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        ruff,
        "check",
        "--isolated",
        "--no-cache",
        "--exit-zero",
        "--select",
        RUFF_RULES,
        "--output-format=json",
        folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    try:
        parsed = json.loads(out or b"[]")
    except ValueError:
        raise RuntimeError(f"ruff gave no JSON: {err.decode(errors='replace')[:300]}") from None
    return parsed if isinstance(parsed, list) else []


def _message(diag: dict[str, Any]) -> dict[str, Any]:
    code = diag.get("code")
    location = diag.get("location") or {}
    if not code:  # ruff reports syntax errors without a rule code
        symbol, kind = "SyntaxError", "fatal"
    else:
        symbol = str(code)
        kind = _TYPE_OF_PREFIX.get("".join(c for c in symbol if c.isalpha()), "warning")
    return {
        "type": kind,
        "symbol": symbol,
        "line": int(location.get("row", 0)),
        "column": int(location.get("column", 0)),
        "message": str(diag.get("message", "")),
    }


def _python_result(code: Any, messages: list[dict[str, Any]]) -> dict[str, Any]:
    statements = 0
    if not isinstance(code, str) or not code.strip():
        messages = [_fatal("no Python code to validate", 1, 0)]
    else:
        tree, problem = _parse_python(code)
        if tree is not None:
            statements = sum(isinstance(node, ast.stmt) for node in ast.walk(tree))
        elif problem is not None and (
            not problem["message"].startswith("SyntaxError")
            or not any(m["type"] == "fatal" for m in messages)
        ):
            messages.append(problem)
    messages.sort(key=lambda m: (_SEVERITY_ORDER.index(m["type"]), m["line"]))
    counts = {k: sum(m["type"] == k for m in messages) for k in _SEVERITY_ORDER}
    score = 0.0
    if not counts["fatal"]:
        weighted = 5 * counts["error"] + counts["warning"] + counts["refactor"]
        score = max(0.0, 10.0 - (weighted + counts["convention"]) / max(1, statements) * 10)
    severity = messages[0]["type"] if messages else "none"
    return {
        "is_valid": severity in _VALID_SEVERITIES,
        "python_linter_score": score,
        "python_linter_severity": severity,
        "python_linter_messages": messages,
    }


def _parse_python(code: str) -> tuple[ast.Module | None, dict[str, Any] | None]:
    """The syntax tree of `code`, or the fatal message saying why it does not compile."""
    try:
        return ast.parse(code), None
    except SyntaxError as exc:
        return None, _fatal(f"SyntaxError: {exc.msg}", exc.lineno or 1, exc.offset)
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, _fatal(f"cannot compile: {type(exc).__name__}", 1, 0)


def _fatal(message: str, line: int, column: int | None) -> dict[str, Any]:
    return {
        "type": "fatal",
        "symbol": "SyntaxError",
        "line": line,
        "column": column or 0,
        "message": message,
    }
