"""Request resource vocabulary: what one concrete model call asks request admission for.

A `RequestResourceKey` is a canonical provider/model endpoint plus a `RequestDomain`; it is never
an alias. `RequestAdmissionItem` is one call attempt's request for a lease: its resource, its
fairness group, an optional queue-wait timeout and opaque event context for telemetry.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from rowloom.config.models import GenerationKind
from rowloom.models.resources import ProviderModelKey
from rowloom.observability.events import JsonValue

_NO_CORRELATION: Final[Mapping[str, JsonValue]] = MappingProxyType({})


class RequestDomain(enum.StrEnum):
    """The kind of call made against an endpoint; each domain has its own adaptive limit."""

    CHAT = "chat"
    EMBEDDING = "embedding"
    IMAGE = "image"
    HEALTHCHECK = "healthcheck"

    @classmethod
    def for_generation_kind(cls, kind: GenerationKind) -> RequestDomain:
        """The domain a model config's `generation_kind` calls in."""
        return cls(kind)


@dataclass(frozen=True, slots=True, order=True)
class RequestResourceKey:
    """A canonical provider/model endpoint plus a request domain (never an alias)."""

    provider_model: ProviderModelKey
    domain: RequestDomain

    @classmethod
    def of(
        cls, provider_name: str, model_id: str, domain: RequestDomain | str
    ) -> RequestResourceKey:
        """Build a key from its three primitive parts."""
        return cls(ProviderModelKey(provider_name, model_id), RequestDomain(domain))

    @property
    def provider_name(self) -> str:
        return self.provider_model.provider_name

    @property
    def model_id(self) -> str:
        return self.provider_model.model_id

    def as_key_str(self) -> str:
        """`provider/model/domain` for logs, events and JSON keys."""
        return f"{self.provider_model.as_key_str()}/{self.domain.value}"

    def as_json(self) -> dict[str, str]:
        """The key as a JSON object of its primitive parts."""
        return {
            "provider_name": self.provider_name,
            "model_id": self.model_id,
            "domain": self.domain.value,
        }


@dataclass(frozen=True, slots=True)
class RequestGroupSpec:
    """A request fairness group: waiters are ordered weighted-fair across groups.

    In V1 the key is the request resource key, so each provider/model/domain is one group.
    """

    key: RequestResourceKey
    weight: int = 1

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError(f"a request group weight must be >= 1, got {self.weight}")


@dataclass(frozen=True, slots=True)
class RequestEventContext:
    """Telemetry-only context of one call attempt, captured by the request executor.

    `captured_correlation` is the JSON mapping of `RuntimeCorrelation.as_json()` at capture
    time; request admission treats all of it as opaque and only copies it into events.
    """

    captured_correlation: Mapping[str, JsonValue] = field(default_factory=lambda: _NO_CORRELATION)
    task_execution_id: str | None = None
    request_attempt_id: str | None = None


@dataclass(frozen=True, slots=True)
class RequestAdmissionItem:
    """One concrete call attempt asking for a request lease.

    `timeout` is the longest the attempt may wait in the request queue, in seconds; None uses
    the controller's default queue-wait timeout (which may itself be None: wait until shutdown).
    """

    resource: RequestResourceKey
    group: RequestGroupSpec
    timeout: float | None = None
    event_context: RequestEventContext | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and (math.isnan(self.timeout) or self.timeout < 0):
            raise ValueError(f"a queue-wait timeout must be >= 0, got {self.timeout}")

    @classmethod
    def for_resource(
        cls,
        resource: RequestResourceKey,
        *,
        weight: int = 1,
        timeout: float | None = None,
        event_context: RequestEventContext | None = None,
    ) -> RequestAdmissionItem:
        """An item in the V1 default group (the group key is the resource key)."""
        return cls(resource, RequestGroupSpec(resource, weight), timeout, event_context)
