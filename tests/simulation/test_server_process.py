"""`MockServerProcess`: the one way tests, the harness and load scenarios run the mock provider
in a child process. It binds 127.0.0.1, answers like the in-process simulated client, keeps
its options (a key included) out of the process listing, and always stops cleanly."""

from __future__ import annotations

from pathlib import Path

from rowloom.config.models import SimulationConfig
from rowloom.models.clients.base import ChatRequest
from rowloom.models.clients.openai_compatible import OpenAICompatibleClient
from rowloom.models.clients.simulated import SimulatedModelClient
from rowloom.simulation.process import MockServerProcess
from rowloom.simulation.server import MockServerOptions

CHAT = ChatRequest(
    model="simulated-model",
    messages=({"role": "user", "content": "Write about volcanoes."},),
    max_tokens=24,
    timeout=10.0,
)
KEY = "sk-process-test-0123456789"


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")


async def test_the_child_answers_like_the_in_process_client_and_stops_cleanly() -> None:
    server = MockServerProcess(MockServerOptions(latency_ms=0, seed=3, api_key=KEY))
    with server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        assert server._proc is not None
        assert KEY not in _cmdline(server._proc.pid)  # the options went over stdin
        client = OpenAICompatibleClient("mock", server.url, api_key=KEY, max_connections=1)
        try:
            remote = await client.chat(CHAT)
        finally:
            await client.aclose()
        assert server.stats()["completed"] == 1
    local = await SimulatedModelClient("sim", SimulationConfig(latency_ms=0, seed=3)).chat(CHAT)
    assert remote.text == local.text
    assert server.port is not None and server._proc is None
    assert server.stop() is None  # stopping twice is harmless


def test_a_clean_stop_exits_zero() -> None:
    server = MockServerProcess(MockServerOptions(latency_ms=0)).start()
    assert server.stop() == 0
