"""Tool use through MCP: stdio and Streamable HTTP servers (started and stopped here), the
calling loop inside the cell (turn and time limits), each model call admitted like any other,
tool errors read by the model, and typed errors before any model call."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from rowloom.builder.builder import DatasetBuilder
from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigValidationError
from rowloom.errors import RetryableTaskError, RunFolderError
from rowloom.interface.designer import Designer
from rowloom.models.clients.base import ChatResponse, ToolCall
from rowloom.models.facade import ModelFacade
from rowloom.simulation.server import MockProviderServer, MockServerOptions

pytest.importorskip("mcp")

SERVER = str(Path(__file__).with_name("mcp_tools_server.py"))
STDIO = {"name": "local", "provider_type": "stdio", "command": sys.executable, "args": [SERVER]}


def config(
    *,
    provider: Mapping[str, Any] | None = None,
    mcp: Mapping[str, Any] = STDIO,
    tool: Mapping[str, Any] | None = None,
    simulation: Mapping[str, Any] | None = None,
    trace: str | None = None,
) -> DatasetConfig:
    column: dict[str, Any] = {
        "name": "answer",
        "column_type": "llm_text",
        "model_alias": "w",
        "prompt": "What is the capital of {{ country }}?",
        "tool_alias": "geo",
    }
    if trace:
        column["with_trace"] = trace
    return DatasetConfig.from_dict(
        {
            "providers": [
                provider
                or {
                    "name": "p",
                    "provider_type": "simulated",
                    "simulation": {"latency_ms": 0, **(simulation or {})},
                }
            ],
            "models": [{"alias": "w", "model": "m", "provider": "p"}],
            "mcp_providers": [dict(mcp)],
            "tool_configs": [
                {
                    "tool_alias": "geo",
                    "providers": [mcp["name"]],
                    "allow_tools": ["capital"],
                    **(tool or {}),
                }
            ],
            "columns": [
                {
                    "name": "country",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["france", "japan", "kenya", "peru"]},
                },
                column,
            ],
        }
    )


async def test_stdio_tools_feed_the_answer_and_every_call_is_admitted() -> None:
    result = await Designer().apreview(config(), 6)
    capitals = {"france": "paris", "japan": "tokyo", "kenya": "nairobi", "peru": "lima"}
    for country, answer in zip(result.data["country"], result.data["answer"], strict=True):
        assert f"Tool results: {capitals[country].title()}" in answer
    # two model calls per cell (tool turn, then the answer), each its own admitted request
    assert result.summary.request_attempts == 12
    assert result.summary.token_usage["by_column"]["answer"]["requests"] == 12


@asynccontextmanager
async def http_mcp_server(transport: str) -> AsyncIterator[str]:
    """The test tools over Streamable HTTP or SSE on 127.0.0.1 (a pre-bound socket: no wait
    for startup, connections queue until the server accepts them)."""
    import uvicorn

    sys.path.insert(0, str(Path(SERVER).parent))
    try:
        import mcp_tools_server
    finally:
        sys.path.pop(0)
    app = mcp_tools_server.sse_app() if transport == "sse" else mcp_tools_server.streamable_app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.mark.parametrize("transport", ["streamable_http", "sse"])
async def test_http_tools_with_the_model_over_http(transport: str) -> None:
    async with (
        http_mcp_server(transport) as mcp_url,
        MockProviderServer(MockServerOptions(latency_ms=0)) as model,
    ):
        cfg = config(
            provider={"name": "p", "endpoint": model.url},
            mcp={"name": "remote", "provider_type": transport, "endpoint": mcp_url},
            trace="all_messages",
        )
        result = await Designer().apreview(cfg, 4)
    assert all("Tool results:" in a for a in result.data["answer"])
    assert result.summary.request_attempts == 8


async def test_turn_limit_forces_an_answer_and_tool_errors_reach_the_model() -> None:
    limited = config(simulation={"tool_call_turns": 5}, tool={"max_tool_call_turns": 2})
    result = await Designer().apreview(limited, 2)
    # 2 tool turns, then a request with tool_choice "none" that must answer
    assert result.summary.request_attempts == 6
    for answer in result.data["answer"]:
        assert len(answer.split("Tool results: ", 1)[1].split("; ")) == 2  # two tool results
    broken = config(tool={"allow_tools": ["broken"]})
    result = await Designer().apreview(broken, 2)
    assert all(
        "Tool results: error: Error executing tool broken" in a for a in result.data["answer"]
    )
    slow = config(tool={"allow_tools": ["slow"], "timeout_sec": 0.2}, simulation={"seed": 3})
    result = await Designer().apreview(slow, 1)
    # the simulated call asks for several seconds; the tool call is cut at 0.2 s
    assert result.data["answer"][0].endswith("error: tool 'slow' did not answer within 0.2 s")


class _Stuck:
    """A tool box whose one tool never answers."""

    specs: Sequence[Mapping[str, Any]] = ({"type": "function", "function": {"name": "t"}},)
    max_turns = 3
    loop_timeout = 0.05

    async def call(self, call: ToolCall) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class _AlwaysCalls:
    async def execute_chat(self, alias: str, messages: Any, **kw: Any) -> ChatResponse:
        return ChatResponse(text="", tool_calls=(ToolCall("c1", "t", "{}"),))


async def test_loop_time_limit_fails_the_cell_as_retryable() -> None:
    facade = ModelFacade(_AlwaysCalls(), ["w"])  # type: ignore[arg-type]
    with pytest.raises(RetryableTaskError, match="tool-calling loop took longer"):
        await facade.converse("w", [{"role": "user", "content": "x"}], tools=_Stuck())


async def test_unreachable_server_and_unknown_tools_are_typed_errors_before_any_call() -> None:
    missing = config(mcp={**STDIO, "command": "/nonexistent/mcp-server"})
    with pytest.raises(ConfigValidationError) as info:
        await Designer().apreview(missing, 1)
    assert info.value.codes == ("mcp_provider_unavailable",)
    assert "mcp_providers.local" in str(info.value)
    unknown = config(tool={"allow_tools": ["capital", "teleport"]})
    with pytest.raises(ConfigValidationError) as info:
        await Designer().apreview(unknown, 1)
    assert info.value.codes == ("unknown_tool",)
    with pytest.raises(ConfigValidationError) as info:
        DatasetConfig.from_dict({**json.loads(config().to_json()), "tool_configs": []})
    assert "unknown_tool_alias" in info.value.codes


def _server_exited(pidfile: Path) -> bool:
    """Whether the stdio MCP server that wrote `pidfile` has exited (and was reaped)."""
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\tZ" in status.read_text()  # exited, not yet reaped


async def test_a_missing_api_key_fails_before_any_mcp_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "mcp.pid"
    monkeypatch.delenv("ROWLOOM_TEST_MISSING_KEY", raising=False)
    cfg = config(
        provider={
            "name": "p",
            "endpoint": "http://127.0.0.1:9/v1",
            "api_key_env": "ROWLOOM_TEST_MISSING_KEY",
        },
        mcp={**STDIO, "env": {"ROWLOOM_TEST_MCP_PIDFILE": str(pidfile)}},
    )
    with pytest.raises(ConfigValidationError) as info:
        await DatasetBuilder(cfg).build(2, run_dir=None, name="t")
    assert info.value.codes == ("missing_api_key_env",)
    assert not pidfile.exists()  # the server was never started


async def test_mcp_server_stops_when_wiring_fails(tmp_path: Path) -> None:
    """A run folder that refuses the run (a finished run there, no --resume) is found once the
    servers are up: they are stopped."""
    pidfile = tmp_path / "mcp.pid"
    cfg = config(mcp={**STDIO, "env": {"ROWLOOM_TEST_MCP_PIDFILE": str(pidfile)}})
    await DatasetBuilder(config()).build(2, run_dir=tmp_path / "run", name="t")
    with pytest.raises(RunFolderError):
        await DatasetBuilder(cfg).build(2, run_dir=tmp_path / "run", name="t")
    assert _server_exited(pidfile)


async def test_mcp_server_stops_when_the_run_is_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "mcp.pid"
    in_call = asyncio.Event()

    async def stuck(self: ModelFacade, *args: Any, **kwargs: Any) -> Any:
        in_call.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(ModelFacade, "converse", stuck)
    cfg = config(mcp={**STDIO, "env": {"ROWLOOM_TEST_MCP_PIDFILE": str(pidfile)}})
    run = asyncio.create_task(DatasetBuilder(cfg).build(2, run_dir=tmp_path / "run", name="t"))
    await in_call.wait()
    assert not _server_exited(pidfile)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert _server_exited(pidfile)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] != "complete"


def test_a_data_designer_config_uses_tools_from_its_settings_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DD keeps MCP servers and tool configs in ~/.data-designer; its config runs unchanged."""
    dd_home = tmp_path / "dd-home"
    dd_home.mkdir()
    monkeypatch.setenv("DATA_DESIGNER_HOME", str(dd_home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    server = {"name": "local", "provider_type": "stdio", "command": "python", "args": [SERVER]}
    (dd_home / "mcp_providers.yaml").write_text(yaml.safe_dump({"providers": [server]}))
    tools = {"tool_alias": "geo", "providers": ["local"], "allow_tools": ["capital"]}
    (dd_home / "tool_configs.yaml").write_text(yaml.safe_dump({"tool_configs": [tools]}))
    country = {"column_type": "sampler", "name": "country", "sampler_type": "category",
               "params": {"sampler_type": "category", "values": ["france", "peru"]}}  # fmt: skip
    answer = {"column_type": "llm-text", "name": "answer", "model_alias": "openai-text",
              "prompt": "What is the capital of {{ country }}?", "tool_alias": "geo",
              "with_trace": "all_messages"}  # fmt: skip
    path = tmp_path / "dd.yaml"
    path.write_text(yaml.safe_dump({"data_designer": {"columns": [country, answer]}}))
    result = Designer(simulate=True).preview(path, 4)
    capitals = {"france": "Paris", "peru": "Lima"}
    assert len(result) == 4
    for c, a, trace in zip(
        result.data["country"], result.data["answer"], result.data["answer__trace"], strict=True
    ):
        assert f"Tool results: {capitals[c]}" in a
        assert [m["role"] for m in trace] == ["user", "assistant", "tool", "assistant"]
