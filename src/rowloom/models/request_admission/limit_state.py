"""`AdaptiveRequestLimitState`: one resource's adaptive limit around a pure `RequestLimitRule`.

The state adds what the rule does not know: the effective max, cooldown after a rate limit,
rate-limit cascades (one cut per cascade), the startup ramp, and recovery tracking. Every method
takes `now` from the caller and returns the transitions it caused, so the controller can emit
events after its own state change is complete. No asyncio, no clock reads.

Cooldown modes. Retry-After tells the client that got the 429 when to retry that request; it
says nothing about the requests the provider is serving. `block_all` (V1) still blocks every new
admission of the resource until the cooldown ends, which with a 1 s Retry-After and 200 ms
latency idles the resource for most of a second per 429. `reduced_limit` (the default) applies
the cut at once and lets admissions continue up to the reduced limit while the rate-limited
request itself waits out Retry-After (the executor's retry does that); only when a lease granted
during the cooldown, at no higher concurrency than the one refused first, is rate limited again
(the cut did not help: a request-rate or quota limit, or other resources saturating a shared
provider, not this resource's concurrency) does the cooldown block every admission until it
ends, as in V1, and such a repeat refused below the current limit does not cut it again: one
burst of refusals at low concurrency costs one cut and one cooldown, as in V1, not a cut each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from rowloom.models.request_admission.limits import RequestLimitRule, RequestLimitSample

LIMIT_DECREASED: Final = "request_limit_decreased"
LIMIT_INCREASED: Final = "request_limit_increased"
SOFT_CEILING_RECOVERED: Final = "request_soft_ceiling_recovered"
FULLY_RECOVERED: Final = "request_fully_recovered"
EFFECTIVE_CAP_CHANGED: Final = "request_effective_cap_changed"


@dataclass(frozen=True, slots=True)
class LimitTransition:
    """One observable change of a resource's limit state; `event_kind` is the request event."""

    event_kind: str
    before: int
    after: int
    cause: str


@dataclass(frozen=True, slots=True)
class RateLimitEffect:
    """What one rate-limited release did: a cut (new cascade) or not, and the transitions."""

    new_cascade: bool
    ramp_aborted: bool
    transitions: tuple[LimitTransition, ...]
    cooldown_started: bool = False
    blocked: bool = False


_NONE: Final[tuple[LimitTransition, ...]] = ()


class AdaptiveRequestLimitState:
    """The adaptive limit of one request resource.

    Guarantees: `1 <= current_limit <= effective_max`; a rate limit cuts the limit at most once
    per cascade (a 429 from a lease granted above the current limit does not cut again, nor
    does a repeat refusal in the cooldown below the current limit); only successes outside
    cooldown and after the ramp feed the rule; the ramp rises linearly from 1 to the initial
    limit over `startup_ramp_seconds` and a rate limit aborts it. Admission is blocked only
    until `blocked_until`, which never outlasts the cooldown (see the module docstring for the
    two cooldown modes).
    """

    __slots__ = (
        "_block_all",
        "_blocked_until",
        "_ceiling",
        "_consecutive",
        "_cooldown_seconds",
        "_cooldown_until",
        "_degraded",
        "_effective_max",
        "_initial",
        "_limit",
        "_provider_failures",
        "_ramp_seconds",
        "_ramp_start",
        "_ramping",
        "_rate_limited_total",
        "_refused_in_flight",
        "_rule",
    )

    def __init__(
        self,
        rule: RequestLimitRule,
        *,
        initial_limit: int,
        effective_max: int,
        cooldown_seconds: float,
        startup_ramp_seconds: float,
        now: float,
        cooldown_mode: str = "block_all",
    ) -> None:
        if cooldown_mode not in ("block_all", "reduced_limit"):
            raise ValueError(f"unknown cooldown mode {cooldown_mode!r}")
        self._block_all = cooldown_mode == "block_all"
        self._rule = rule
        self._effective_max = effective_max
        self._initial = max(1, min(effective_max, initial_limit))
        self._rule.reset(self._initial, effective_max)
        self._cooldown_seconds = cooldown_seconds
        self._ramp_seconds = startup_ramp_seconds
        self._ramp_start = now
        self._ramping = startup_ramp_seconds > 0 and self._initial > 1
        self._limit = self._ramp_value(now) if self._ramping else self._rule.limit
        self._blocked_until: float | None = None
        self._cooldown_until: float | None = None
        self._refused_in_flight: int | None = None
        self._ceiling: int | None = None
        self._degraded = False
        self._consecutive = 0
        self._rate_limited_total = 0
        self._provider_failures = 0

    # -- reads ---------------------------------------------------------------------------

    @property
    def current_limit(self) -> int:
        return self._limit

    @property
    def effective_max(self) -> int:
        return self._effective_max

    @property
    def initial_limit(self) -> int:
        return self._initial

    @property
    def rule(self) -> RequestLimitRule:
        return self._rule

    @property
    def cooldown_mode(self) -> str:
        return "block_all" if self._block_all else "reduced_limit"

    @property
    def rate_limit_ceiling(self) -> int | None:
        """The limit in force when the last cascade began, until the limit rises past it."""
        return self._ceiling

    @property
    def consecutive_rate_limits(self) -> int:
        return self._consecutive

    @property
    def rate_limited_total(self) -> int:
        return self._rate_limited_total

    @property
    def provider_failures_total(self) -> int:
        return self._provider_failures

    @property
    def in_ramp(self) -> bool:
        return self._ramping

    def limit_at(self, now: float) -> int:
        """The limit at `now` without changing state (the ramp moves with time)."""
        return self._ramp_value(now) if self._ramping else self._limit

    def in_cooldown(self, now: float) -> bool:
        """A rate-limit cooldown is in force (it may or may not block admission)."""
        return self._cooldown_until is not None and now < self._cooldown_until

    def cooldown_until(self, now: float) -> float | None:
        """The cooldown end while cooling down, else None."""
        return self._cooldown_until if self.in_cooldown(now) else None

    def admission_blocked(self, now: float) -> bool:
        """The cooldown blocks every new admission now."""
        return self._blocked_until is not None and now < self._blocked_until

    def blocked_until(self, now: float) -> float | None:
        """The end of the admission block while admission is blocked, else None."""
        return self._blocked_until if self.admission_blocked(now) else None

    def cooldown_remaining(self, now: float) -> float:
        until = self._cooldown_until
        return until - now if until is not None and now < until else 0.0

    def next_change_at(self, now: float) -> float | None:
        """The earliest future instant at which admission could open without a release."""
        at = self._blocked_until if self.admission_blocked(now) else None
        if self._ramping and self._limit < self._initial:
            step = self._step_time(self._limit + 1)
            if at is None or step < at:
                at = step
        return at

    # -- updates -------------------------------------------------------------------------

    def refresh(self, now: float) -> tuple[LimitTransition, ...]:
        """Apply what time alone changes: ramp steps and the end of a cooldown."""
        out: list[LimitTransition] | None = None
        if self._ramping:
            value = self._ramp_value(now)
            if value != self._limit:
                out = [LimitTransition(LIMIT_INCREASED, self._limit, value, "startup_ramp")]
                self._limit = value
            if value >= self._initial:
                self._ramping = False
                self._limit = self._rule.limit
        if self._blocked_until is not None and now >= self._blocked_until:
            self._blocked_until = None
        if self._cooldown_until is not None and now >= self._cooldown_until:
            self._cooldown_until = None
            out = out if out is not None else []
            self._check_recovered(now, out)
        return tuple(out) if out else _NONE

    def on_success(
        self,
        now: float,
        latency_seconds: float | None,
        in_flight: int,
        lease_limit: int | None = None,
    ) -> tuple[LimitTransition, ...]:
        """A successful release; feeds the rule only outside cooldown and after the ramp."""
        refreshed = self.refresh(now)
        self._consecutive = 0
        if self._ramping or self.in_cooldown(now):
            return refreshed
        before = self._limit
        after = self._rule.update(
            RequestLimitSample(now, False, latency_seconds, in_flight, lease_limit)
        )
        if after == before:
            return refreshed
        self._limit = after
        out = list(refreshed)
        if after < before:
            out.append(LimitTransition(LIMIT_DECREASED, before, after, "limit_rule"))
            return tuple(out)
        out.append(LimitTransition(LIMIT_INCREASED, before, after, "additive_increase"))
        if self._ceiling is not None and after > self._ceiling:
            out.append(LimitTransition(SOFT_CEILING_RECOVERED, self._ceiling, after, "increase"))
            self._ceiling = None
        self._check_recovered(now, out)
        return tuple(out)

    def on_rate_limited(
        self,
        now: float,
        lease_limit: int,
        retry_after_seconds: float | None,
        granted_in_cooldown: bool = False,
        lease_in_flight: int | None = None,
    ) -> RateLimitEffect:
        """A 429: cut once per cascade, abort the ramp, cool down for Retry-After or the default.

        `granted_in_cooldown`: the rate-limited lease was granted after the current cooldown
        began; `lease_in_flight`: the in-flight count right after its grant. Under
        `reduced_limit`, a lease granted in the cooldown and refused at no higher concurrency
        than the cooldown's first refusal (a repeat: the cut did not help) turns the cooldown
        into a block of every admission; a repeat refused below the current limit does not cut
        again (the limit did not let it through: more cuts would only outlast the cooldown).
        """
        out = list(self.refresh(now))
        was_cooling = self.in_cooldown(now)
        first = self._refused_in_flight
        repeat = (
            was_cooling
            and granted_in_cooldown
            and (first is None or lease_in_flight is None or lease_in_flight <= first)
        )
        self._consecutive += 1
        self._rate_limited_total += 1
        self._degraded = True
        ramp_aborted = self._ramping
        if ramp_aborted:
            self._ramping = False
            self._rule.reset(self._limit, self._effective_max)
        below_limit = lease_in_flight is not None and lease_in_flight < self._limit
        new_cascade = lease_limit <= self._limit and not (
            repeat and below_limit and not self._block_all
        )
        if new_cascade:
            before = self._limit
            self._ceiling = before
            self._limit = self._rule.update(
                RequestLimitSample(
                    now, True, lease_limit=lease_limit, lease_in_flight=lease_in_flight
                )
            )
            if self._limit != before:
                cause = "rate_limited_during_ramp" if ramp_aborted else "rate_limited"
                out.append(LimitTransition(LIMIT_DECREASED, before, self._limit, cause))
        wait = self._cooldown_seconds if retry_after_seconds is None else retry_after_seconds
        until = now + wait
        if wait > 0 and (self._cooldown_until is None or until > self._cooldown_until):
            self._cooldown_until = until
        started = not was_cooling and self.in_cooldown(now)
        if started:
            self._refused_in_flight = lease_in_flight
        blocked = self.in_cooldown(now) and (self._block_all or repeat)
        if blocked:
            self._blocked_until = self._cooldown_until
        return RateLimitEffect(new_cascade, ramp_aborted, tuple(out), started, blocked)

    def on_provider_failure(self) -> None:
        """A non-rate-limit provider failure: counted for diagnostics, no limit change."""
        self._provider_failures += 1

    def set_effective_max(self, effective_max: int, now: float) -> tuple[LimitTransition, ...]:
        """Change the ceiling (a new clamp or cap); lowers the limit if it is now above it."""
        if effective_max < 1:
            raise ValueError("effective_max must be >= 1")
        if effective_max == self._effective_max:
            return _NONE
        out = list(self.refresh(now))
        out.append(
            LimitTransition(EFFECTIVE_CAP_CHANGED, self._effective_max, effective_max, "cap")
        )
        self._effective_max = effective_max
        self._initial = min(self._initial, effective_max)
        before = self._limit
        self._rule.reset(min(self._rule.limit, effective_max), effective_max)
        if self._ramping:
            self._limit = min(self._limit, self._initial)
            self._ramping = self._limit < self._initial
            if not self._ramping:
                self._limit = self._rule.limit
        else:
            self._limit = self._rule.limit
        if self._limit < before:
            out.append(LimitTransition(LIMIT_DECREASED, before, self._limit, "effective_cap"))
        self._check_recovered(now, out)
        return tuple(out)

    # -- helpers -------------------------------------------------------------------------

    def _check_recovered(self, now: float, out: list[LimitTransition]) -> None:
        if self._degraded and self._limit >= self._effective_max and not self.in_cooldown(now):
            self._degraded = False
            self._ceiling = None
            out.append(LimitTransition(FULLY_RECOVERED, self._limit, self._limit, "recovered"))

    def _step_time(self, value: int) -> float:
        """When the ramp reaches `value` (1 at the start, the initial limit at the end)."""
        return self._ramp_start + (value - 1) * self._ramp_seconds / (self._initial - 1)

    def _ramp_value(self, now: float) -> int:
        steps = self._initial - 1
        elapsed = max(0.0, now - self._ramp_start)
        value = min(self._initial, 1 + math.floor(elapsed * steps / self._ramp_seconds))
        while value < self._initial and self._step_time(value + 1) <= now:
            value += 1
        while value > 1 and self._step_time(value) > now:
            value -= 1
        return value
