"""The share arithmetic: one adaptive limit over a fleet of workers, split into integer shares.

`FleetShares` is the coordinator's state for one share key (a request resource or a
provider). It runs the engine's settling AIMD (`SettlingAimdLimitRule`) over the whole fleet
and splits the fleet limit into one integer share per worker:

- **Start low and ramp.** The fleet limit starts at a quarter of its max (at least 1) and
  climbs by the rule's additive increase, fed by the successes every worker reports.
- **One cut per cascade.** Every cut starts a new generation. Only a 429 of a lease granted
  under the current generation (a report's `fresh_rate_limited` with the current generation
  and epoch) may cut again: the refusals of a burst that one cut already answers cost nothing.
- **Arm after the drain.** Right after a cut the fleet still has the old limit's requests in
  flight, so a lease granted under the cut's generation can draw a 429 the cut already
  answers. The next generation (the one whose 429s may cut) starts once what the fleet holds
  fits the cut limit (or `ARM_AFTER_SECONDS` after the cut, whichever comes first): a burst
  costs one cut, not a cascade of cuts to a fraction of the capacity.
- **Cut from what was granted.** A cut lands from the capacity the fleet holds (the sum of
  what each worker was granted or still has in flight), which the coordinator knows exactly,
  never from in-flight counts reported up to a report interval ago.
- **Shares sum to the fleet limit.** `allocate` splits the limit max-min fairly up to each
  worker's demand (water filling), then the surplus beyond the fleet's demand in proportion
  to demand, by largest remainder; equal remainders go by a rotating order, so a limit
  smaller than the worker count is shared over time.
- **Never over-grant.** A worker's grant rises only into free capacity (the fleet limit less
  what every worker holds), so the shares in force never sum above the limit; a cut or a
  reallocation takes capacity back as each worker reports, and a worker holds what it still
  has in flight until it drains.

Pure and deterministic: time arrives as arguments, no clock reads, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from rowloom.models.request_admission.limits import RequestLimitSample
from rowloom.models.request_admission.settling_aimd import SettlingAimdLimitRule
from rowloom.models.request_admission.shares import ShareGrant, ShareReport

INITIAL_FRACTION: Final = 0.25
"""A fleet limit starts at this fraction of its max (a restarted coordinator too)."""
ALLOCATE_INTERVAL: Final = 0.05
"""Shares are re-split at most this often (seconds), and at once after a cut."""
ROTATE_SECONDS: Final = 5.0
"""Equal remainders rotate among workers this often."""
SLOW_START_WEIGHT: Final = 4
"""Until its first cut a fleet limit counts each success this many times (a faster ramp)."""
ARM_AFTER_SECONDS: Final = 1.0
"""After a cut, the next generation starts at the latest this long after it (seconds)."""


def allocate(limit: int, demands: Sequence[int], rotation: int = 0) -> list[int]:
    """Integer shares of `limit`, one per demand, summing to `limit` (when there are workers).

    Up to the fleet's total demand the split is max-min fair: no worker gets more than it
    asks while another asks for more than it gets. Beyond it the surplus goes in proportion to
    demand (equally when nobody asks). Equal remainders go first to the workers from
    `rotation` times their number on (mod the count), so successive rotations take turns.
    """
    if limit < 0 or any(d < 0 for d in demands):
        raise ValueError("a limit and demands are never negative")
    n = len(demands)
    if n == 0:
        return []
    total = sum(demands)
    if total >= limit:
        return _water_fill(limit, demands, rotation)
    surplus = limit - total
    weights = demands if total > 0 else [1] * n
    extra = _largest_remainder(surplus, weights, rotation)
    return [d + s for d, s in zip(demands, extra, strict=True)]


def _water_fill(limit: int, demands: Sequence[int], rotation: int) -> list[int]:
    n = len(demands)
    shares = [0] * n
    order = sorted(range(n), key=lambda i: demands[i])
    left, pos = limit, 0
    while pos < n and demands[order[pos]] * (n - pos) <= left:
        i = order[pos]
        shares[i] = demands[i]
        left -= demands[i]
        pos += 1
    rest = sorted(order[pos:])
    if not rest:
        return shares
    level, extra = divmod(left, len(rest))
    start = (rotation * extra) % len(rest)  # the next `extra` workers each turn
    for j, i in enumerate(rest):
        shares[i] = level + (1 if (j - start) % len(rest) < extra else 0)
    return shares


def _largest_remainder(amount: int, weights: Sequence[int], rotation: int) -> list[int]:
    n = len(weights)
    total = sum(weights)
    quotas = [amount * w / total for w in weights]
    shares = [math.floor(q) for q in quotas]
    left = amount - sum(shares)
    start = rotation * left
    ranked = sorted(range(n), key=lambda i: (-(quotas[i] - shares[i]), (i - start) % n))
    for i in ranked[:left]:
        shares[i] += 1
    return shares


@dataclass(slots=True)
class _Holder:
    """What the coordinator knows of one worker on one key."""

    granted: int = 0
    held: int = 0
    demand: int = 0
    in_flight: int = 0
    usable: int = 0
    target: int = 0
    seen_at: float = 0.0


@dataclass(frozen=True, slots=True)
class FleetSharesView:
    """A read-only picture of one key: the fleet limit, its generation and each worker."""

    limit: int
    max_limit: int
    generation: int
    ceiling: int | None
    held_total: int
    in_flight_total: int
    demand_total: int
    shares: Mapping[str, int]
    demands: Mapping[str, int]
    paused_until: float
    cuts: int
    reports: int


class FleetShares:
    """One key's fleet limit and its split into worker shares (see the module docstring).

    `adaptive=False`: the limit stays at `max_limit` (a fixed cap, still split into shares).
    """

    __slots__ = (
        "_adaptive",
        "_alloc_at",
        "_armed",
        "_cooldown_until",
        "_cut_at",
        "_cuts",
        "_dirty",
        "_epoch",
        "_generation",
        "_held_total",
        "_holders",
        "_in_flight_total",
        "_paused_until",
        "_refused_at",
        "_reports",
        "_rotation",
        "_rule",
        "_usable_total",
    )

    def __init__(
        self,
        max_limit: int,
        *,
        initial_limit: int | None = None,
        epoch: int = 0,
        decrease_factor: float = 0.75,
        increase_step: int = 1,
        successes_until_increase: int = 25,
        adaptive: bool = True,
    ) -> None:
        if max_limit < 1:
            raise ValueError("a fleet's max limit must be >= 1")
        start = initial_limit
        if start is None:
            start = max(1, math.ceil(max_limit * INITIAL_FRACTION)) if adaptive else max_limit
        self._rule = SettlingAimdLimitRule(
            start,
            max_limit,
            decrease_factor=decrease_factor,
            increase_step=increase_step,
            successes_until_increase=successes_until_increase,
        )
        self._adaptive = adaptive
        self._epoch = epoch
        self._generation = 1
        self._armed = True
        self._cut_at = -math.inf
        self._holders: dict[str, _Holder] = {}
        self._held_total = 0
        self._in_flight_total = 0
        self._dirty = True
        self._alloc_at = -math.inf
        self._cooldown_until = -math.inf
        self._refused_at = 0
        self._usable_total = 0
        self._paused_until = -math.inf
        self._cuts = 0
        self._reports = 0
        self._rotation = 0

    @property
    def limit(self) -> int:
        return self._rule.limit

    @property
    def max_limit(self) -> int:
        return self._rule.max_limit

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def held_total(self) -> int:
        """Capacity the fleet holds: per worker, the larger of its grant and its in flight."""
        return self._held_total

    def report(self, worker: str, report: ShareReport, now: float) -> ShareGrant:
        """Fold one worker's report in; its grant for the next interval."""
        self._reports += 1
        holder = self._holders.get(worker)
        if holder is None:
            holder = self._holders[worker] = _Holder()
            self._dirty = True
        holder.seen_at = now
        self._in_flight_total += report.in_flight - holder.in_flight
        holder.in_flight = report.in_flight
        if report.demand != holder.demand:
            holder.demand = report.demand
            self._dirty = True
        # what the worker may occupy: its share in force (if it is ours), or what it has in flight
        own = report.share if report.epoch == self._epoch else 0
        self._set_held(holder, max(min(own, holder.granted), report.in_flight))
        if not self._armed and (
            self._held_total <= self.limit or now - self._cut_at >= ARM_AFTER_SECONDS
        ):
            self._armed = True  # drained: from now on a lease's 429 says something new
            self._generation += 1
        current = report.epoch == self._epoch and report.generation == self._generation
        if self._adaptive:
            if report.fresh_rate_limited and current and self._armed:
                self._cut(now, report.fresh_rate_limited, report.retry_after_seconds)
            self._fold_successes(report.successes, now)
        self._reallocate(now)
        grant = holder.target
        if grant > holder.held:
            grant = min(grant, holder.held + max(0, self.limit - self._held_total))
        holder.granted = grant
        self._set_held(holder, max(grant, report.in_flight))
        pause = max(0.0, self._paused_until - now)
        return ShareGrant(grant, self._generation, self._epoch, pause, self.limit)

    def leave(self, worker: str) -> None:
        """Forget a worker (it finished or died): what it held is free again."""
        holder = self._holders.pop(worker, None)
        if holder is not None:
            self._held_total -= holder.held
            self._usable_total -= holder.usable
            self._in_flight_total -= holder.in_flight
            self._dirty = True

    def expire(self, now: float, silent_seconds: float) -> list[str]:
        """Forget every worker silent for `silent_seconds`; their ids."""
        gone = [w for w, h in self._holders.items() if now - h.seen_at >= silent_seconds]
        for worker in gone:
            self.leave(worker)
        return gone

    def view(self) -> FleetSharesView:
        holders = self._holders
        return FleetSharesView(
            limit=self.limit,
            max_limit=self.max_limit,
            generation=self._generation,
            ceiling=self._rule.ceiling,
            held_total=self._held_total,
            in_flight_total=self._in_flight_total,
            demand_total=sum(h.demand for h in holders.values()),
            shares={w: h.granted for w, h in sorted(holders.items())},
            demands={w: h.demand for w, h in sorted(holders.items())},
            paused_until=self._paused_until,
            cuts=self._cuts,
            reports=self._reports,
        )

    # -- internals -------------------------------------------------------------------------

    def _set_held(self, holder: _Holder, held: int) -> None:
        """Set what a worker holds, and what of it it can use (up to its demand)."""
        usable = min(held, max(holder.demand, holder.in_flight))
        self._held_total += held - holder.held
        self._usable_total += usable - holder.usable
        holder.held = held
        holder.usable = usable

    def _fold_successes(self, successes: int, now: float) -> None:
        if successes <= 0:
            return
        before = self._rule.limit
        # `in_flight` as the rule sees it after a release: saturated means the fleet reached it
        sample = RequestLimitSample(
            now=now, rate_limited=False, in_flight=self._in_flight_total - 1
        )
        if self._cuts == 0:
            successes *= SLOW_START_WEIGHT
        for _ in range(successes):
            self._rule.update(sample)
        if self._rule.limit != before:
            self._dirty = True

    def _cut(self, now: float, refused_leases: int, retry_after: float | None) -> None:
        """One cut for this cascade, from the capacity the fleet could use; a new generation.

        The refused concurrency is taken as what the fleet was granted and could use (per
        worker, its grant up to its demand), the refused leases included: known exactly here,
        unlike in-flight counts of reports up to an interval old. A refused probe of the
        ceiling only goes back to the hold level. Refusals that go on in the cooldown of the
        first one at half its concurrency or less also pause every admission to the cooldown's
        end (the cuts do not stop them: a rate limit or a quota, not a concurrency limit).
        """
        rule = self._rule
        before = rule.limit
        probing = rule.ceiling is not None and before >= rule.ceiling
        refused = max(1, min(before, self._usable_total + refused_leases))
        rule.update(
            RequestLimitSample(
                now=now, rate_limited=True, in_flight=self._in_flight_total, lease_in_flight=refused
            )
        )
        if not probing:
            if now < self._cooldown_until and 2 * refused <= self._refused_at:
                self._paused_until = max(self._paused_until, self._cooldown_until)
            elif now >= self._cooldown_until:
                self._refused_at = refused
            if retry_after is not None:
                self._cooldown_until = max(self._cooldown_until, now + retry_after)
        self._generation += 1
        self._armed = False
        self._cut_at = now
        self._cuts += 1
        self._dirty = True
        self._alloc_at = -math.inf

    def _reallocate(self, now: float) -> None:
        rotation = int(now // ROTATE_SECONDS)
        stale = self._dirty or rotation != self._rotation
        if not stale or now - self._alloc_at < ALLOCATE_INTERVAL:
            return
        workers = list(self._holders)
        shares = allocate(self.limit, [self._holders[w].demand for w in workers], rotation)
        for worker, share in zip(workers, shares, strict=True):
            self._holders[worker].target = share
        self._dirty = False
        self._rotation = rotation
        self._alloc_at = now
