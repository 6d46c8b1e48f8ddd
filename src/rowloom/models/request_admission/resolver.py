"""`RequestResourceResolver`: the one canonicalization from a model alias to a request resource.

The metadata resolver, the request executor, the capacity plan and request admission all ask
this resolver (built on `ModelResourceCatalog`), so aliases can never bypass an endpoint's cap.
"""

from __future__ import annotations

from collections.abc import Mapping

from rowloom.models.request_admission.resources import RequestDomain, RequestResourceKey
from rowloom.models.resources import ModelResourceCatalog, ProviderModelKey, ProviderModelStaticCap


class RequestResourceResolver:
    """Alias -> `RequestResourceKey` and static caps, over one dataset's model catalog."""

    __slots__ = ("_catalog", "_resources")

    def __init__(self, catalog: ModelResourceCatalog) -> None:
        self._catalog = catalog
        declared = {
            RequestResourceKey(
                catalog.resolve(alias).key,
                RequestDomain.for_generation_kind(catalog.resolve(alias).generation_kind),
            )
            for alias in catalog.aliases()
        }
        self._resources = tuple(sorted(declared))

    @property
    def catalog(self) -> ModelResourceCatalog:
        """The model catalog this resolver canonicalizes against."""
        return self._catalog

    def provider_model(self, alias: str) -> ProviderModelKey:
        """The canonical endpoint behind `alias`; raises `UnknownModelAliasError`."""
        return self._catalog.resolve(alias).key

    def resolve(self, alias: str, domain: RequestDomain | str | None = None) -> RequestResourceKey:
        """The request resource a call through `alias` uses.

        `domain` defaults to the alias's generation kind (chat, embedding or image); pass
        `RequestDomain.HEALTHCHECK` for health probes. Raises `UnknownModelAliasError`.
        """
        resolved = self._catalog.resolve(alias)
        chosen = (
            RequestDomain.for_generation_kind(resolved.generation_kind)
            if domain is None
            else RequestDomain(domain)
        )
        return RequestResourceKey(resolved.key, chosen)

    def resources(self) -> tuple[RequestResourceKey, ...]:
        """Every resource the catalog's aliases declare (endpoint x generation domain), sorted."""
        return self._resources

    def static_cap(self, key: ProviderModelKey | RequestResourceKey) -> ProviderModelStaticCap:
        """The merged static cap of an endpoint (shared by all domains of that endpoint)."""
        pm = key.provider_model if isinstance(key, RequestResourceKey) else key
        return self._catalog.static_cap(pm)

    def static_caps(self) -> Mapping[ProviderModelKey, ProviderModelStaticCap]:
        """Every endpoint's merged static cap, in key order."""
        return self._catalog.static_caps()
