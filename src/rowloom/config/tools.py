"""MCP tool providers and tool configs (Data Designer's `MCPProvider`, `LocalStdioMCPProvider`
and `ToolConfig` field names).

An LLM column with `tool_alias` may call the tools of that tool config's MCP providers while it
writes its answer; `rowloom.models.mcp` runs the sessions and the facade the calling loop.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, model_validator

_NAME = r"^[A-Za-z0-9_.\-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MCPProvider(_Strict):
    """A running MCP server reached over Streamable HTTP (`streamable_http`) or SSE (`sse`).

    The key (sent as `Authorization: Bearer ...`) comes from `api_key_env` or a literal
    `api_key`, which is never written back out, logged or shown in a repr.
    """

    provider_type: Literal["sse", "streamable_http"] = "sse"
    name: str = Field(min_length=1, pattern=_NAME)
    endpoint: str = Field(min_length=1, pattern=r"^https?://")
    api_key: SecretStr | None = None
    api_key_env: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> MCPProvider:
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("set api_key_env or api_key, not both")
        return self

    @field_serializer("api_key")
    def _hide_key(self, value: SecretStr | None) -> None:
        return None

    def resolve_api_key(self) -> str | None:
        """The key from `api_key` or the environment variable; None when neither is set."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class LocalStdioMCPProvider(_Strict):
    """An MCP server rowloom starts as a subprocess for the run and talks to over stdio.

    A `command` of `python` or `python3` runs under rowloom's own interpreter, so a server
    written in Python sees the packages rowloom is installed with.
    """

    provider_type: Literal["stdio"] = "stdio"
    name: str = Field(min_length=1, pattern=_NAME)
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)


MCPProviderConfig: TypeAlias = Annotated[
    MCPProvider | LocalStdioMCPProvider, Field(discriminator="provider_type")
]


class ToolConfig(_Strict):
    """The tools a column may call: those of `providers`, narrowed by `allow_tools`.

    A turn is one model answer that asks for tool calls (several calls in one turn run
    concurrently); after `max_tool_call_turns` turns the model must answer without tools.
    `timeout_sec` bounds each tool call (a call that takes longer answers the model with an
    error); `loop_timeout_sec` bounds a cell's whole tool-calling loop (the cell is retried).
    """

    tool_alias: str = Field(min_length=1, pattern=_NAME)
    providers: list[str] = Field(min_length=1)
    allow_tools: list[str] | None = None
    max_tool_call_turns: int = Field(5, ge=1, le=100)
    timeout_sec: float | None = Field(None, gt=0)
    loop_timeout_sec: float | None = Field(None, gt=0)
