"""Provider presets, default model aliases, the providers file, extra headers/body over real
HTTP, and `simulate=True` (models keep their kind and limits; no key needed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rowloom import Designer
from rowloom.config import ConfigError, ConfigValidationError, DatasetConfig, ModelProvider
from rowloom.config.errors import ConfigFileError
from rowloom.config.presets import BUILTIN_PROVIDERS, DEFAULT_MODELS
from rowloom.interface.loading import load_config, prepare_config, read_providers_file
from rowloom.models.clients import make_model_client
from rowloom.models.clients.base import ChatRequest, EmbeddingRequest
from rowloom.simulation.cell_key import CELL_KEY_HEADER, bound_cell_key

NO_MODELS = {
    "columns": [
        {"name": "topic", "column_type": "sampler", "sampler_type": "category",
         "params": {"values": ["tea", "maps"]}},
        {"name": "line", "column_type": "llm_text", "model_alias": "openai-text",
         "prompt": "One line about {{ topic }}."},
        {"name": "vec", "column_type": "embedding", "model_alias": "nvidia-embedding",
         "target_column": "line"},
    ]
}  # fmt: skip


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for key in ("OPENAI_API_KEY", "NVIDIA_API_KEY", "OPENROUTER_API_KEY", "DATA_DESIGNER_HOME"):
        monkeypatch.delenv(key, raising=False)
    return home


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if path.suffix == ".json" else _yaml(data))
    return path


def _yaml(data: Any) -> str:
    import yaml

    return str(yaml.safe_dump(data))


def test_a_first_config_needs_no_models_block(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path / "c.yaml", NO_MODELS))
    models = {m.alias: m for m in cfg.models}
    assert set(models) == {"openai-text", "nvidia-embedding"}
    assert models["openai-text"].model == "gpt-4.1"
    assert models["nvidia-embedding"].generation_kind == "embedding"
    assert {p.name for p in cfg.providers} == {"openai", "nvidia"}
    with pytest.raises(ConfigValidationError, match="OPENAI_API_KEY"):
        cfg.check_environment()


def test_presets_cover_the_reference_aliases_and_local_servers() -> None:
    assert {"nvidia", "openai", "openrouter", "anthropic", "vllm", "llamacpp"} <= set(
        BUILTIN_PROVIDERS
    )
    for kind in ("text", "reasoning", "vision", "embedding"):
        for provider in ("nvidia", "openai", "openrouter"):
            assert f"{provider}-{kind}" in DEFAULT_MODELS
    assert BUILTIN_PROVIDERS["anthropic"]["api_key_env"] == "ANTHROPIC_API_KEY"
    assert "api_key_env" not in BUILTIN_PROVIDERS["vllm"]


def test_the_user_providers_file_overrides_presets(tmp_path: Path, isolated_home: Path) -> None:
    _write(
        isolated_home / ".config" / "rowloom" / "providers.yaml",
        {
            "providers": [{"name": "openai", "endpoint": "http://127.0.0.1:9/v1"}],
            "models": [{"alias": "openai-text", "model": "my-model", "provider": "openai"}],
        },
    )
    cfg = load_config(_write(tmp_path / "c.yaml", NO_MODELS))
    assert {m.alias: m.model for m in cfg.models}["openai-text"] == "my-model"
    assert {p.name: p.endpoint for p in cfg.providers}["openai"] == "http://127.0.0.1:9/v1"
    assert {p.name: p.endpoint for p in cfg.providers}["nvidia"].startswith("https://integrate")


def test_an_explicit_providers_file_in_data_designers_shape(tmp_path: Path) -> None:
    extra = _write(
        tmp_path / "dd_providers.yaml",
        {
            "providers": [
                {"name": "openai", "endpoint": "https://gw.example/v1", "provider_type": "openai",
                 "api_key": "GATEWAY_KEY", "extra_headers": {"X-Team": "data"},
                 "extra_body": None},
            ],
            "model_configs": [
                {"alias": "nvidia-embedding", "model": "e5", "provider": "openai",
                 "inference_parameters": {"generation_type": "embedding", "dimensions": 32}},
            ],
        },
    )  # fmt: skip
    cfg = load_config(_write(tmp_path / "c.yaml", NO_MODELS), providers=extra)
    openai = {p.name: p for p in cfg.providers}["openai"]
    assert openai.api_key_env == "GATEWAY_KEY" and openai.extra_headers == {"X-Team": "data"}
    assert "data" not in repr(openai)  # header values may be credentials
    emb = {m.alias: m for m in cfg.models}["nvidia-embedding"]
    assert emb.inference_parameters.dimensions == 32
    with pytest.raises(ConfigFileError, match="does not exist"):
        read_providers_file(tmp_path / "absent.yaml")
    bad = _write(tmp_path / "bad.yaml", {"providers": "all"})
    with pytest.raises(ConfigError):
        read_providers_file(bad)


def test_python_api_configs_resolve_defaults_too(tmp_path: Path) -> None:
    cfg = DatasetConfig.model_validate(NO_MODELS)  # built in Python, no models at all
    ready = prepare_config(cfg)
    assert {m.alias for m in ready.models} == {"openai-text", "nvidia-embedding"}
    result = Designer(simulate=True).preview(cfg, 4)
    assert len(result) == 4
    assert len(set(result.data["line"])) > 1  # rows with similar prompts differ
    assert len(result.data["vec"][0]) == 16


def test_simulate_keeps_kinds_and_limits_and_needs_no_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", NO_MODELS)
    real = load_config(path)
    sim = load_config(path, simulate=True)
    assert [m.model_dump() for m in sim.models] == [m.model_dump() for m in real.models]
    assert {p.provider_type for p in sim.providers} == {"simulated"}
    assert {p.name for p in sim.providers} == {p.name for p in real.providers}
    caps = {p.name: p.simulation.capacity for p in sim.providers if p.simulation}
    assert caps == {"openai": 4, "nvidia": 4}
    sim.check_environment()  # no key variable needed


@asynccontextmanager
async def capturing(seen: list[Any]) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(({k.lower(): v for k, v in request.headers.items()}, body))
        if request.path.endswith("/embeddings"):
            dims = body.get("dimensions", 3)
            return web.json_response({"data": [{"index": 0, "embedding": [0.0] * dims}]})
        return web.json_response({"choices": [{"message": {"content": "ok"}}]})

    app = web.Application()
    app.router.add_post("/v1/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_extra_headers_and_body_reach_the_provider() -> None:
    seen: list[Any] = []
    async with capturing(seen) as url:
        provider = ModelProvider(
            name="gw",
            endpoint=url,
            extra_headers={"X-Team": "data", "X-Both": "provider"},
            extra_body={"route": "fast", "both": "provider"},
        )
        client = make_model_client(provider, max_connections=2)
        try:
            request = ChatRequest(
                model="m",
                messages=({"role": "user", "content": "hi"},),
                extra_body={"both": "model"},
                extra_headers={"X-Both": "model", "X-Model": "1"},
            )
            with bound_cell_key("answer", 7):
                await client.chat(request)
            await client.embed(EmbeddingRequest(model="e", inputs=("x",), dimensions=5))
        finally:
            await client.aclose()
    (headers, body), (_, embed_body) = seen
    assert headers["x-team"] == "data" and headers["x-model"] == "1"
    assert headers["x-both"] == "model"  # a model's own header wins over its provider's
    assert body["route"] == "fast" and body["both"] == "model"
    assert headers[CELL_KEY_HEADER.lower()] == "answer:7"  # loopback only
    assert embed_body["dimensions"] == 5


async def test_remote_providers_never_get_the_cell_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider off loopback (reached here through the HTTP proxy the environment names,
    itself on loopback) is never sent the cell key header."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: list[Any] = []
    async with capturing(seen) as url:
        monkeypatch.setenv("HTTP_PROXY", url.removesuffix("/v1"))
        provider = ModelProvider(name="remote", endpoint="http://api.example.com/v1")
        client = make_model_client(provider, max_connections=1)
        try:
            with bound_cell_key("answer", 7):
                await client.chat(
                    ChatRequest(model="m", messages=({"role": "user", "content": "x"},))
                )
        finally:
            await client.aclose()
    ((headers, _),) = seen
    assert headers["host"] == "api.example.com"  # it went through the proxy
    assert CELL_KEY_HEADER.lower() not in headers


def test_data_designers_own_settings_are_a_fallback_layer(
    tmp_path: Path, isolated_home: Path
) -> None:
    dd_home = isolated_home / ".data-designer"
    _write(
        dd_home / "model_providers.yaml",
        {"providers": [{"name": "openai", "endpoint": "https://dd.example/v1",
                        "provider_type": "openai", "api_key": "DD_KEY"}]},
    )  # fmt: skip
    _write(
        dd_home / "model_configs.yaml",
        {"model_configs": [{"alias": "openai-text", "model": "dd-model", "provider": "openai",
                            "inference_parameters": {"temperature": 0.3}}]},
    )  # fmt: skip
    cfg = load_config(_write(tmp_path / "c.yaml", NO_MODELS))
    assert {m.alias: m.model for m in cfg.models}["openai-text"] == "dd-model"
    assert {p.name: p.api_key_env for p in cfg.providers}["openai"] == "DD_KEY"
    _write(  # rowloom's own providers file wins over Data Designer's
        isolated_home / ".config" / "rowloom" / "providers.yaml",
        {"models": [{"alias": "openai-text", "model": "mine", "provider": "openai"}]},
    )
    cfg = load_config(_write(tmp_path / "c.yaml", NO_MODELS))
    assert {m.alias: m.model for m in cfg.models}["openai-text"] == "mine"
    assert {p.name: p.endpoint for p in cfg.providers}["openai"] == "https://dd.example/v1"


def test_tool_configs_and_mcp_servers_resolve_from_settings_files(isolated_home: Path) -> None:
    dd_home = isolated_home / ".data-designer"
    _write(
        dd_home / "mcp_providers.yaml",
        {"providers": [{"name": "search", "provider_type": "streamable_http",
                        "endpoint": "http://127.0.0.1:9/mcp", "api_key": "SEARCH_KEY"}]},
    )  # fmt: skip
    _write(
        dd_home / "tool_configs.yaml",
        {"tool_configs": [{"tool_alias": "research", "providers": ["search", "local"]}]},
    )
    _write(
        isolated_home / ".config" / "rowloom" / "providers.yaml",
        {"mcp_providers": [{"name": "local", "provider_type": "stdio", "command": "python"}]},
    )
    files = read_providers_file()
    doc = {"columns": [{"name": "a", "column_type": "llm_text", "tool_alias": "research"}]}
    from rowloom.config.presets import with_defaults

    filled = with_defaults(doc, **files.catalogs())
    assert [t["tool_alias"] for t in filled["tool_configs"]] == ["research"]
    servers = {m["name"]: m for m in filled["mcp_providers"]}
    assert set(servers) == {"search", "local"}
    assert servers["search"]["api_key_env"] == "SEARCH_KEY" and "api_key" not in servers["search"]
    assert with_defaults({"columns": []}, **files.catalogs()) == {"columns": []}
