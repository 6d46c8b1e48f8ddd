"""Simulated code answers: when a prompt asks for code in a fenced block of a language, the
answer is one such block whose code parses in that language (Python for `ast`, SQL in the
requested dialect for `sqlglot`; other languages get a small, well-formed snippet).

A request asks for code when its system or last user message names a fence with a language
tag (```` ```python ````, ```` ```sql ````) or a Data Designer style code language
(`python`, `sql:postgres`, ...) after "code_lang" or "dialect".
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["code_language", "simulated_code"]

_FENCE = re.compile(r"```([A-Za-z][A-Za-z0-9_+#\-]*)")
_NAMED = re.compile(r"(?:code_lang|dialect)\W{0,3}\s*([A-Za-z][A-Za-z0-9_+#\-]*(?::[a-z]+)?)", re.I)
_SQL_DIALECT = re.compile(r"\bsql:(sqlite|postgres|mysql|tsql|bigquery|ansi)\b", re.I)
_ALIASES = {"py": "python", "python3": "python", "js": "javascript", "ts": "typescript"}

_TABLES = ("orders", "customers", "products", "invoices", "shipments", "employees")
_GROUPS = ("region", "category", "segment", "city", "channel")
_NUMBERS = ("amount", "quantity", "unit_price", "total_cost", "discount")
_NAMES = ("score", "items", "values", "records", "prices", "weights", "counts")
_VERBS = ("compute", "summarize", "normalize", "filter", "rank", "measure", "collect")


def code_language(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The code language a request asks for (`python`, `sql:postgres`, ...), or None."""
    texts = [_text(m.get("content")) for m in messages if m.get("role") == "system"]
    users = [m.get("content") for m in messages if m.get("role") == "user"]
    if users:
        texts.append(_text(users[-1]))
    text = "\n".join(texts)
    match = _FENCE.search(text) or _NAMED.search(text)
    if match is None:
        return None
    lang = match.group(1).lower()
    lang = _ALIASES.get(lang, lang)
    if lang.startswith("sql"):
        dialect = _SQL_DIALECT.search(text)
        return f"sql:{dialect.group(1).lower()}" if dialect else "sql:ansi"
    return lang


def _text(content: Any) -> str:
    """The text of a message's content (a string, or OpenAI content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p
        )
    return ""


def simulated_code(lang: str, rng: random.Random) -> str:
    """A fenced block of code in `lang` that parses."""
    if lang.startswith("sql"):
        return f"```sql\n{_sql(rng)}\n```"
    if lang == "python":
        return f"```python\n{_python(rng)}\n```"
    return f"```{lang}\n{_snippet(lang, rng)}\n```"


def _python(rng: random.Random) -> str:
    fn = f"{rng.choice(_VERBS)}_{rng.choice(_NAMES)}"
    arg = rng.choice(_NAMES)
    limit = rng.randint(1, 99)
    factor = round(rng.uniform(0.5, 3.0), 2)
    return (
        f"THRESHOLD = {limit}\n"
        f"FACTOR = {factor}\n"
        "\n"
        "\n"
        f"def {fn}({arg}: list[float]) -> float:\n"
        f'    """Return the weighted total of {arg} above THRESHOLD."""\n'
        "    total = 0.0\n"
        f"    for value in {arg}:\n"
        "        if value > THRESHOLD:\n"
        "            total += value * FACTOR\n"
        "    return total\n"
        "\n"
        "\n"
        'if __name__ == "__main__":\n'
        f"    print({fn}([{limit - 1}, {limit + 1}, {limit + 10}]))"
    )


def _sql(rng: random.Random) -> str:
    """A query valid in every supported dialect (no LIMIT/TOP, no quoting)."""
    table, other = rng.sample(_TABLES, 2)
    group = rng.choice(_GROUPS)
    number = rng.choice(_NUMBERS)
    threshold = rng.randint(1, 500)
    if rng.random() < 0.5:
        return (
            f"SELECT t.{group}, COUNT(*) AS row_count, SUM(t.{number}) AS total_{number}\n"
            f"FROM {table} AS t\n"
            f"WHERE t.{number} > {threshold}\n"
            f"GROUP BY t.{group}\n"
            "ORDER BY row_count DESC;"
        )
    return (
        f"SELECT a.{group}, AVG(b.{number}) AS avg_{number}\n"
        f"FROM {table} AS a\n"
        f"JOIN {other} AS b ON b.{table}_id = a.id\n"
        f"WHERE b.{number} BETWEEN {threshold} AND {threshold + rng.randint(10, 900)}\n"
        f"GROUP BY a.{group};"
    )


_TEMPLATES = {
    "bash": '{f}() {{\n  echo "$(( $1 * {n} ))"\n}}\n\n{f} 3',
    "c": (
        "#include <stdio.h>\n\nint {f}(int x) {{\n    return x * {n};\n}}\n\n"
        'int main(void) {{\n    printf("%d\\n", {f}(3));\n    return 0;\n}}'
    ),
    "cpp": (
        "#include <iostream>\n\nint {f}(int x) {{ return x * {n}; }}\n\n"
        "int main() {{\n    std::cout << {f}(3) << std::endl;\n    return 0;\n}}"
    ),
    "csharp": (
        "using System;\n\nclass Program\n{{\n    static int Apply(int x) => x * {n};\n"
        "    static void Main() => Console.WriteLine(Apply(3));\n}}"
    ),
    "go": (
        'package main\n\nimport "fmt"\n\nfunc {f}(x int) int {{\n\treturn x * {n}\n}}\n\n'
        "func main() {{\n\tfmt.Println({f}(3))\n}}"
    ),
    "java": (
        "public class Main {{\n    static int {f}(int x) {{\n        return x * {n};\n    }}\n\n"
        "    public static void main(String[] args) {{\n"
        "        System.out.println({f}(3));\n    }}\n}}"
    ),
    "javascript": "function {f}(x) {{\n  return x * {n};\n}}\n\nconsole.log({f}(3));",
    "typescript": (
        "function {f}(x: number): number {{\n  return x * {n};\n}}\n\nconsole.log({f}(3));"
    ),
    "kotlin": "fun {f}(x: Int): Int = x * {n}\n\nfun main() {{\n    println({f}(3))\n}}",
    "ruby": "def {f}(x)\n  x * {n}\nend\n\nputs {f}(3)",
    "rust": (
        "fn {f}(x: i64) -> i64 {{\n    x * {n}\n}}\n\n"
        'fn main() {{\n    println!("{{}}", {f}(3));\n}}'
    ),
    "scala": (
        "object Main {{\n  def {f}(x: Int): Int = x * {n}\n\n"
        "  def main(args: Array[String]): Unit = println({f}(3))\n}}"
    ),
    "swift": "func {f}(_ x: Int) -> Int {{\n    return x * {n}\n}}\n\nprint({f}(3))",
    "cobol": (
        "       IDENTIFICATION DIVISION.\n       PROGRAM-ID. SIMULATED.\n"
        "       PROCEDURE DIVISION.\n           DISPLAY {n}.\n           STOP RUN."
    ),
}


def _snippet(lang: str, rng: random.Random) -> str:
    name = f"{rng.choice(_VERBS)}_{rng.choice(_NAMES)}"
    template = _TEMPLATES.get(lang, "{f} = {n}")
    return template.format(f=name, n=rng.randint(2, 40))
