"""Adaptive limit rules: the small pure arithmetic behind one resource's concurrency limit.

A rule only answers "given this finished request, what is the limit now?" It knows nothing of
leases, waiters, cooldowns, cascades, ramps or asyncio; time arrives inside each sample. This
mirrors the Limit / AIMDLimit split of Netflix concurrency-limits: this module holds the
contract and the V1 AIMD rule; `settling_aimd.py` (the default) and `latency_limit.py` are
other implementations of `RequestLimitRule`, chosen per resource by `rules.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from rowloom.models.request_admission.config import RequestAdmissionConfig
from rowloom.models.request_admission.resources import RequestResourceKey

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RequestLimitSample:
    """One finished request as a limit rule sees it.

    `rate_limited` is the drop signal (a 429, or a 503/529 overload); `latency_seconds` is
    lease hold time, `in_flight` the resource's in-flight count after release, `lease_limit`
    the limit in force when the lease was granted and `lease_in_flight` the resource's
    in-flight count right after the grant, the lease included (None when unknown).
    """

    now: float
    rate_limited: bool
    latency_seconds: float | None = None
    in_flight: int = 0
    lease_limit: int | None = None
    lease_in_flight: int | None = None


class RequestLimitRule(Protocol):
    """A limit in `[1, max_limit]` updated by samples; deterministic, no I/O, no clock reads."""

    @property
    def name(self) -> str:
        """The rule's name as the capacity plan reports it (`aimd`, `aimd_v1`, `latency`)."""
        ...

    @property
    def limit(self) -> int: ...

    @property
    def max_limit(self) -> int: ...

    def update(self, sample: RequestLimitSample) -> int:
        """Fold one sample in; return the new limit."""
        ...

    def reset(self, limit: int, max_limit: int) -> int:
        """Set the limit and its ceiling (clamped to `[1, max_limit]`); return the new limit."""
        ...


class BoundedLimit:
    """The state every rule shares: a limit kept in `[1, max_limit]`, and its accessors."""

    __slots__ = ("_limit", "_max")

    def __init__(self, limit: int, max_limit: int) -> None:
        self._max = 1
        self._limit = 1
        self._bound(limit, max_limit)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def max_limit(self) -> int:
        return self._max

    def _bound(self, limit: int, max_limit: int) -> int:
        """Set the ceiling and the limit clamped to `[1, max_limit]`; return the limit."""
        if max_limit < 1:
            raise ValueError("max_limit must be >= 1")
        self._max = max_limit
        self._limit = max(1, min(max_limit, limit))
        return self._limit


class AimdLimitRule(BoundedLimit):
    """Additive increase, multiplicative decrease: the V1 rule (`aimd_v1`).

    A rate-limited sample sets `limit = max(1, floor(limit * decrease_factor))` and restarts the
    success count; every `successes_until_increase` successful samples add `increase_step`, up to
    `max_limit`.
    """

    __slots__ = ("_factor", "_needed", "_step", "_successes")

    def __init__(
        self,
        initial_limit: int,
        max_limit: int,
        *,
        decrease_factor: float = 0.75,
        increase_step: int = 1,
        successes_until_increase: int = 25,
    ) -> None:
        if not 0 < decrease_factor < 1:
            raise ValueError("decrease_factor must be in (0, 1)")
        if increase_step < 1 or successes_until_increase < 1 or max_limit < 1:
            raise ValueError("increase_step, successes_until_increase and max_limit must be >= 1")
        super().__init__(initial_limit, max_limit)
        self._factor = decrease_factor
        self._step = increase_step
        self._needed = successes_until_increase
        self._successes = 0

    @property
    def name(self) -> str:
        return "aimd_v1"

    @property
    def successes(self) -> int:
        """Successful samples counted toward the next increase."""
        return self._successes

    def update(self, sample: RequestLimitSample) -> int:
        if sample.rate_limited:
            self._successes = 0
            self._limit = max(1, math.floor(self._limit * self._factor + _EPSILON))
            return self._limit
        self._successes += 1
        if self._successes >= self._needed:
            self._successes = 0
            self._limit = min(self._max, self._limit + self._step)
        return self._limit

    def reset(self, limit: int, max_limit: int) -> int:
        self._successes = 0
        return self._bound(limit, max_limit)


RequestLimitRuleFactory: TypeAlias = Callable[
    [RequestResourceKey, int, int, RequestAdmissionConfig], RequestLimitRule
]
"""Builds the rule of one resource from (resource, initial_limit, effective_max, config)."""
