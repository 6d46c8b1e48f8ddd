"""`SettlingAimdLimitRule`: AIMD that remembers the last rate-limit ceiling and settles below it.

V1 AIMD climbs back to the level that just drew a 429 at full speed and draws the next one a
few seconds later, so a steady provider sees a 429 every cycle. This rule (the default, named
`aimd`) keeps AIMD's arithmetic but remembers the ceiling. What a 429 means depends on `k`, the
in-flight count when the refused request was granted (the lease included):

- `k` above the multiplicative cut (the limit was binding): multiplicative decrease; `k`
  becomes the ceiling;
- `k` at most the cut but at least about half of it (an overshoot): the limit lands one below
  `k`, which becomes the ceiling. From a configured max of 2C against capacity C, the first 429
  comes back at C + 1 in flight and the limit lands on C at once, instead of cascading
  2C -> 1.5C -> 1.1C -> 0.8C and climbing back;
- `k` far below the limit: the resource was nowhere near its limit, so the refusal says nothing
  about its own concurrency (other resources saturate a shared provider, or a request-rate
  limit). V1's multiplicative decrease, and no ceiling: a ceiling learnt at a concurrency of 1
  or 2 would pin the resource there long after the provider frees up.

Below the ceiling, additive increase stops one below it (the hold level). The rule probes the
ceiling itself after a clean streak at the hold level of `PROBE_HOLD_FACTOR` rounds of the hold
level's concurrency (`min(successes_until_increase, hold)` successes a round), or once
`PROBE_AFTER_SECONDS` have passed since the 429 that set or confirmed the ceiling, whichever
comes first: a low ceiling, whose successes arrive slowly, is re-tested after seconds, not after
hundreds of requests. A probe that draws a 429 goes straight back to the hold level (no
multiplicative cut) and doubles both waits, up to `MAX_PROBE_HOLD_FACTOR` rounds and
`MAX_PROBE_AFTER_SECONDS`, so the provider is re-tested rarely but forever. A probe that holds
for `successes_until_increase` saturated successes (the resource really ran at the probe level)
forgets the ceiling: normal AIMD resumes.

Slow start (`slow_start_successes` > 0, for a limit that starts below its max): until the first
429 or the max, every `slow_start_successes` saturated successes add `increase_step`, so the
limit grows by about `1 / slow_start_successes` of itself per round trip (exponentially) and
the provider is never handed a whole unproven burst at once. The first 429 ends it: the limit
lands one below the refused concurrency (an overshoot by design, not a binding limit), which
becomes the ceiling, and the settling rule above takes over. A ramp that reaches the max ends
too; slow start never comes back.

Pure and deterministic: time arrives inside each sample (`sample.now`), no clock reads, no I/O;
the limit stays within `[1, max_limit]`.
"""

from __future__ import annotations

import math
from typing import Final

from rowloom.models.request_admission.limits import AimdLimitRule, RequestLimitSample

_EPSILON = 1e-9
PROBE_HOLD_FACTOR: Final = 8
"""The first probe waits this many rounds at the hold level (or `PROBE_AFTER_SECONDS`)."""
MAX_PROBE_HOLD_FACTOR: Final = 128
"""Failed probes double the wait in rounds, up to this many."""
PROBE_AFTER_SECONDS: Final = 5.0
"""The first probe comes at the latest this long after the 429 that set the ceiling."""
MAX_PROBE_AFTER_SECONDS: Final = 80.0
"""Failed probes double the wait in time, up to this long."""


class SettlingAimdLimitRule(AimdLimitRule):
    """AIMD with a remembered rate-limit ceiling, a hold just below it and rare probes.

    Shares `AimdLimitRule`'s parameters and state; `update` and `reset` add the ceiling.

    Guarantees: `1 <= limit <= max_limit`; with a ceiling remembered, `limit < ceiling` except
    while probing (`limit == ceiling`); from any state, only successes move the limit to
    `max_limit` within `(max_limit + 1) * successes_until_increase` saturated successes plus
    the probe wait, which is at most `MAX_PROBE_HOLD_FACTOR * successes_until_increase`
    successes and ends at the first success `MAX_PROBE_AFTER_SECONDS` after the last 429.
    """

    __slots__ = (
        "_ceiling",
        "_ceiling_at",
        "_hold_rounds",
        "_probe_seconds",
        "_slow_start",
    )

    def __init__(
        self,
        initial_limit: int,
        max_limit: int,
        *,
        decrease_factor: float = 0.75,
        increase_step: int = 1,
        successes_until_increase: int = 25,
        slow_start_successes: int = 0,
    ) -> None:
        if slow_start_successes < 0:
            raise ValueError("slow_start_successes must be >= 0")
        super().__init__(
            initial_limit,
            max_limit,
            decrease_factor=decrease_factor,
            increase_step=increase_step,
            successes_until_increase=successes_until_increase,
        )
        self._hold_rounds = PROBE_HOLD_FACTOR
        self._probe_seconds = PROBE_AFTER_SECONDS
        self._ceiling: int | None = None
        self._ceiling_at = 0.0
        self._slow_start = slow_start_successes if self._limit < self._max else 0

    @property
    def name(self) -> str:
        return "aimd"

    @property
    def ceiling(self) -> int | None:
        """The lowest limit that drew the last 429s, while remembered."""
        return self._ceiling

    @property
    def in_slow_start(self) -> bool:
        """The limit is still ramping toward its max and no 429 has come yet."""
        return self._slow_start > 0

    @property
    def probe_after_successes(self) -> int:
        """Successes the next probe of the ceiling waits for at the hold level."""
        hold = self._limit if self._ceiling is None else self._ceiling - 1
        return self._hold_rounds * max(1, min(self._needed, hold))

    @property
    def probe_after_seconds(self) -> float:
        """Seconds after the ceiling's last 429 at which the next probe comes at the latest."""
        return self._probe_seconds

    def update(self, sample: RequestLimitSample) -> int:
        if sample.rate_limited:
            return self._drop(sample.now, sample.lease_in_flight)
        if self._slow_start:
            return self._ramp(sample.in_flight)
        ceiling = self._ceiling
        if ceiling is None or self._limit < ceiling - 1:
            self._successes += 1
            if self._successes >= self._needed:
                self._successes = 0
                top = self._max if ceiling is None else min(self._max, ceiling - 1)
                self._limit = max(self._limit, min(top, self._limit + self._step))
        elif self._limit < ceiling:
            self._successes += 1  # holding one below the ceiling
            due = sample.now - self._ceiling_at >= self._probe_seconds
            if due or self._successes >= self.probe_after_successes:
                self._successes = 0
                self._limit = min(self._max, ceiling)
        elif sample.in_flight + 1 >= self._limit:
            self._successes += 1  # probing: only saturated successes are evidence
            if self._successes >= self._needed:
                self._successes = 0
                self._ceiling = None
                self._hold_rounds = PROBE_HOLD_FACTOR
                self._probe_seconds = PROBE_AFTER_SECONDS
        return self._limit

    def reset(self, limit: int, max_limit: int) -> int:
        super().reset(limit, max_limit)
        if self._limit >= self._max:
            self._slow_start = 0
        ceiling = self._ceiling
        if ceiling is not None and (ceiling > max_limit or ceiling < self._limit):
            self._ceiling = None
        return self._limit

    def _ramp(self, in_flight: int) -> int:
        """Slow start: a saturated success counts toward the next step; the max ends it."""
        if in_flight + 1 >= self._limit:
            self._successes += 1
            if self._successes >= self._slow_start:
                self._successes = 0
                self._limit = min(self._max, self._limit + self._step)
                if self._limit >= self._max:
                    self._slow_start = 0
        return self._limit

    def _drop(self, now: float, refused_in_flight: int | None) -> int:
        self._successes = 0
        ramping, self._slow_start = self._slow_start > 0, 0
        ceiling = self._ceiling
        if ceiling is not None and self._limit >= ceiling:
            self._limit = max(1, min(self._limit, ceiling) - 1)  # the probe failed: back to hold
            self._hold_rounds = min(MAX_PROBE_HOLD_FACTOR, 2 * self._hold_rounds)
            self._probe_seconds = min(MAX_PROBE_AFTER_SECONDS, 2 * self._probe_seconds)
            self._ceiling_at = now
            return self._limit
        cut = max(1, math.floor(self._limit * self._factor + _EPSILON))
        k = refused_in_flight
        if k is not None and (k <= cut or ramping):
            if k - 1 < cut // 2:
                self._limit = cut  # refused far below the limit: not this resource's doing
                return self._limit
            cut = max(1, min(k, self._limit) - 1)  # overshoot: one below the refused level
        refused = min(self._limit, k or self._limit)
        self._ceiling = min(self._max, max(cut + 1, refused))
        self._ceiling_at = now
        self._limit = cut
        self._hold_rounds = PROBE_HOLD_FACTOR
        self._probe_seconds = PROBE_AFTER_SECONDS
        return self._limit
