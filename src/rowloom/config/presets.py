"""Built-in provider presets and default model aliases, and how a config falls back on them.

A model names a provider; a column names a model alias (and a tool alias, whose tool config
names MCP servers). When a config does not declare one, it resolves from the user's files (read
by the loader: the providers file, then Data Designer's own settings), then from the built-ins.
What a config declares itself always wins. The default aliases are the reference engine's
(`nvidia-text`, `openai-text`, ...), so a first config needs no `models:` block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BUILTIN_PROVIDERS",
    "DEFAULT_MODELS",
    "referenced_model_aliases",
    "with_defaults",
]


def _provider(name: str, endpoint: str, key_env: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "provider_type": "openai", "endpoint": endpoint}
    if key_env is not None:
        entry["api_key_env"] = key_env
    return entry


BUILTIN_PROVIDERS: Mapping[str, Mapping[str, Any]] = {
    p["name"]: p
    for p in (
        _provider("nvidia", "https://integrate.api.nvidia.com/v1", "NVIDIA_API_KEY"),
        _provider("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        _provider("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        _provider("anthropic", "https://api.anthropic.com/v1/", "ANTHROPIC_API_KEY"),
        _provider("vllm", "http://127.0.0.1:8000/v1", None),
        _provider("llamacpp", "http://127.0.0.1:8080/v1", None),
    )
}
"""Provider presets by name: endpoint and API-key variable. `vllm` and `llamacpp` are local
servers on their default ports, without a key (a providers file may add one)."""


def _model(
    alias: str,
    model: str,
    provider: str,
    kind: str = "chat",
    **params: Any,
) -> dict[str, Any]:
    return {
        "alias": alias,
        "model": model,
        "provider": provider,
        "generation_kind": kind,
        "max_parallel_requests": 4,
        "inference_parameters": params,
    }


_NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
_REASONING = {"reasoning_effort": "medium"}

DEFAULT_MODELS: Mapping[str, Mapping[str, Any]] = {
    m["alias"]: m
    for m in (
        _model(
            "nvidia-text",
            "nvidia/nemotron-3.5-lightning-30b-a3b",
            "nvidia",
            temperature=1.0,
            top_p=0.95,
            extra_body=_NO_THINKING,
        ),
        _model(
            "nvidia-reasoning",
            "nvidia/nemotron-3-super-120b-a12b",
            "nvidia",
            temperature=1.0,
            top_p=0.95,
            extra_body=_REASONING,
        ),
        _model(
            "nvidia-vision",
            "nvidia/nemotron-3-nano-omni-30b-a3b-reasoning",
            "nvidia",
            temperature=0.6,
            top_p=0.95,
        ),
        _model(
            "nvidia-embedding",
            "nvidia/nemotron-3-embed-1b",
            "nvidia",
            "embedding",
            extra_body={"input_type": "query"},
        ),
        _model("openai-text", "gpt-4.1", "openai", temperature=0.85, top_p=0.95),
        _model("openai-reasoning", "gpt-5", "openai", extra_body=_REASONING),
        _model("openai-vision", "gpt-5", "openai", extra_body=_REASONING),
        _model("openai-embedding", "text-embedding-3-large", "openai", "embedding"),
        _model(
            "openrouter-text",
            "nvidia/nemotron-3-nano-30b-a3b",
            "openrouter",
            temperature=1.0,
            top_p=1.0,
        ),
        _model(
            "openrouter-reasoning", "openai/gpt-oss-20b", "openrouter", temperature=0.35, top_p=0.95
        ),
        _model(
            "openrouter-vision",
            "nvidia/nemotron-3-nano-omni-30b-a3b-reasoning:free",
            "openrouter",
            temperature=0.6,
            top_p=0.95,
        ),
        _model("openrouter-embedding", "openai/text-embedding-3-large", "openrouter", "embedding"),
    )
}
"""The default model aliases (the reference engine's names and settings, version 0.9.7)."""


def referenced_model_aliases(columns: Any) -> list[str]:
    """Model aliases the column entries of a config mapping name, in first-use order."""
    found: dict[str, None] = {}
    for column in columns if isinstance(columns, list) else ():
        if not isinstance(column, Mapping):
            continue
        alias = column.get("model_alias")
        if isinstance(alias, str):
            found[alias] = None
        aliases = column.get("model_aliases")
        if isinstance(aliases, list):
            found.update((a, None) for a in aliases if isinstance(a, str))
    return list(found)


def with_defaults(
    data: Mapping[str, Any],
    *,
    providers: Iterable[Mapping[str, Any]] = (),
    models: Iterable[Mapping[str, Any]] = (),
    tool_configs: Iterable[Mapping[str, Any]] = (),
    mcp_providers: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """`data` (a config mapping) with what it names but does not declare filled in: the models
    its columns name, the providers its models name, the tool configs its columns name and the
    MCP providers those name; from the given catalogs (the user's files) first, then the
    built-ins. Names found nowhere are left for validation to report."""
    out = dict(data)
    columns = _entries(out.get("columns"))
    _fill(
        out,
        "models",
        "alias",
        referenced_model_aliases(out.get("columns")),
        {**DEFAULT_MODELS, **_by_key(models, "alias")},
    )
    _fill(
        out,
        "providers",
        "name",
        [m.get("provider") for m in _entries(out.get("models"))],
        {**BUILTIN_PROVIDERS, **_by_key(providers, "name")},
    )
    _fill(
        out,
        "tool_configs",
        "tool_alias",
        [c.get("tool_alias") for c in columns],
        _by_key(tool_configs, "tool_alias"),
    )
    servers = [
        name
        for tool in _entries(out.get("tool_configs"))
        if isinstance(tool.get("providers"), list)
        for name in tool["providers"]
    ]
    _fill(out, "mcp_providers", "name", servers, _by_key(mcp_providers, "name"))
    return out


def _fill(
    out: dict[str, Any],
    section: str,
    key: str,
    wanted: Iterable[Any],
    catalog: Mapping[str, Mapping[str, Any]],
) -> None:
    """Append to `out[section]` the catalog entries of `wanted` names it does not declare."""
    declared = _entries(out.get(section))
    have = _names(declared, key)
    extra = [
        dict(catalog[name])
        for name in dict.fromkeys(n for n in wanted if isinstance(n, str))
        if name not in have and name in catalog
    ]
    if extra and isinstance(out.get(section, []), list | None):
        out[section] = [*declared, *extra]


def _entries(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def _names(entries: Iterable[Mapping[str, Any]], key: str) -> set[str]:
    return {e[key] for e in entries if isinstance(e.get(key), str)}


def _by_key(entries: Iterable[Mapping[str, Any]], key: str) -> dict[str, Mapping[str, Any]]:
    return {str(e[key]): e for e in entries if isinstance(e, Mapping) and key in e}
