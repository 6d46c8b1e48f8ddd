"""Canonical provider/model identity: the one place an alias becomes an endpoint.

Everything that needs "which endpoint does this alias hit" (scheduling metadata, the request
executor, request admission, the capacity plan) asks a `ModelResourceCatalog`;
`ModelResourceCatalog.scheduling_metadata` is the one place model aliases become scheduling
metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from rowloom.config.models import GenerationKind, ModelConfig, ModelProvider
from rowloom.config.scheduling import SchedulingMetadata, SchedulingMetadataError

MULTI_ENDPOINT_NAMESPACE = "rowloom"
"""`custom_model` namespace used when a generator's aliases hit different endpoints."""


@dataclass(frozen=True, slots=True, order=True)
class ProviderModelKey:
    """A canonical provider/model endpoint, never an alias."""

    provider_name: str
    model_id: str

    def as_key_str(self) -> str:
        """`provider/model` for logs, events and JSON keys."""
        return f"{self.provider_name}/{self.model_id}"


@dataclass(frozen=True, slots=True)
class ProviderModelStaticCap:
    """The static concurrency cap of one endpoint: the minimum over its aliases' caps."""

    key: ProviderModelKey
    cap: int
    aliases: tuple[str, ...]
    raw_caps: Mapping[str, int]
    merge_rule: str = "min_same_endpoint"


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """An alias resolved to its endpoint, config and provider."""

    alias: str
    key: ProviderModelKey
    generation_kind: GenerationKind
    model: ModelConfig
    provider: ModelProvider = field(repr=False)


class UnknownModelAliasError(KeyError):
    """An alias that no model config declares."""

    def __init__(self, alias: str, known: Sequence[str]) -> None:
        super().__init__(alias)
        self.alias = alias
        self.known = tuple(known)

    def __str__(self) -> str:
        return f"unknown model alias {self.alias!r}; known aliases: {', '.join(self.known)}"


class ModelResourceCatalog:
    """Alias -> endpoint resolution and static caps for one dataset config."""

    def __init__(self, models: Sequence[ModelConfig], providers: Sequence[ModelProvider]) -> None:
        by_name = {p.name: p for p in providers}
        resolved: dict[str, ResolvedModel] = {}
        for m in models:
            provider = by_name[m.provider]
            resolved[m.alias] = ResolvedModel(
                alias=m.alias,
                key=ProviderModelKey(m.provider, m.model),
                generation_kind=m.generation_kind,
                model=m,
                provider=provider,
            )
        self._resolved = MappingProxyType(resolved)
        self._providers = MappingProxyType(by_name)
        caps: dict[ProviderModelKey, ProviderModelStaticCap] = {}
        for key in sorted({r.key for r in resolved.values()}):
            members = sorted(a for a, r in resolved.items() if r.key == key)
            raw = {a: resolved[a].model.max_parallel_requests for a in members}
            caps[key] = ProviderModelStaticCap(
                key=key, cap=max(1, min(raw.values())), aliases=tuple(members), raw_caps=raw
            )
        self._caps = MappingProxyType(caps)

    def resolve(self, alias: str) -> ResolvedModel:
        """The endpoint behind `alias`; raises `UnknownModelAliasError`."""
        try:
            return self._resolved[alias]
        except KeyError:
            raise UnknownModelAliasError(alias, sorted(self._resolved)) from None

    def aliases(self) -> tuple[str, ...]:
        """Every declared alias, sorted."""
        return tuple(sorted(self._resolved))

    def provider(self, name: str) -> ModelProvider:
        """A provider config by name."""
        return self._providers[name]

    def providers(self) -> Mapping[str, ModelProvider]:
        """Every provider config by name."""
        return self._providers

    def static_cap(self, key: ProviderModelKey) -> ProviderModelStaticCap:
        """The merged static cap of one endpoint."""
        return self._caps[key]

    def static_caps(self) -> Mapping[ProviderModelKey, ProviderModelStaticCap]:
        """Every endpoint's merged static cap, in key order."""
        return self._caps

    def scheduling_metadata(
        self, aliases: Iterable[str], generation_kind: str | None = None
    ) -> SchedulingMetadata:
        """Scheduling metadata for a generator that calls the models behind `aliases`.

        Aliases are deduplicated and sorted, so equivalent configs give equal metadata.
        `generation_kind` defaults to the first alias's model's.

        - One endpoint: `("model", provider, model_id, generation_kind)`, weight = the
          endpoint's static cap (minimum `max_parallel_requests` over its aliases).
        - Several endpoints: `("custom_model", "rowloom", "<p/m>+<p/m>...", "1")`, weight = the
          smallest of their static caps, with diagnostics naming the endpoints.

        Raises `SchedulingMetadataError` (no fallback) for no aliases or an unknown alias.
        """
        names = sorted(set(aliases))
        if not names:
            raise SchedulingMetadataError("no_model_aliases", "a model generator needs an alias")
        resolved = []
        for alias in names:
            try:
                resolved.append(self.resolve(alias))
            except UnknownModelAliasError as err:
                raise SchedulingMetadataError(
                    "unknown_model_alias",
                    str(err),
                    diagnostics={"alias": alias, "known_aliases": list(err.known)},
                ) from None
        kind = generation_kind or resolved[0].generation_kind
        endpoints = sorted({r.key for r in resolved})
        if len(endpoints) == 1:
            static = self._caps[endpoints[0]]
            return SchedulingMetadata(
                "model",
                ("model", static.key.provider_name, static.key.model_id, kind),
                static.cap,
                diagnostics={
                    "aliases": names,
                    "endpoint": static.key.as_key_str(),
                    "raw_caps": dict(static.raw_caps),
                    "merge_rule": static.merge_rule,
                }
                if len(names) > 1
                else {},
            )
        caps = {key.as_key_str(): self._caps[key].cap for key in endpoints}
        return SchedulingMetadata(
            "custom_model",
            ("custom_model", MULTI_ENDPOINT_NAMESPACE, "+".join(caps), "1"),
            min(caps.values()),
            diagnostics={
                "reason": "aliases_resolve_to_different_endpoints",
                "aliases": names,
                "endpoints": list(caps),
                "static_caps": caps,
                "generation_kind": kind,
            },
        )
