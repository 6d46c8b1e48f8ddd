"""Model providers and model configs (public, pydantic v2)."""

from __future__ import annotations

import os
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, model_validator

GenerationKind: TypeAlias = Literal["chat", "embedding", "image"]
ProviderType: TypeAlias = Literal["openai", "simulated"]
LimitRule: TypeAlias = Literal["aimd", "latency"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    def resolve_api_key(self) -> str | None:
        """The key from `api_key` or the environment variable; None when neither is set."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return None


class InferenceParameters(_Strict):
    """Per-model generation parameters sent with every request."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    timeout: float | None = Field(None, gt=0, description="seconds per request attempt")
    extra_body: dict[str, Any] | None = None


class ModelConfig(_Strict):
    """A model alias: which model, on which provider, with which parameters and static cap."""

    alias: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    model: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    generation_kind: GenerationKind = "chat"
    inference_parameters: InferenceParameters = Field(default_factory=InferenceParameters)
    max_parallel_requests: int = Field(4, ge=1, le=100_000)
    limit_rule: LimitRule = Field(
        "aimd",
        description="adaptive request limit rule: loss-based AIMD, or latency-aware for servers "
        "that queue instead of answering 429",
    )
