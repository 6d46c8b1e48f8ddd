"""Tools served by MCP servers, for LLM columns with a `tool_alias` (official `mcp` SDK).

`MCPToolHost` opens one session per MCP provider a run uses (a stdio subprocess, or Streamable
HTTP / SSE), lists its tools, and hands out one `MCPToolBox` per tool config. Each session
lives in its own task, which enters and leaves the SDK's client context (anyio requires both
in one task) while cells call tools from theirs. A provider that cannot be reached, a tool
name served twice, or an allowed tool nobody serves is a `ConfigValidationError` before any
model call.

A tool call never fails the cell: bad arguments, an unknown tool, a tool error or a call over
`timeout_sec` come back to the model as an error text it can act on. Only a lost session (the
server died) fails the cell, as retryable.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigIssue, ConfigValidationError
from rowloom.config.tools import LocalStdioMCPProvider, MCPProvider, ToolConfig
from rowloom.errors import RetryableTaskError
from rowloom.models.clients.base import ToolCall

__all__ = ["MCPToolBox", "MCPToolHost", "tool_aliases_in_use"]

_MAX_RESULT_CHARS = 20_000
STARTUP_TIMEOUT_SECONDS = 60.0
"""How long an MCP server may take to start and list its tools."""


def tool_aliases_in_use(config: DatasetConfig) -> list[str]:
    """The tool aliases the config's columns use, sorted."""
    return sorted({a for c in config.columns if (a := getattr(c, "tool_alias", None)) is not None})


@dataclass(frozen=True, slots=True)
class _Tool:
    provider: str
    name: str
    spec: dict[str, Any]


class _Session:
    """One MCP provider's client session, owned by a supervisor task."""

    def __init__(self, provider: MCPProvider | LocalStdioMCPProvider) -> None:
        self.provider = provider
        self.client: Any = None
        self.tools: list[_Tool] = []
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp:{self.provider.name}")
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                await self._ready.wait()
        except TimeoutError:
            self._error = _unavailable(
                self.provider,
                TimeoutError(f"no answer to the MCP handshake in {STARTUP_TIMEOUT_SECONDS} s"),
            )
        if self._error is not None:
            await self.stop()
            raise self._error

    async def _run(self) -> None:
        from mcp import Client

        try:
            async with Client(_target(self.provider), raise_exceptions=True) as client:
                listing = await client.list_tools()
                self.tools = [
                    _Tool(self.provider.name, tool.name, _spec(tool)) for tool in listing.tools
                ]
                self.client = client
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # reported to start(); a lost session fails calls
            if not self._ready.is_set():
                self._error = _unavailable(self.provider, exc)
            self.client = None
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.client = None
            self._ready.set()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self._task), 10.0)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task


def _target(provider: MCPProvider | LocalStdioMCPProvider) -> Any:
    if isinstance(provider, LocalStdioMCPProvider):
        from mcp.client.stdio import StdioServerParameters

        command = provider.command
        if command in ("python", "python3"):  # the server runs in rowloom's own environment
            command = sys.executable
        return StdioServerParameters(
            command=command, args=list(provider.args), env=dict(provider.env) or None
        )
    key = provider.resolve_api_key()
    headers = {"Authorization": f"Bearer {key}"} if key else None
    if provider.provider_type == "sse":
        from mcp.client.sse import sse_client

        return sse_client(provider.endpoint, headers=headers)
    if headers is None:
        return provider.endpoint
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    return streamable_http_client(
        provider.endpoint, http_client=httpx2.AsyncClient(headers=headers, timeout=30.0)
    )


def _spec(tool: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.input_schema)}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _unavailable(provider: MCPProvider | LocalStdioMCPProvider, exc: BaseException) -> Exception:
    where = (
        f"command {provider.command!r}"
        if isinstance(provider, LocalStdioMCPProvider)
        else f"endpoint {provider.endpoint}"
    )
    cause = exc
    while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        cause = cause.exceptions[0]
    return ConfigValidationError(
        [
            ConfigIssue(
                "mcp_provider_unavailable",
                f"mcp_providers.{provider.name}",
                None,
                f"could not open an MCP session with {where}: {type(cause).__name__}: {cause}",
            )
        ]
    )


class MCPToolBox:
    """The tools of one tool config (a `ToolBox` for `ModelFacade.converse`)."""

    def __init__(
        self, config: ToolConfig, tools: Sequence[_Tool], sessions: Mapping[str, _Session]
    ):
        self._config = config
        self._tools = {t.name: t for t in tools}
        self._sessions = sessions
        self._specs = tuple(t.spec for t in tools)

    @property
    def specs(self) -> Sequence[Mapping[str, Any]]:
        return self._specs

    @property
    def max_turns(self) -> int:
        return self._config.max_tool_call_turns

    @property
    def loop_timeout(self) -> float | None:
        return self._config.loop_timeout_sec

    async def call(self, call: ToolCall) -> str:
        """Run one call on its provider; errors become text for the model."""
        tool = self._tools.get(call.name)
        if tool is None:
            return f"error: unknown tool {call.name!r}; available: {sorted(self._tools)}"
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            return f"error: the arguments are not valid JSON ({exc.msg})"
        if not isinstance(arguments, dict):
            return "error: the arguments must be a JSON object"
        client = self._sessions[tool.provider].client
        if client is None:
            raise RetryableTaskError(
                "mcp_session_lost", f"MCP provider {tool.provider!r} is no longer connected"
            )
        timeout = self._config.timeout_sec
        try:
            async with asyncio.timeout(timeout):
                result = await client.call_tool(call.name, arguments)
        except TimeoutError:
            return f"error: tool {call.name!r} did not answer within {timeout} s"
        except Exception as exc:  # an MCP protocol error is the model's to read
            return f"error: tool {call.name!r} failed: {exc}"
        return _result_text(result)


def _result_text(result: Any) -> str:
    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(parts)[:_MAX_RESULT_CHARS]
    return f"error: {text}" if result.is_error else text


class MCPToolHost:
    """The MCP sessions of one run; `async with MCPToolHost(config) as host:`."""

    def __init__(self, config: DatasetConfig) -> None:
        self._config = config
        self._sessions: dict[str, _Session] = {}
        self.toolboxes: dict[str, MCPToolBox] = {}

    async def __aenter__(self) -> MCPToolHost:
        aliases = tool_aliases_in_use(self._config)
        if aliases and importlib.util.find_spec("mcp") is None:
            raise ConfigValidationError(
                [
                    ConfigIssue(
                        "mcp_not_installed",
                        "tool_configs",
                        None,
                        "tool use needs the `mcp` package: pip install 'rowloom[mcp]'",
                    )
                ]
            )
        tool_configs = {t.tool_alias: t for t in self._config.tool_configs or ()}
        providers = {p.name: p for p in self._config.mcp_providers or ()}
        needed = sorted({p for a in aliases for p in tool_configs[a].providers})
        try:
            for name in needed:
                session = self._sessions[name] = _Session(providers[name])
                await session.start()
            for alias in aliases:
                self.toolboxes[alias] = self._toolbox(tool_configs[alias])
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every session (stdio servers exit)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.stop() for s in sessions), return_exceptions=True)

    def _toolbox(self, config: ToolConfig) -> MCPToolBox:
        by_name: dict[str, _Tool] = {}
        issues: list[ConfigIssue] = []
        loc = f"tool_configs.{config.tool_alias}"
        for provider in config.providers:
            for tool in self._sessions[provider].tools:
                if config.allow_tools is not None and tool.name not in config.allow_tools:
                    continue
                if tool.name in by_name:
                    issues.append(
                        ConfigIssue(
                            "duplicate_tool",
                            loc,
                            "providers",
                            f"tool {tool.name!r} is served by both {by_name[tool.name].provider!r}"
                            f" and {provider!r}; narrow it with allow_tools",
                        )
                    )
                by_name[tool.name] = tool
        for name in config.allow_tools or ():
            if name not in by_name:
                issues.append(
                    ConfigIssue(
                        "unknown_tool",
                        loc,
                        "allow_tools",
                        f"no provider of {config.providers} serves a tool {name!r}",
                    )
                )
        if issues:
            raise ConfigValidationError(issues)
        return MCPToolBox(config, list(by_name.values()), self._sessions)
