"""The provider wire's value types: rate-limit and Retry-After headers, both directions."""

from __future__ import annotations

import math
from email.utils import formatdate

import pytest

from rowloom.provider_wire import (
    RateLimitHeaders,
    format_duration,
    parse_duration_seconds,
    parse_rate_limit_headers,
    parse_retry_after,
)

NOW = 1_700_000_000.0


def test_retry_after_as_seconds_milliseconds_or_http_date() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": " 0.25 "}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": formatdate(NOW + 7, usegmt=True)}, now=NOW) == 7.0
    assert parse_retry_after({"retry-after": formatdate(NOW - 7, usegmt=True)}, now=NOW) == 0.0
    assert parse_retry_after({}) is None


@pytest.mark.parametrize("bad", ["", "-1", "-0.5", "nan", "inf", "soon", "Wed, 99 Foo 2024"])
def test_a_malformed_or_negative_retry_after_is_ignored(bad: str) -> None:
    """None (not 0): the caller's default cooldown applies instead of retrying at once."""
    assert parse_retry_after({"retry-after": bad}) is None


def test_a_bad_retry_after_ms_falls_back_to_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "-5", "retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "soon"}) is None


@pytest.mark.parametrize("seconds", [0.02, 0.5, 1.0, 1.5, 59.999, 60.0, 361.25, 3725.0])
def test_duration_format_round_trips(seconds: float) -> None:
    parsed = parse_duration_seconds(format_duration(seconds))
    assert parsed is not None and math.isclose(parsed, seconds, abs_tol=0.001)


def test_duration_parsing() -> None:
    assert parse_duration_seconds("6m0s") == 360.0
    assert parse_duration_seconds("1h2m3s") == 3723.0
    assert parse_duration_seconds("20ms") == 0.02
    assert parse_duration_seconds("2.5") == 2.5
    for bad in ("later", "-3", "nan", "5x", None, ""):
        assert parse_duration_seconds(bad) is None


def test_rate_limit_headers_parse_and_write_back() -> None:
    parsed = parse_rate_limit_headers(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29000",
            "x-ratelimit-reset-tokens": "2s",
        }
    )
    assert parsed == RateLimitHeaders(500, 499, 0.12, 30000, 29000, 2.0)
    assert parse_rate_limit_headers(parsed.as_headers()) == RateLimitHeaders(500, 499, 0.12)
    assert parse_rate_limit_headers({"content-type": "application/json"}) is None
    assert RateLimitHeaders(remaining_requests=3).as_headers() == {}


def test_bad_header_values_count_as_missing_and_never_raise() -> None:
    parsed = parse_rate_limit_headers(
        {"x-ratelimit-remaining-requests": "-4", "x-ratelimit-limit-requests": "60"}
    )
    assert parsed == RateLimitHeaders(limit_requests=60)
    with pytest.raises(ValueError, match="remaining_requests"):
        RateLimitHeaders(remaining_requests=-1)
    with pytest.raises(ValueError, match="reset_requests_seconds"):
        RateLimitHeaders(reset_requests_seconds=math.inf)
