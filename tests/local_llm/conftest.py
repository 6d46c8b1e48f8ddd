"""Fixtures for the local-LLM tests: the real local llama.cpp model server (session-wide)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_server import LlamaServerHandle, missing_requirement, start_llama_server


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServerHandle]:
    """llama.cpp's OpenAI-compatible server with SmolLM2-135M; skips when not installed."""
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(f"local llama.cpp server unavailable: {reason}")
    handle = start_llama_server()
    try:
        yield handle
    finally:
        handle.stop()
