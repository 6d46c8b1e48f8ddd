"""The fleet's request budget: `x-ratelimit-*` and `Retry-After` paced for the whole API key.

A provider's rate-limit headers count the whole key, not one worker: a worker that paced on
them alone would spend a budget every other worker spends too. `FleetBudget` is the
coordinator's view of one key's budget, fed by the headers each worker forwards
(`BudgetReport`), and split into per-worker slices like the concurrency limit:

- **Estimate from the newest answer.** An answer says the provider still accepted
  `remaining_requests` when the lease arrived. Since then the fleet spent what the worker
  granted after that lease (`granted_after`), what every worker reported admitting since the
  lease's grant (pessimistic: a report's admissions count as after it), and at most what each
  worker may still spend of its slice. What is left is free to hand out; older answers than
  the newest applied are ignored.
- **Slices are caps on a worker's lease count** (`ShareGrant.admit_cap`): a worker admits on
  the key only while its leases ever granted are below its cap, so a slice survives a lost or
  late message and is never taken back (a cap never falls). A worker's slice is topped up from
  the free budget in proportion to its demand, and to at most twice what it can spend before
  its next report (its demand or its last interval's leases).
- **At the reset, pace.** Once the free budget is gone, nothing more is handed out until the
  reset the newest answer named; from then one request per `60 s / limit_requests` (the
  provider's sustainable rate) until a newer answer says more. Without a stated limit the
  budget is unknown after the reset, and the caps go (each worker's own pacer remains).
- **Pauses.** A 429 that says the request budget is gone (`retry_after_seconds` in the
  report), or an answer with no tokens left, pauses every worker on the key until that
  Retry-After or token reset ends.

Pure and deterministic: time arrives as arguments, no clock reads, no I/O.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Final

from rowloom.models.request_admission.shares import BudgetReport

WINDOW_SECONDS: Final = 60.0
"""`x-ratelimit-limit-requests` is a per-minute limit."""
LOG_SECONDS: Final = 5.0
"""The fleet's reported admissions are kept this long; an older answer is not applied."""
BURST_INTERVALS: Final = 2
"""A slice is topped up to at most this many times what a worker spends between reports."""


@dataclass(slots=True)
class _Spender:
    """One worker's lease count, cap and demand on the key."""

    admitted: int = 0
    cap: int | None = None
    demand: int = 0
    spent_last: int = 0

    @property
    def outstanding(self) -> int:
        """What it may still admit under its cap."""
        return 0 if self.cap is None else max(0, self.cap - self.admitted)


@dataclass(frozen=True, slots=True)
class BudgetView:
    """One key's budget for views: known, free, handed out, when it resets, paused until."""

    known: bool
    free: int
    outstanding: int
    reset_at: float | None
    paused_until: float
    observations: int


class FleetBudget:
    """One key's request budget over the fleet (see the module docstring).

    Made at `now`: answers about leases granted before it are not applied (what the fleet
    admitted since them is not known), except their pauses.
    """

    __slots__ = (
        "_demand_total",
        "_free",
        "_interval",
        "_known",
        "_log_cum",
        "_log_t",
        "_observations",
        "_outstanding",
        "_paused_until",
        "_released",
        "_reset_at",
        "_seen_at",
        "_spenders",
        "_total_admitted",
    )

    def __init__(self, now: float = -math.inf) -> None:
        self._known = False
        self._free = 0
        self._seen_at = -math.inf
        self._reset_at: float | None = None
        self._interval: float | None = None
        self._released = 0
        self._paused_until = -math.inf
        self._spenders: dict[str, _Spender] = {}
        self._outstanding = 0
        self._demand_total = 0
        self._total_admitted = 0
        self._log_t: list[float] = [now]  # admissions before `now` are not known
        self._log_cum: list[int] = [0]
        self._observations = 0

    @property
    def known(self) -> bool:
        """An answer's headers said what the budget is (caps are handed out)."""
        return self._known

    def report(
        self, worker: str, admitted: int, demand: int, budget: BudgetReport | None, now: float
    ) -> tuple[int | None, float]:
        """Fold one worker's report in: its admit cap (None: no budget known) and the
        seconds every worker of the key must pause from now."""
        spender = self._spenders.get(worker)
        if spender is None:
            spender = self._spenders[worker] = _Spender()
        spent = self._count(spender, admitted, demand)
        if budget is not None:
            self._observe(budget, now, spender.outstanding)
        self._log(spent, now)  # after: the answer's own `granted_after` counts its worker
        self._accrue(now)
        cap = self._top_up(spender) if self._known else None
        spender.cap = cap
        self._outstanding += spender.outstanding
        return cap, max(0.0, self._paused_until - now)

    def leave(self, worker: str) -> None:
        """Forget a worker: its slice is no longer counted as spendable (not freed either:
        it may have spent it unreported; the next answer's estimate says)."""
        spender = self._spenders.pop(worker, None)
        if spender is not None:
            self._outstanding -= spender.outstanding
            self._demand_total -= spender.demand

    def view(self) -> BudgetView:
        return BudgetView(
            known=self._known,
            free=self._free,
            outstanding=self._outstanding,
            reset_at=self._reset_at,
            paused_until=self._paused_until,
            observations=self._observations,
        )

    # -- internals -------------------------------------------------------------------------

    def _count(self, spender: _Spender, admitted: int, demand: int) -> int:
        """Take the worker out of the outstanding total (its report puts it back); what it
        admitted since its last report."""
        self._outstanding -= spender.outstanding
        spent = max(0, admitted - spender.admitted)
        spender.spent_last = spent
        spender.admitted = max(spender.admitted, admitted)
        self._demand_total += demand - spender.demand
        spender.demand = demand
        return spent

    def _log(self, spent: int, now: float) -> None:
        """Log the fleet's admissions reported now (kept `LOG_SECONDS`)."""
        if not spent:
            return
        self._total_admitted += spent
        self._log_t.append(now)
        self._log_cum.append(self._total_admitted)
        cut = bisect.bisect_right(self._log_t, now - LOG_SECONDS) - 1
        if cut > 64:  # keep the last entry at or before the cutoff
            del self._log_t[:cut]
            del self._log_cum[:cut]

    def _observe(self, budget: BudgetReport, now: float, own_outstanding: int) -> None:
        seen_at = now - budget.age_seconds
        if budget.retry_after_seconds is not None:
            self._paused_until = max(self._paused_until, now + budget.retry_after_seconds)
        if budget.remaining_tokens == 0 and budget.reset_tokens_seconds is not None:
            self._paused_until = max(self._paused_until, now + budget.reset_tokens_seconds)
        remaining = budget.remaining_requests
        if remaining is None or seen_at <= self._seen_at or seen_at < self._log_t[0]:
            return  # no request budget, or not newer than the answer applied, or too old
        self._seen_at = seen_at
        self._observations += 1
        # the fleet's admissions reported since the lease's grant (a tie counts as after it)
        before = self._log_cum[bisect.bisect_left(self._log_t, seen_at) - 1]
        others = self._total_admitted - before
        left = remaining - budget.granted_after - others
        self._free = max(0, left - self._outstanding - own_outstanding)
        self._known = True
        reset = budget.reset_requests_seconds
        self._reset_at = None if reset is None else now + reset
        limit = budget.limit_requests
        self._interval = WINDOW_SECONDS / limit if limit else None
        self._released = 0

    def _accrue(self, now: float) -> None:
        """After the reset: one request at once, then one per interval (or the budget is
        unknown again when no limit was stated)."""
        reset_at = self._reset_at
        if not self._known or reset_at is None or now < reset_at:
            return
        if self._interval is None:
            self._known = False
            self._free = 0
            return
        tokens = 1 + math.floor((now - reset_at) / self._interval)
        self._free += tokens - self._released
        self._released = tokens

    def _top_up(self, spender: _Spender) -> int:
        """The worker's cap: its slice topped up from the free budget (never lowered)."""
        outstanding = spender.outstanding
        if spender.demand > 0 and self._free > 0:
            pool = self._free + self._outstanding + outstanding
            fair = math.ceil(pool * spender.demand / max(1, self._demand_total))
            burst = BURST_INTERVALS * max(spender.demand, spender.spent_last)
            give = min(self._free, max(0, min(fair, burst) - outstanding))
            self._free -= give
            outstanding += give
        return spender.admitted + outstanding
