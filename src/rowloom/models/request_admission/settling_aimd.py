"""`SettlingAimdLimitRule`: AIMD that remembers the last rate-limit ceiling and settles below it.

V1 AIMD climbs back to the level that just drew a 429 at full speed and draws the next one a
few seconds later, so a steady provider sees a 429 every cycle. This rule (the default, named
`aimd`) keeps AIMD's arithmetic but remembers the ceiling:

- a 429 below the remembered ceiling (or with none) is a real capacity drop: multiplicative
  decrease, and no higher than one below the concurrency the provider just refused (the
  in-flight count when the refused request was granted), which becomes the ceiling; a refusal
  at a concurrency far below the limit (a rate limit, not a concurrency limit) cuts at most to
  half the multiplicative cut. From a configured max of 2C against capacity C, the first 429
  comes back at C + 1 in flight and the limit lands on C at once, instead of cascading
  2C -> 1.5C -> 1.1C -> 0.8C and climbing back;
- additive increase stops one below the ceiling (the hold level);
- only after a long clean streak at the hold level does the rule probe the ceiling itself; a
  probe that draws a 429 goes straight back to the hold level (no multiplicative cut) and
  doubles the streak the next probe needs, up to a bound, so the provider is re-tested rarely
  but forever (the ceiling never becomes a permanent cap);
- a probe that holds for `successes_until_increase` saturated successes (the resource really
  ran at the probe level) forgets the ceiling: the provider's capacity rose, normal AIMD resumes.

Pure and deterministic: no clock, no I/O; the limit stays within `[1, max_limit]`.
"""

from __future__ import annotations

import math
from typing import Final

from rowloom.models.request_admission.limits import RequestLimitSample

_EPSILON = 1e-9
PROBE_HOLD_FACTOR: Final = 8
"""The first probe waits `PROBE_HOLD_FACTOR * successes_until_increase` successes at the hold."""
MAX_PROBE_HOLD_FACTOR: Final = 128
"""Failed probes double the wait, up to `MAX_PROBE_HOLD_FACTOR * successes_until_increase`."""


class SettlingAimdLimitRule:
    """AIMD with a remembered rate-limit ceiling, a hold just below it and rare probes."""

    __slots__ = (
        "_base_hold",
        "_ceiling",
        "_factor",
        "_hold_needed",
        "_limit",
        "_max",
        "_max_hold",
        "_needed",
        "_step",
        "_successes",
    )

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
        self._factor = decrease_factor
        self._step = increase_step
        self._needed = successes_until_increase
        self._base_hold = PROBE_HOLD_FACTOR * successes_until_increase
        self._max_hold = MAX_PROBE_HOLD_FACTOR * successes_until_increase
        self._hold_needed = self._base_hold
        self._max = max_limit
        self._limit = max(1, min(max_limit, initial_limit))
        self._successes = 0
        self._ceiling: int | None = None

    @property
    def name(self) -> str:
        return "aimd"

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def max_limit(self) -> int:
        return self._max

    @property
    def ceiling(self) -> int | None:
        """The lowest limit that drew the last 429s, while remembered."""
        return self._ceiling

    @property
    def probe_after_successes(self) -> int:
        """Successes the next probe of the ceiling waits for at the hold level."""
        return self._hold_needed

    @property
    def successes(self) -> int:
        """Successes counted toward the next increase, probe or probe verdict."""
        return self._successes

    def update(self, sample: RequestLimitSample) -> int:
        if sample.rate_limited:
            return self._drop(sample.lease_in_flight)
        ceiling = self._ceiling
        if ceiling is None or self._limit < ceiling - 1:
            self._successes += 1
            if self._successes >= self._needed:
                self._successes = 0
                top = self._max if ceiling is None else min(self._max, ceiling - 1)
                self._limit = max(self._limit, min(top, self._limit + self._step))
        elif self._limit < ceiling:
            self._successes += 1  # holding one below the ceiling
            if self._successes >= self._hold_needed:
                self._successes = 0
                self._limit = min(self._max, ceiling)
        elif sample.in_flight + 1 >= self._limit:
            self._successes += 1  # probing: only saturated successes are evidence
            if self._successes >= self._needed:
                self._successes = 0
                self._ceiling = None
                self._hold_needed = self._base_hold
        return self._limit

    def reset(self, limit: int, max_limit: int) -> int:
        if max_limit < 1:
            raise ValueError("max_limit must be >= 1")
        self._max = max_limit
        self._limit = max(1, min(max_limit, limit))
        self._successes = 0
        if self._ceiling is not None and self._ceiling > max_limit:
            self._ceiling = None
        return self._limit

    def _drop(self, refused_in_flight: int | None) -> int:
        self._successes = 0
        ceiling = self._ceiling
        if ceiling is not None and self._limit >= ceiling:
            self._limit = max(1, min(self._limit, ceiling) - 1)  # the probe failed: back to hold
            self._hold_needed = min(self._max_hold, 2 * self._hold_needed)
            return self._limit
        cut = max(1, math.floor(self._limit * self._factor + _EPSILON))
        if refused_in_flight is not None and refused_in_flight <= cut:
            cut = max(max(1, cut // 2), refused_in_flight - 1)
        refused = min(self._limit, refused_in_flight or self._limit)
        self._ceiling = min(self._max, max(cut + 1, refused))
        self._limit = cut
        self._hold_needed = self._base_hold
        return self._limit
