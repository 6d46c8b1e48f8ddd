"""`SimulatedModelClient`: the embedded simulated provider, in process, no sockets.

It runs each attempt through the same `ProviderCapacityModel` and `SimulatedResponses` as
`rowloom mock-server`, and raises the same `ProviderError` classes the OpenAI adapter raises for
the equivalent HTTP answers (429 -> `ProviderRateLimitError` with Retry-After, 5xx ->
`ProviderServerError`, no answer within the request's timeout -> `ProviderTimeoutError`).
"""

from __future__ import annotations

from rowloom.clock import Clock
from rowloom.config.models import SimulationConfig
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
    TokenUsage,
    ToolCall,
)
from rowloom.provider_wire import TransportPoolLimits
from rowloom.simulation.capacity import ProviderCapacityModel, ServiceOutcome
from rowloom.simulation.cell_key import current_cell_key
from rowloom.simulation.media import simulated_png
from rowloom.simulation.responses import SimulatedResponses
from rowloom.simulation.turns import SimulatedTurns

__all__ = ["SimulatedModelClient"]


class SimulatedModelClient:
    """A `ModelClient` over the simulated capacity model; one outbound attempt per call.

    `invalid_json_rate` (tests only) makes that fraction of structured answers invalid so
    corrective retries can be exercised. `capacity_model` may be shared with other clients.
    """

    def __init__(
        self,
        provider_name: str,
        config: SimulationConfig | None = None,
        *,
        clock: Clock | None = None,
        invalid_json_rate: float = 0.0,
        capacity_model: ProviderCapacityModel | None = None,
    ) -> None:
        cfg = config if config is not None else SimulationConfig()
        self._provider_name = provider_name
        self._capacity = (
            capacity_model
            if capacity_model is not None
            else ProviderCapacityModel(cfg, clock=clock)
        )
        self._responses = SimulatedResponses(
            seed=cfg.seed,
            embedding_dimensions=cfg.embedding_dimensions,
            invalid_json_rate=invalid_json_rate,
        )
        self._turns = SimulatedTurns(
            self._responses,
            seed=cfg.seed,
            reasoning=cfg.reasoning,
            tool_call_turns=cfg.tool_call_turns,
        )
        self._seed = cfg.seed
        self._image_size = cfg.image_size

    def __repr__(self) -> str:
        return f"SimulatedModelClient(provider={self._provider_name!r})"

    @property
    def provider_name(self) -> str:
        return self._provider_name

    @property
    def transport_pool_limits(self) -> TransportPoolLimits | None:
        """None: there is no transport pool in process."""
        return None

    @property
    def capacity_model(self) -> ProviderCapacityModel:
        """The capacity model (for stats and tests)."""
        return self._capacity

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """One chat attempt: the deterministic answer, or a classified `ProviderError`."""
        outcome = await self._capacity.serve(request.timeout)
        self._raise_for(outcome, "chat")
        turn = self._turns.chat(
            request.model,
            request.messages,
            max_tokens=request.max_tokens,
            response_format=request.response_format,
            tools=request.tools,
            tool_choice=(request.extra_body or {}).get("tool_choice"),
            sample_key=current_cell_key(),
        )
        return ChatResponse(
            text=turn.text,
            usage=TokenUsage(turn.prompt_tokens, turn.completion_tokens, turn.reasoning_tokens),
            rate_limit=outcome.rate_limit,
            reasoning_content=turn.reasoning,
            tool_calls=tuple(ToolCall(c.id, c.name, c.arguments) for c in turn.tool_calls),
            finish_reason=turn.finish_reason,
        )

    async def generate_image(self, request: ImageRequest) -> ImageResponse:
        """One image attempt: a deterministic small PNG, or a classified `ProviderError`."""
        outcome = await self._capacity.serve(request.timeout)
        self._raise_for(outcome, "images")
        png = simulated_png(self._seed, request.model, request.prompt, size=self._image_size)
        return ImageResponse(
            images=(png,),
            usage=TokenUsage(len(request.prompt.split()) + 1, 0),
            rate_limit=outcome.rate_limit,
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """One embedding attempt of `request.dimensions` (or `extra_body["dimensions"]`, else
        the configured size)."""
        dims = request.dimensions or (request.extra_body or {}).get("dimensions")
        outcome = await self._capacity.serve(request.timeout)
        self._raise_for(outcome, "embeddings")
        vectors = self._responses.embed(
            request.model, request.inputs, dimensions=int(dims) if dims is not None else None
        )
        tokens = sum(len(text.split()) + 1 for text in request.inputs)
        return EmbeddingResponse(
            vectors=vectors, usage=TokenUsage(tokens, 0), rate_limit=outcome.rate_limit
        )

    async def aclose(self) -> None:
        """Nothing to close."""

    def _raise_for(self, outcome: ServiceOutcome, route: str) -> None:
        name = self._provider_name
        if outcome.kind == "ok":
            return
        if outcome.kind == "rate_limited":
            raise ProviderRateLimitError(
                f"{name}: {route} rate limited (429)",
                provider=name,
                status_code=429,
                retry_after_seconds=outcome.retry_after_seconds,
                rate_limit=outcome.rate_limit,
            )
        if outcome.kind == "server_error":
            raise ProviderServerError(
                f"{name}: {route} failed (500)",
                provider=name,
                status_code=500,
                rate_limit=outcome.rate_limit,
            )
        raise ProviderTimeoutError(
            f"{name}: {route} got no answer within its timeout",
            provider=name,
            rate_limit=outcome.rate_limit,
        )
