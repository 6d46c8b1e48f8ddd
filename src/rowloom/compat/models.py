"""Data Designer model configs and model providers -> rowloom `ModelConfig`/`ModelProvider`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from rowloom.compat._fields import Fields, Issues
from rowloom.config.models import InferenceParameters, ModelConfig

_KINDS = {"chat-completion": "chat", "embedding": "embedding", "image": "image"}
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_PARAMS_BY_KIND = {
    "chat": ("temperature", "top_p", "max_tokens"),
    "embedding": ("encoding_format", "dimensions"),
    "image": (),
}


def map_model_config(entry: Any, location: str, issues: Issues) -> dict[str, Any] | None:
    """A DD `ModelConfig` mapping as a native model mapping (None when it is not a mapping)."""
    if not isinstance(entry, Mapping):
        issues.add("dd_invalid", location, None, "a model config must be a mapping")
        return None
    f = Fields(entry, location, issues)
    out: dict[str, Any] = {"alias": f.get("alias"), "model": f.get("model")}
    out["provider"] = f.get("provider")
    params = f.get("inference_parameters", {})
    if isinstance(params, Mapping):
        kind, mapped, cap = _inference_parameters(f.child("inference_parameters", params))
        out.update(generation_kind=kind, max_parallel_requests=cap, inference_parameters=mapped)
    else:
        f.invalid("inference_parameters", "must be a mapping")
    skip = f.get("skip_health_check", False)
    if "skip_health_check" in ModelConfig.model_fields and skip:
        out["skip_health_check"] = skip
    # else: rowloom runs no health check before a run unless asked, which is what `true` asks
    f.done()
    return out


def _inference_parameters(f: Fields) -> tuple[str, dict[str, Any], int]:
    declared = f.get("generation_type", None)
    if declared is None:  # DD infers the kind from the fields present
        embedding = f.has("encoding_format") or f.has("dimensions")
        declared = "embedding" if embedding else "chat-completion"
    kind = _KINDS.get(str(declared))
    if kind is None:
        f.invalid("generation_type", f"unknown generation_type {declared!r}; one of {list(_KINDS)}")
        kind = "chat"
    cap = f.get("max_parallel_requests", 4)
    out: dict[str, Any] = {}
    for key in ("timeout", "extra_body"):
        value = f.get(key, None)
        if value is not None:
            out[key] = value
    for key in _PARAMS_BY_KIND[kind]:
        value = f.get(key, None)
        if key == "encoding_format":
            if value not in ("float", "base64", None):
                f.invalid(key, "must be 'float' or 'base64'")
            continue  # rowloom always asks for floats and stores vectors either way
        if value is not None:
            out[key] = value
    _check_native(f, out)
    f.done()
    return kind, out, cap if isinstance(cap, int) else 4


def _check_native(f: Fields, out: dict[str, Any]) -> None:
    """A distribution-valued temperature/top_p needs rowloom's support for it."""
    try:
        InferenceParameters.model_validate(out)
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            if isinstance(out.get(key), Mapping) and key in ("temperature", "top_p"):
                f.not_supported(key, f"{key} given as a distribution")
                out.pop(key, None)


def map_provider(entry: Any, location: str, issues: Issues) -> dict[str, Any] | None:
    """A DD `ModelProvider` mapping (as in its model_providers.yaml) as a native provider."""
    if not isinstance(entry, Mapping):
        issues.add("dd_invalid", location, None, "a provider must be a mapping")
        return None
    f = Fields(entry, location, issues)
    out: dict[str, Any] = {"name": f.get("name"), "provider_type": "openai"}
    endpoint = f.get("endpoint")
    kind = str(f.get("provider_type", "openai")).lower()
    if kind == "anthropic":
        endpoint = _anthropic_openai_endpoint(f, endpoint)
    elif kind != "openai":
        f.not_supported("provider_type", f"provider_type {kind!r} (openai or anthropic)")
    out["endpoint"] = endpoint
    key = f.get("api_key", None)
    if isinstance(key, str) and key:
        if _ENV_NAME.match(key):
            out["api_key_env"] = key  # DD resolves a name like this from the environment
        else:
            out["api_key"] = key
    for name in ("extra_body", "extra_headers"):
        value = f.get(name, None)
        if value is not None:
            out[name] = value
    f.done()
    return out


def _anthropic_openai_endpoint(f: Fields, endpoint: Any) -> Any:
    """Anthropic's native API is reached through its OpenAI-compatible endpoint."""
    host = urlparse(str(endpoint)).hostname if endpoint else None
    if host == "api.anthropic.com":
        return "https://api.anthropic.com/v1/"
    f.not_supported(
        "provider_type",
        "provider_type 'anthropic' on a non-Anthropic host (rowloom speaks the OpenAI-compatible "
        "API; point the endpoint at an OpenAI-compatible URL with provider_type 'openai')",
    )
    return endpoint
