"""Code languages of `llm_code` columns and code validators (Data Designer's names).

A language is a plain name (`python`, `bash`, ...) or `sql:<dialect>` for SQL.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

CodeLang: TypeAlias = Literal[
    "bash",
    "c",
    "cobol",
    "cpp",
    "csharp",
    "go",
    "java",
    "javascript",
    "kotlin",
    "python",
    "ruby",
    "rust",
    "scala",
    "swift",
    "typescript",
    "sql:sqlite",
    "sql:tsql",
    "sql:bigquery",
    "sql:mysql",
    "sql:postgres",
    "sql:ansi",
]
CODE_LANGS: tuple[str, ...] = get_args(CodeLang)
SQL_DIALECTS: tuple[str, ...] = tuple(lang for lang in CODE_LANGS if lang.startswith("sql:"))
VALIDATABLE_CODE_LANGS: tuple[str, ...] = ("python", *SQL_DIALECTS)
"""Languages a `code` validator checks: Python (compile + lint) and every SQL dialect."""


def code_language(code_lang: str) -> str:
    """The language part: `python` -> `python`, `sql:postgres` -> `sql`."""
    return code_lang.partition(":")[0]


def code_dialect(code_lang: str) -> str | None:
    """The SQL dialect part (`sql:postgres` -> `postgres`), None for other languages."""
    return code_lang.partition(":")[2] or None
