"""Loading a config the way a user hands it over: rowloom's own or Data Designer's (recognised
by shape), with undeclared models and providers resolved from the user's providers file and
the built-in presets, optionally with every provider replaced by the simulated one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rowloom.compat import (
    from_data_designer,
    is_data_designer_config,
    map_model_config,
    map_provider,
)
from rowloom.compat._fields import Issues
from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigFileError
from rowloom.config.models import ModelConfig, ModelProvider, SimulationConfig
from rowloom.config.personas import data_designer_home
from rowloom.config.presets import with_defaults
from rowloom.config.references import column_model_aliases

__all__ = [
    "ProvidersFile",
    "data_designer_home",
    "default_providers_path",
    "load_config",
    "native_document",
    "prepare_config",
    "read_providers_file",
    "simulated",
]

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SIMULATED_LATENCY_MS = 20.0
"""Mean latency of `--simulate` answers: quick, yet requests still overlap and queue."""


@dataclass(frozen=True)
class ProvidersFile:
    """The user's providers and default models (native mappings), and where they came from."""

    providers: tuple[Mapping[str, Any], ...] = ()
    models: tuple[Mapping[str, Any], ...] = ()
    path: Path | None = field(default=None, compare=False)
    tool_configs: tuple[Mapping[str, Any], ...] = ()
    mcp_providers: tuple[Mapping[str, Any], ...] = ()

    def catalogs(self) -> dict[str, tuple[Mapping[str, Any], ...]]:
        """The keyword arguments of `with_defaults`."""
        return {
            "providers": self.providers,
            "models": self.models,
            "tool_configs": self.tool_configs,
            "mcp_providers": self.mcp_providers,
        }


def default_providers_path() -> Path:
    """`$XDG_CONFIG_HOME/rowloom/providers.yaml` (`~/.config/...` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rowloom" / "providers.yaml"


def read_providers_file(path: str | Path | None = None) -> ProvidersFile:
    """The user's providers, default models, tool configs and MCP servers, in layers (later ones
    win): Data Designer's own `model_providers.yaml`, `model_configs.yaml`, `mcp_providers.yaml`
    and `tool_configs.yaml` when they exist, then the providers file: `path`, or the default
    location when it exists (an explicit `path` must exist).

    A providers file holds `providers:` (rowloom's shape, or Data Designer's with `api_key`
    naming a variable), `models:` (rowloom's) or `model_configs:` (Data Designer's),
    `tool_configs:` and `mcp_providers:`."""
    home = data_designer_home()
    explicit = path is not None
    user = Path(path) if path is not None else default_providers_path()
    if explicit and not user.is_file():
        raise ConfigFileError(f"providers file {user} does not exist")
    layers = [
        (home / "model_providers.yaml", False),
        (home / "model_configs.yaml", False),
        (home / "mcp_providers.yaml", True),
        (home / "tool_configs.yaml", False),
        (user, False),
    ]
    found: dict[str, list[Mapping[str, Any]]] = {}
    for layer, mcp_file in layers:
        if layer.is_file():
            for key, entries in _read_one(layer, mcp_file).items():
                found.setdefault(key, []).extend(entries)
    return ProvidersFile(
        tuple(found.get("providers", ())),
        tuple(found.get("models", ())),
        user if user.is_file() else None,
        tuple(found.get("tool_configs", ())),
        tuple(found.get("mcp_providers", ())),
    )


_FILE_KEYS = {"providers", "models", "model_configs", "tool_configs", "mcp_providers"}


def _read_one(p: Path, mcp_file: bool) -> dict[str, list[Mapping[str, Any]]]:
    """One settings file's entries by section (Data Designer's `mcp_providers.yaml` lists its
    MCP servers under `providers:`)."""
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"cannot read providers file {p}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping) or set(data) - _FILE_KEYS:
        raise ConfigFileError(
            f"providers file {p} must be a mapping with any of {sorted(_FILE_KEYS)}"
        )
    issues = Issues()
    where = p.name
    out: dict[str, list[Mapping[str, Any]]] = {
        "tool_configs": [dict(e) for e in _list(data, "tool_configs", p) if isinstance(e, Mapping)],
        "models": [dict(e) for e in _list(data, "models", p) if isinstance(e, Mapping)],
    }
    servers = _list(data, "providers", p) if mcp_file else _list(data, "mcp_providers", p)
    out["mcp_providers"] = [_mcp_entry(e) for e in servers if isinstance(e, Mapping)]
    if not mcp_file:
        entries = [
            _provider_entry(e, f"{where}: providers[{i}]", issues)
            for i, e in enumerate(_list(data, "providers", p))
        ]
        out["providers"] = [e for e in entries if e is not None]
    for i, entry in enumerate(_list(data, "model_configs", p)):
        mapped = map_model_config(entry, f"{where}: model_configs[{i}]", issues)
        if mapped is not None:
            out["models"].append(mapped)
    issues.raise_if_any()
    return out


def _mcp_entry(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """An MCP server entry; Data Designer's `api_key: NAME_OF_A_VARIABLE` names a variable."""
    key = entry.get("api_key")
    if isinstance(key, str) and "api_key_env" not in entry and _ENV_NAME.match(key):
        rest = {k: v for k, v in entry.items() if k != "api_key"}
        return {**rest, "api_key_env": key}
    return entry


def _list(data: Mapping[str, Any], key: str, path: Path) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ConfigFileError(f"providers file {path}: '{key}' must be a list")
    return value


def _provider_entry(entry: Any, where: str, issues: Issues) -> Mapping[str, Any] | None:
    """A native provider mapping; Data Designer's shape (`api_key` naming a variable) too."""
    if (
        isinstance(entry, Mapping)
        and not ({"api_key_env", "simulation"} & set(entry))
        and ("api_key" in entry or str(entry.get("provider_type")).lower() == "anthropic")
    ):
        return map_provider(entry, where, issues)
    if not isinstance(entry, Mapping):
        issues.add("invalid_provider", where, None, "must be a mapping")
        return None
    return entry


def native_document(
    data: Mapping[str, Any], providers: ProvidersFile | None = None
) -> Mapping[str, Any]:
    """A loaded document as rowloom's config mapping: Data Designer's mapped, and undeclared
    models/providers filled from `providers` and the built-in presets."""
    native = from_data_designer(data) if is_data_designer_config(data) else data
    extra = providers or ProvidersFile()
    return with_defaults(native, **extra.catalogs())


def load_config(
    source: str | Path,
    *,
    providers: str | Path | ProvidersFile | None = None,
    simulate: bool = False,
) -> DatasetConfig:
    """Load a config file (YAML or JSON; rowloom's or Data Designer's) into a `DatasetConfig`.

    `providers` is a providers file (default: the user's, when it exists); `simulate=True`
    serves every model from the embedded simulated provider (no key, no network), including
    models whose provider is declared nowhere (Data Designer's recipes often pass providers
    in Python)."""
    extra = providers if isinstance(providers, ProvidersFile) else read_providers_file(providers)

    def adapt(data: Mapping[str, Any]) -> Mapping[str, Any]:
        native = native_document(data, extra)
        return _with_simulated_stand_ins(native) if simulate else native

    config = DatasetConfig.from_file(source, adapt=adapt)
    return simulated(config) if simulate else config


def _with_simulated_stand_ins(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """`data` with a simulated provider for each provider its models name but nobody declares."""
    models = data.get("models")
    providers = data.get("providers")
    if not isinstance(models, list) or not isinstance(providers, list | None):
        return data  # malformed: left for validation to report
    declared = {p.get("name") for p in providers or () if isinstance(p, Mapping)}
    missing = {m.get("provider") for m in models if isinstance(m, Mapping)} - declared
    stand_ins = [
        {"name": name, "provider_type": "simulated"}
        for name in sorted(n for n in missing if isinstance(n, str))
    ]
    return {**data, "providers": [*(providers or ()), *stand_ins]} if stand_ins else data


def prepare_config(
    config: DatasetConfig | str | Path,
    *,
    providers: str | Path | ProvidersFile | None = None,
    simulate: bool = False,
) -> DatasetConfig:
    """A path is loaded (`load_config`); a `DatasetConfig` gets the models and providers it
    names but does not declare (from the providers file, then the presets), then is
    simulated when asked."""
    if not isinstance(config, DatasetConfig):
        return load_config(config, providers=providers, simulate=simulate)
    skeleton = {
        "columns": [{"model_alias": a} for c in config.columns for a in column_model_aliases(c)],
        "models": [{"alias": m.alias, "provider": m.provider} for m in config.models],
        "providers": [{"name": p.name} for p in config.providers],
    }
    if _names_missing(skeleton):
        extra = (
            providers if isinstance(providers, ProvidersFile) else read_providers_file(providers)
        )
        filled = with_defaults(skeleton, providers=extra.providers, models=extra.models)
        new_models = [ModelConfig.model_validate(m) for m in filled["models"][len(config.models) :]]
        new_providers = [
            ModelProvider.model_validate(p) for p in filled["providers"][len(config.providers) :]
        ]
        config = config.model_copy(
            update={
                "models": [*config.models, *new_models],
                "providers": [*config.providers, *new_providers],
            }
        )
        config.validate_static()
    return simulated(config) if simulate else config


def _names_missing(skeleton: Mapping[str, Any]) -> bool:
    """Whether a column names an undeclared model, or a model an undeclared provider."""
    models = {m["alias"] for m in skeleton["models"]}
    providers = {p["name"] for p in skeleton["providers"]}
    return any(c["model_alias"] not in models for c in skeleton["columns"]) or any(
        m["provider"] not in providers for m in skeleton["models"]
    )


def simulated(config: DatasetConfig, *, latency_ms: float = SIMULATED_LATENCY_MS) -> DatasetConfig:
    """`config` with every provider replaced by the embedded simulated one of the same name.

    Models keep their alias, model id, generation kind, `max_parallel_requests` and inference
    parameters; each simulated provider serves as many requests at once as its models may
    send, so the run exercises the same admission limits without a key or a network. A
    provider serving a column with `extract_reasoning_content` answers with a separate
    `reasoning_content`, as a reasoning model's server does, so that column gets values."""
    caps: dict[str, int] = {}
    for m in config.models:
        caps[m.provider] = caps.get(m.provider, 0) + m.max_parallel_requests
    reasoning = _reasoning_providers(config)
    providers = [
        ModelProvider(
            name=p.name,
            provider_type="simulated",
            simulation=SimulationConfig(
                capacity=max(1, caps.get(p.name, 1)),
                latency_ms=latency_ms,
                overload="queue",
                seed=config.effective_seed,
                reasoning="field" if p.name in reasoning else "none",
            ),
        )
        for p in config.providers
    ]
    return config.model_copy(update={"providers": providers})


def _reasoning_providers(config: DatasetConfig) -> set[str]:
    """The providers of the models that columns keeping their reasoning call."""
    provider_of = {m.alias: m.provider for m in config.models}
    return {
        provider_of[alias]
        for c in config.columns
        if getattr(c, "extract_reasoning_content", None)
        for alias in column_model_aliases(c)
        if alias in provider_of
    }
