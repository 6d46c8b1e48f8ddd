"""What both ends of the provider wire share: rate-limit headers and the HTTP pool.

The model clients read these headers, the simulated provider writes them, request admission
paces on them and the capacity plan reports the pool, so the value types live here, below all
of them (this module imports nothing from rowloom):

- `RateLimitHeaders`: a provider's `x-ratelimit-*` answer headers, parsed
  (`parse_rate_limit_headers`) and written (`RateLimitHeaders.as_headers`);
- `parse_retry_after`: the wait a 429 or 503 asks for (`retry-after-ms`, `Retry-After`);
- `TransportPoolLimits`: the HTTP connection pool an adapter really uses.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Final

_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_SCALE: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """A provider's `x-ratelimit-*` answer headers (any may be missing).

    `remaining_requests` is what the provider still accepts before `reset_requests_seconds`
    pass; `limit_requests` is its per-minute request limit (the tokens fields alike). Counts
    are >= 0 and resets finite and >= 0 (`ValueError` otherwise; the parser drops bad values).
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_seconds: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("limit_requests", "remaining_requests", "limit_tokens", "remaining_tokens"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        for name in ("reset_requests_seconds", "reset_tokens_seconds"):
            reset = getattr(self, name)
            if reset is not None and (not math.isfinite(reset) or reset < 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {reset}")

    def as_headers(self) -> dict[str, str]:
        """The request headers as a provider sends them (none without `limit_requests`)."""
        if self.limit_requests is None:
            return {}
        return {
            "x-ratelimit-limit-requests": str(self.limit_requests),
            "x-ratelimit-remaining-requests": str(self.remaining_requests or 0),
            "x-ratelimit-reset-requests": format_duration(self.reset_requests_seconds or 0.0),
        }


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitHeaders | None:
    """The `x-ratelimit-*` headers, or None when the answer carries none of them.

    A malformed or negative value counts as missing: a bad header never fails a call.
    """
    values = (
        _count(headers, "x-ratelimit-limit-requests"),
        _count(headers, "x-ratelimit-remaining-requests"),
        parse_duration_seconds(headers.get("x-ratelimit-reset-requests")),
        _count(headers, "x-ratelimit-limit-tokens"),
        _count(headers, "x-ratelimit-remaining-tokens"),
        parse_duration_seconds(headers.get("x-ratelimit-reset-tokens")),
    )
    if values == _NO_VALUES:  # most answers: nothing to build
        return None
    return RateLimitHeaders(*values)


_NO_VALUES: Final = (None,) * 6


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, else `Retry-After` (delay-seconds or HTTP-date).

    None when both are absent or malformed (negative, not finite, unparseable: the caller's
    default cooldown then applies); an HTTP-date in the past gives 0.0. `now` (wall-clock
    epoch seconds) defaults to `time.time()`: an HTTP-date is wall-clock time.
    """
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    seconds = _seconds(raw)
    if seconds is not None or _is_number(raw):
        return seconds
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    reference = time.time() if now is None else now
    return max(0.0, moment.timestamp() - reference)


def parse_duration_seconds(text: str | None) -> float | None:
    """`x-ratelimit-reset-*` values: plain seconds (`"1.5"`) or Go-style (`"6m0s"`, `"20ms"`)."""
    if not text:
        return None
    text = text.strip()
    if _is_number(text):
        return _seconds(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _DURATION_SCALE[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """OpenAI's reset-header style: `20ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds < 1.0:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600.0)
    minutes, secs = divmod(rest, 60.0)
    text = f"{round(secs, 3):g}s"
    if minutes or hours:
        text = f"{int(minutes)}m{text}"
    if hours:
        text = f"{int(hours)}h{text}"
    return text


@dataclass(frozen=True, slots=True)
class TransportPoolLimits:
    """The HTTP connection pool an adapter really uses (the capacity plan reports it)."""

    max_connections: int | None
    max_keepalive_connections: int | None
    kind: str = "httpx"
    extra: Mapping[str, Any] = field(default_factory=dict)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _seconds(text: str | None) -> float | None:
    """A finite number >= 0, or None (absent, malformed, negative or not finite)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _count(headers: Mapping[str, str], name: str) -> int | None:
    value = _seconds(headers.get(name))
    return None if value is None else int(value)
