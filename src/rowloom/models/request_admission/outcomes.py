"""What a lease's holder reports on release, and what release answers.

Only `rate_limited` (a 429, or a 503/529 overload answer) drives decrease and cooldown; every
other kind just returns capacity (provider failures also count in diagnostics). An outcome may
carry the provider's `RateLimitHeaders` (its `x-ratelimit-*` headers), which pace admissions;
`rowloom.provider_wire.parse_retry_after` gives `RequestReleaseOutcome.retry_after_seconds`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from rowloom.observability.events import JsonValue
from rowloom.provider_wire import RateLimitHeaders

_NO_DIAGNOSTICS: Final[Mapping[str, JsonValue]] = MappingProxyType({})


class RequestReleaseOutcomeKind(enum.StrEnum):
    """How one call attempt ended, as request admission needs to know it."""

    SUCCESS = "success"
    RATE_LIMITED = "rate_limited"
    PROVIDER_FAILURE = "provider_failure"
    PROVIDER_TIMEOUT = "provider_timeout"
    LOCAL_CANCELLED = "local_cancelled"
    LOCAL_TIMEOUT = "local_timeout"
    UNEXPECTED_EXCEPTION = "unexpected_exception"


@dataclass(frozen=True, slots=True)
class RequestReleaseOutcome:
    """The outcome a lease is released with, plus status metadata safe for telemetry.

    `rate_limit` is the provider's budget from the answer's headers, when it sent them.
    """

    kind: RequestReleaseOutcomeKind
    retry_after_seconds: float | None = None
    status_code: int | None = None
    error_class: str | None = None
    rate_limit: RateLimitHeaders | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", RequestReleaseOutcomeKind(self.kind))
        ra = self.retry_after_seconds
        if ra is not None and (not math.isfinite(ra) or ra < 0):
            raise ValueError(f"retry_after_seconds must be a finite number >= 0, got {ra}")

    @classmethod
    def success(
        cls, *, status_code: int | None = None, rate_limit: RateLimitHeaders | None = None
    ) -> RequestReleaseOutcome:
        return cls(
            RequestReleaseOutcomeKind.SUCCESS, status_code=status_code, rate_limit=rate_limit
        )

    @classmethod
    def rate_limited(
        cls,
        retry_after_seconds: float | None = None,
        *,
        status_code: int | None = 429,
        error_class: str = "rate_limited",
        rate_limit: RateLimitHeaders | None = None,
    ) -> RequestReleaseOutcome:
        """A 429 (or, with `error_class="provider_overloaded"`, a 503/529 overload answer)."""
        return cls(
            RequestReleaseOutcomeKind.RATE_LIMITED,
            retry_after_seconds=retry_after_seconds,
            status_code=status_code,
            error_class=error_class,
            rate_limit=rate_limit,
        )

    @classmethod
    def provider_failure(
        cls, *, status_code: int | None = None, error_class: str | None = None
    ) -> RequestReleaseOutcome:
        return cls(
            RequestReleaseOutcomeKind.PROVIDER_FAILURE,
            status_code=status_code,
            error_class=error_class,
        )

    @classmethod
    def of(cls, kind: RequestReleaseOutcomeKind | str) -> RequestReleaseOutcome:
        """An outcome of `kind` with no metadata."""
        return cls(RequestReleaseOutcomeKind(kind))
