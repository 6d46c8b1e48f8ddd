"""Provider adapters behind the `ModelClient` contract (`base`), and the factory choosing one."""

from __future__ import annotations

from rowloom.clock import Clock
from rowloom.config.models import ModelProvider
from rowloom.models.clients.base import ModelClient

__all__ = ["make_model_client"]


def make_model_client(
    provider: ModelProvider, *, max_connections: int, clock: Clock | None = None
) -> ModelClient:
    """The adapter for `provider.provider_type`: `openai` -> `OpenAICompatibleClient` with a pool
    of `max_connections`; `simulated` -> `SimulatedModelClient` on `clock` (timed waits)."""
    if provider.provider_type == "simulated":
        from rowloom.models.clients.simulated import SimulatedModelClient

        return SimulatedModelClient(provider.name, provider.simulation, clock=clock)
    from rowloom.models.clients.openai_compatible import OpenAICompatibleClient

    assert provider.endpoint is not None  # checked by ModelProvider
    return OpenAICompatibleClient(
        provider.name,
        provider.endpoint,
        api_key=provider.resolve_api_key(),
        max_connections=max_connections,
        extra_headers=provider.extra_headers,
        extra_body=provider.extra_body,
    )
