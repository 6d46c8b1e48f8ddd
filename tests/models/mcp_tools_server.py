"""A small MCP server for the tool-use tests (official `mcp` SDK).

`python tests/models/mcp_tools_server.py` serves over stdio; `streamable_app()` / `sse_app()`
give the HTTP apps the tests serve on 127.0.0.1 themselves. Tools:

- `capital(country)`: the capital of a few countries (deterministic);
- `add(a, b)`: a + b;
- `slow(seconds)`: waits, then answers (for timeouts);
- `broken()`: always fails (a tool error the model must read).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

CAPITALS = {"france": "Paris", "japan": "Tokyo", "kenya": "Nairobi", "peru": "Lima"}

server = MCPServer("rowloom-test-tools")


@server.tool()
def capital(country: str) -> str:
    """The capital city of a country."""
    return CAPITALS.get(country.strip().lower(), f"unknown country {country!r}")


@server.tool()
def add(a: int, b: int) -> int:
    """The sum of two integers."""
    return a + b


@server.tool()
async def slow(seconds: float) -> str:
    """Waits `seconds`, then answers."""
    await asyncio.sleep(min(max(seconds, 0.0), 30.0))
    return "done"


@server.tool()
def broken() -> str:
    """Always fails."""
    raise RuntimeError("this tool is broken on purpose")


def streamable_app() -> Any:
    """The server's Streamable HTTP ASGI app (path `/mcp`)."""
    return server.streamable_http_app()


def sse_app() -> Any:
    """The server's SSE ASGI app (path `/sse`)."""
    return server.sse_app()


if __name__ == "__main__":
    if pidfile := os.environ.get("ROWLOOM_TEST_MCP_PIDFILE"):  # tests check the server exits
        Path(pidfile).write_text(str(os.getpid()))
    server.run("stdio")
