"""`ShareGate`: one worker's share of a fleet-wide request limit (the worker side of the Ray
engine's one adaptive limit per provider).

On one machine each resource's limit adapts to its own 429s. A fleet of workers against one
provider would multiply that limit (and its 429 storms) by the worker count, so a coordinator
runs the adaptive limit over the whole fleet and grants each worker an integer share
(`ShareGrant`). The gate is what a worker keeps of it, per share key (a request resource or a
provider):

- it admits a request only while the key's in-flight count is below the share (a share of 0
  admits nothing) and no fleet pause is in force;
- a 429 cuts the share at once, once per cascade (a refusal of a lease granted before the last
  local cut is already answered by it), without waiting for the coordinator;
- it counts what the coordinator needs into the next `ShareReport`: successes, 429s, and the
  429s of leases granted under the generation the worker holds ("fresh": only these may cut
  the fleet limit, so one cascade costs the fleet one cut);
- it keeps the provider's latest `x-ratelimit-*` answer (`observe_budget`: the request budget
  left, its reset, the token budget) and forwards it in the next report as a `BudgetReport`
  (the coordinator paces the whole API key on it); it admits only while its lease count is
  below the grant's `admit_cap` (its slice of the fleet's request budget);
- a worker that loses its coordinator keeps its last share (at least 1, so it still makes
  progress), goes on cutting on its own 429s and drops its budget cap (its own pacer is left).

Pure and deterministic: time arrives as arguments, no clock reads, no I/O, no asyncio. Lease
ordinals are the caller's count of leases granted on the key (the value before each grant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from rowloom.provider_wire import RateLimitHeaders

LOCAL_CUT_FACTOR: Final = 0.75
"""A 429 cuts the worker's share to `floor(share * LOCAL_CUT_FACTOR)` at once."""


@dataclass(frozen=True, slots=True)
class ShareGrant:
    """What the coordinator grants one worker on one key.

    `generation` counts the fleet limit's cuts (one per cascade); `epoch` names the coordinator
    incarnation, so a restarted coordinator never mistakes an old generation for its own;
    `pause_seconds` holds every admission of the key for that long from receipt (the fleet's
    Retry-After, or the request budget's reset); `limit` is the fleet limit the share is part
    of (for views only); `admit_cap`: the worker admits on the key only while its lease count
    (`admitted`) is below it, its slice of the fleet's request budget (None: no budget known).
    """

    share: int
    generation: int
    epoch: int = 0
    pause_seconds: float = 0.0
    limit: int = 0
    admit_cap: int | None = None

    def __post_init__(self) -> None:
        if self.share < 0 or self.pause_seconds < 0:
            raise ValueError("a share and a pause are never negative")


@dataclass(frozen=True, slots=True)
class BudgetReport:
    """The provider's latest `x-ratelimit-*` answer one worker saw on a key, as of its report.

    `remaining_requests` is what the provider still accepted when it answered; the worker
    granted `granted_after` more leases on the key since that lease (the provider had not
    counted them). Resets are seconds from the report (the observation's age taken off);
    `age_seconds` is how old the observation is. `retry_after_seconds`: the answer was a 429 with
    no request budget left, to wait this long from the report (it pauses the whole key).
    """

    remaining_requests: int | None
    reset_requests_seconds: float | None
    limit_requests: int | None
    granted_after: int
    age_seconds: float
    remaining_tokens: int | None = None
    reset_tokens_seconds: float | None = None
    retry_after_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ShareReport:
    """What one worker tells the coordinator about one key since its last report.

    `share`/`generation`/`epoch`: the share in force now (after local cuts) and the grant it
    came from; `in_flight` and `waiting` (queued requests) make the worker's demand;
    `successes` and `rate_limited` count finished attempts; `fresh_rate_limited` counts the
    429s of leases granted under the held generation; `retry_after_seconds` is the longest
    Retry-After among them; `admitted` counts the worker's leases on the key ever (its budget
    cap is on that count); `budget` the provider's latest rate-limit headers, if any.
    """

    share: int
    generation: int
    epoch: int
    in_flight: int
    waiting: int
    successes: int = 0
    rate_limited: int = 0
    fresh_rate_limited: int = 0
    retry_after_seconds: float | None = None
    admitted: int = 0
    budget: BudgetReport | None = None

    @property
    def demand(self) -> int:
        """Requests the worker would have in flight now if its share allowed."""
        return self.in_flight + self.waiting


class ShareGate:
    """One worker's share of one fleet-wide limit (see the module docstring).

    Guarantees: `share >= 0`; `share <= granted`; a 429 cuts at most once per cascade; a
    worker that lost its coordinator keeps `share >= 1`; no lease beyond `admit_cap`.
    """

    __slots__ = (
        "_budget",
        "_budget_mark",
        "_cut_mark",
        "_fresh",
        "_generation_mark",
        "_rate_limited",
        "_retry_after",
        "_successes",
        "admit_cap",
        "epoch",
        "generation",
        "granted",
        "limit",
        "orphaned",
        "paused_until",
        "share",
    )

    def __init__(self, *, admitted: int = 0) -> None:
        self.share = 0
        self.granted = 0
        self.limit = 0
        self.generation = 0
        self.epoch = 0
        self.paused_until = 0.0
        self.orphaned = False
        self._generation_mark = admitted
        self._cut_mark = admitted
        self._successes = 0
        self._rate_limited = 0
        self._fresh = 0
        self._retry_after: float | None = None
        self.admit_cap: int | None = None
        self._budget: tuple[RateLimitHeaders, float, int, float | None] | None = None
        self._budget_mark = 0

    def admits(self, in_flight: int, now: float, admitted: int = 0) -> bool:
        """May one more request go out on this key now (`admitted`: its lease count so far)?"""
        cap = self.admit_cap
        return (
            in_flight < self.share and now >= self.paused_until and (cap is None or admitted < cap)
        )

    def grant(self, grant: ShareGrant, *, admitted: int, now: float) -> None:
        """Adopt a grant received now; `admitted` is the key's lease count so far."""
        if grant.generation != self.generation or grant.epoch != self.epoch:
            self._generation_mark = admitted
        self.share = self.granted = grant.share
        self.generation = grant.generation
        self.epoch = grant.epoch
        self.limit = grant.limit
        self.paused_until = now + grant.pause_seconds if grant.pause_seconds > 0 else 0.0
        self.admit_cap = grant.admit_cap
        self.orphaned = False
        self._cut_mark = max(self._cut_mark, self._generation_mark)

    def on_success(self) -> None:
        """Count one successful attempt."""
        self._successes += 1

    def on_rate_limited(
        self, ordinal: int, *, admitted: int, retry_after_seconds: float | None = None
    ) -> bool:
        """Count a 429 of the lease granted as `ordinal`; cut the share once per cascade.

        `admitted` is the key's lease count now. Returns True when the share was cut.
        """
        self._rate_limited += 1
        if ordinal >= self._generation_mark:
            self._fresh += 1
            if retry_after_seconds is not None:
                self._retry_after = max(self._retry_after or 0.0, retry_after_seconds)
        if ordinal < self._cut_mark:
            return False
        floor = 1 if self.orphaned else 0
        self.share = max(floor, min(self.share, math.floor(self.share * LOCAL_CUT_FACTOR)))
        self._cut_mark = admitted
        return True

    def observe_budget(
        self,
        headers: RateLimitHeaders,
        granted_at: float,
        ordinal: int,
        retry_after_seconds: float | None = None,
    ) -> bool:
        """Keep an answer's rate-limit headers (the lease granted as `ordinal` at `granted_at`:
        they describe the provider when it arrived) if it is the newest; `retry_after_seconds`
        of a 429. True when it says the request budget is gone on
        a 429 (the worker should report at once: the whole key must wait)."""
        if ordinal >= self._budget_mark:
            spent = retry_after_seconds if headers.remaining_requests == 0 else None
            self._budget = (headers, granted_at, ordinal, spent)
            self._budget_mark = ordinal
        return retry_after_seconds is not None and headers.remaining_requests == 0

    def take_report(
        self, in_flight: int, waiting: int, *, admitted: int = 0, now: float = 0.0
    ) -> ShareReport:
        """The report of everything since the last one; the counters start again.

        `admitted`: the key's lease count now; `now`: the report's time (ages the budget).
        """
        report = ShareReport(
            share=self.share,
            generation=self.generation,
            epoch=self.epoch,
            in_flight=in_flight,
            waiting=waiting,
            successes=self._successes,
            rate_limited=self._rate_limited,
            fresh_rate_limited=self._fresh,
            retry_after_seconds=self._retry_after,
            admitted=admitted,
            budget=self._budget_report(admitted, now),
        )
        self._successes = self._rate_limited = self._fresh = 0
        self._retry_after = None
        return report

    def _budget_report(self, admitted: int, now: float) -> BudgetReport | None:
        """The kept headers as of `now` (sent once: the next report carries newer ones only)."""
        kept = self._budget
        if kept is None:
            return None
        self._budget = None
        headers, seen_at, ordinal, retry_after = kept
        age = max(0.0, now - seen_at)

        def left(seconds: float | None) -> float | None:
            return None if seconds is None else max(0.0, seconds - age)

        return BudgetReport(
            remaining_requests=headers.remaining_requests,
            reset_requests_seconds=left(headers.reset_requests_seconds),
            limit_requests=headers.limit_requests,
            granted_after=max(0, admitted - ordinal - 1),
            age_seconds=age,
            remaining_tokens=headers.remaining_tokens,
            reset_tokens_seconds=left(headers.reset_tokens_seconds),
            retry_after_seconds=left(retry_after),
        )

    def restore(self, report: ShareReport) -> None:
        """Put back the counts of a report that never reached the coordinator (its budget
        headers are stale by the next report: newer answers replace them)."""
        self._successes += report.successes
        self._rate_limited += report.rate_limited
        self._fresh += report.fresh_rate_limited
        if report.retry_after_seconds is not None:
            self._retry_after = max(self._retry_after or 0.0, report.retry_after_seconds)

    def orphan(self) -> None:
        """The coordinator is lost: keep the last share (at least 1) and cut on own 429s."""
        self.orphaned = True
        self.admit_cap = None  # the worker's own pacer still reads the headers
        self.share = max(1, self.share)
        self.granted = max(self.granted, self.share)
