"""Loading a config the way a user hands it over: rowloom's own or Data Designer's (recognised
by shape), with undeclared models and providers resolved from the user's providers file and
the built-in presets, optionally with every provider replaced by the simulated one.
"""

from __future__ import annotations

import os
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
from rowloom.config.dataset import DatasetConfig, column_model_aliases
from rowloom.config.errors import ConfigFileError
from rowloom.config.models import ModelConfig, ModelProvider, SimulationConfig
from rowloom.config.presets import with_defaults

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

SIMULATED_LATENCY_MS = 20.0
"""Mean latency of `--simulate` answers: quick, yet requests still overlap and queue."""


@dataclass(frozen=True)
class ProvidersFile:
    """The user's providers and default models (native mappings), and where they came from."""

    providers: tuple[Mapping[str, Any], ...] = ()
    models: tuple[Mapping[str, Any], ...] = ()
    path: Path | None = field(default=None, compare=False)


def default_providers_path() -> Path:
    """`$XDG_CONFIG_HOME/rowloom/providers.yaml` (`~/.config/...` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rowloom" / "providers.yaml"


def data_designer_home() -> Path:
    """Data Designer's settings folder (`$DATA_DESIGNER_HOME`, else `~/.data-designer`)."""
    return Path(os.environ.get("DATA_DESIGNER_HOME") or Path.home() / ".data-designer")


def read_providers_file(path: str | Path | None = None) -> ProvidersFile:
    """The user's providers and default models, in layers (later ones win): Data Designer's own
    `model_providers.yaml` and `model_configs.yaml` when they exist, then the providers file:
    `path`, or the default location when it exists (an explicit `path` must exist).

    A providers file holds `providers:` (rowloom's shape, or Data Designer's with `api_key`
    naming a variable) and `models:` (rowloom's) or `model_configs:` (Data Designer's)."""
    home = data_designer_home()
    layers = [home / "model_providers.yaml", home / "model_configs.yaml"]
    explicit = path is not None
    user = Path(path) if path is not None else default_providers_path()
    if explicit and not user.is_file():
        raise ConfigFileError(f"providers file {user} does not exist")
    providers: list[Mapping[str, Any]] = []
    models: list[Mapping[str, Any]] = []
    for layer in [*layers, user]:
        if layer.is_file():
            more_providers, more_models = _read_one(layer)
            providers += more_providers
            models += more_models
    return ProvidersFile(tuple(providers), tuple(models), user if user.is_file() else None)


def _read_one(p: Path) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"cannot read providers file {p}: {exc}") from None
    if data is None:
        return [], []
    if not isinstance(data, Mapping) or set(data) - {"providers", "models", "model_configs"}:
        raise ConfigFileError(
            f"providers file {p} must be a mapping with 'providers', 'models' or 'model_configs'"
        )
    issues = Issues()
    where = p.name
    providers = [
        _provider_entry(e, f"{where}: providers[{i}]", issues)
        for i, e in enumerate(_list(data, "providers", p))
    ]
    models: list[Mapping[str, Any]] = [
        dict(e) for e in _list(data, "models", p) if isinstance(e, Mapping)
    ]
    for i, entry in enumerate(_list(data, "model_configs", p)):
        mapped = map_model_config(entry, f"{where}: model_configs[{i}]", issues)
        if mapped is not None:
            models.append(mapped)
    issues.raise_if_any()
    return [x for x in providers if x is not None], models


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
    return with_defaults(native, providers=extra.providers, models=extra.models)


def load_config(
    source: str | Path,
    *,
    providers: str | Path | ProvidersFile | None = None,
    simulate: bool = False,
) -> DatasetConfig:
    """Load a config file (YAML or JSON; rowloom's or Data Designer's) into a `DatasetConfig`.

    `providers` is a providers file (default: the user's, when it exists); `simulate=True`
    serves every model from the embedded simulated provider (no key, no network)."""
    extra = providers if isinstance(providers, ProvidersFile) else read_providers_file(providers)
    config = DatasetConfig.from_file(source, adapt=lambda data: native_document(data, extra))
    return simulated(config) if simulate else config


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
    send, so the run exercises the same admission limits without a key or a network."""
    caps: dict[str, int] = {}
    for m in config.models:
        caps[m.provider] = caps.get(m.provider, 0) + m.max_parallel_requests
    providers = [
        ModelProvider(
            name=p.name,
            provider_type="simulated",
            simulation=SimulationConfig(
                capacity=max(1, caps.get(p.name, 1)),
                latency_ms=latency_ms,
                overload="queue",
                seed=config.effective_seed,
            ),
        )
        for p in config.providers
    ]
    return config.model_copy(update={"providers": providers})
