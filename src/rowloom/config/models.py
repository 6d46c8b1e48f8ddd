"""Model providers and model configs (public, pydantic v2)."""

from __future__ import annotations

import os
import random
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, model_validator

GenerationKind: TypeAlias = Literal["chat", "embedding", "image"]

DEFAULT_REQUEST_TIMEOUT_SECONDS: dict[str, float] = {
    "chat": 120.0,
    "embedding": 30.0,
    "image": 300.0,
}
"""Seconds per request attempt when a model's `inference_parameters.timeout` is unset, by
generation kind (a health check uses the chat value)."""
ProviderType: TypeAlias = Literal["openai", "simulated"]
LimitRule: TypeAlias = Literal["aimd", "latency"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _masked(headers: Any) -> Any:
    """Header values may carry credentials: a repr shows only their names."""
    return {k: "***" for k in headers} if isinstance(headers, dict) else headers


class SimulationConfig(_Strict):
    """The embedded simulated provider's capacity model and response settings."""

    capacity: int = Field(32, ge=1, description="concurrent requests served at once")
    latency_ms: float = Field(200.0, ge=0, description="mean service latency per request")
    latency_distribution: Literal["fixed", "lognormal"] = "fixed"
    latency_sigma: float = Field(0.25, ge=0, description="lognormal sigma")
    overload: Literal["reject", "queue"] = "reject"
    retry_after_s: float = Field(1.0, ge=0, description="Retry-After sent with a 429")
    rpm: int | None = Field(None, ge=1, description="requests-per-minute limit (429 beyond it)")
    fail_rate: float = Field(0.0, ge=0, le=1, description="fraction of requests answered 5xx")
    timeout_rate: float = Field(0.0, ge=0, le=1, description="fraction of requests that hang")
    seed: int = 0
    embedding_dimensions: int = Field(16, ge=1, le=4096)
    reasoning: Literal["none", "field", "inline"] = Field(
        "none",
        description="reasoning in answers: none, a separate reasoning_content field, or an "
        "inline <think> block",
    )
    tool_call_turns: int = Field(
        1, ge=0, le=100, description="turns that call a tool when a request offers tools"
    )
    image_size: int = Field(8, ge=1, le=512, description="side of generated PNGs, in pixels")


class ModelProvider(_Strict):
    """An OpenAI-compatible endpoint (`openai`) or the embedded simulated one (`simulated`).

    API keys come from `api_key_env` (an environment variable name). A literal `api_key` is
    accepted but never written back out, logged or shown in a repr.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    provider_type: ProviderType = "openai"
    endpoint: str | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = None
    simulation: SimulationConfig | None = None
    extra_headers: dict[str, str] | None = Field(
        None, description="HTTP headers sent with every request to this provider"
    )
    extra_body: dict[str, Any] | None = Field(
        None, description="fields merged into every request body (a model's own win)"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelProvider:
        if self.provider_type == "openai" and not self.endpoint:
            raise ValueError("an openai provider needs an endpoint (e.g. http://127.0.0.1:8000/v1)")
        if self.provider_type == "simulated" and self.simulation is None:
            object.__setattr__(self, "simulation", SimulationConfig())
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("set api_key_env or api_key, not both")
        return self

    @field_serializer("api_key")
    def _hide_key(self, value: SecretStr | None) -> None:
        return None

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (_masked(value) if name == "extra_headers" else value)

    def resolve_api_key(self) -> str | None:
        """The key from `api_key` or the environment variable; None when neither is set."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return None


class UniformDistributionParams(_Strict):
    """`low` (inclusive) and `high` (exclusive) bounds."""

    low: float
    high: float

    @model_validator(mode="after")
    def _range(self) -> UniformDistributionParams:
        if self.high <= self.low:
            raise ValueError("low must be less than high")
        return self


class UniformDistribution(_Strict):
    """A value drawn uniformly from `[low, high)` for each request."""

    distribution_type: Literal["uniform"] = "uniform"
    params: UniformDistributionParams

    def sample(self, rng: random.Random) -> float:
        """One draw from `rng`."""
        return rng.uniform(self.params.low, self.params.high)

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value a draw can take."""
        return self.params.low, self.params.high


class ManualDistributionParams(_Strict):
    """Values to draw from, with optional weights (equal when unset)."""

    values: list[float] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights(self) -> ManualDistributionParams:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("values and weights must have the same length")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be non-negative with a positive sum")
        return self


class ManualDistribution(_Strict):
    """A value drawn from a fixed list (optionally weighted) for each request."""

    distribution_type: Literal["manual"] = "manual"
    params: ManualDistributionParams

    def sample(self, rng: random.Random) -> float:
        """One draw from `rng`."""
        p = self.params
        return float(rng.choices(p.values, weights=p.weights)[0])

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value a draw can take."""
        return min(self.params.values), max(self.params.values)


Distribution: TypeAlias = Annotated[
    UniformDistribution | ManualDistribution, Field(discriminator="distribution_type")
]
"""An inference parameter sampled per request (Data Designer's `distribution_type` shapes)."""


def _in_range(
    name: str,
    value: float | UniformDistribution | ManualDistribution | None,
    low: float,
    high: float,
) -> None:
    if value is None or isinstance(value, int | float):
        return  # scalars are checked by their field constraints
    lo, hi = value.bounds()
    if lo < low or hi > high:
        raise ValueError(f"{name} must be within [{low}, {high}]")


class InferenceParameters(_Strict):
    """Per-model generation parameters sent with every request.

    `temperature` and `top_p` may be a distribution (`uniform` or `manual`): each request
    draws its own value, deterministically from the run seed and the cell and messages it is
    for, so a rerun sends the same values and a retry of one request the same value.
    """

    temperature: Annotated[float, Field(ge=0, le=2)] | Distribution | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | Distribution | None = None
    max_tokens: int | None = Field(None, ge=1)
    timeout: float | None = Field(
        None,
        gt=0,
        description="seconds per request attempt (default by generation kind: chat 120, "
        "embedding 30, image 300)",
    )
    extra_body: dict[str, Any] | None = None
    extra_headers: dict[str, str] | None = Field(
        None, description="HTTP headers sent with this model's requests (over the provider's)"
    )
    dimensions: int | None = Field(
        None, ge=1, le=65_536, description="embedding models: the vector size to ask for"
    )

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (_masked(value) if name == "extra_headers" else value)

    @model_validator(mode="after")
    def _ranges(self) -> InferenceParameters:
        _in_range("temperature", self.temperature, 0.0, 2.0)
        _in_range("top_p", self.top_p, 0.0, 1.0)
        return self


class ModelPrice(_Strict):
    """Price per million tokens, for the estimated cost of a run (reasoning tokens are
    billed as completion tokens, as providers count them)."""

    prompt_per_million: float = Field(ge=0)
    completion_per_million: float = Field(ge=0)
    currency: str = Field("USD", min_length=1, max_length=8)


class ModelConfig(_Strict):
    """A model alias: which model, on which provider, with which parameters and static cap."""

    alias: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    model: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    generation_kind: GenerationKind = "chat"
    inference_parameters: InferenceParameters = Field(default_factory=InferenceParameters)
    max_parallel_requests: int = Field(4, ge=1, le=100_000)
    skip_health_check: bool | None = Field(
        None, description="true: `rowloom models check` and `create --check-models` skip it"
    )
    price: ModelPrice | None = Field(
        None, description="price per million tokens; gives the run's estimated cost"
    )
    limit_rule: LimitRule = Field(
        "aimd",
        description="adaptive request limit rule: loss-based AIMD, or latency-aware for servers "
        "that queue instead of answering 429",
    )
