"""`ShareCoordinator`: the Ray-free heart of one provider's limit coordinator.

One coordinator serves one provider: a `FleetShares` per share key (each request resource of
the provider, and the provider itself when it serves two or more endpoints, as request
admission keys them). A worker sends one batch of `ShareReport`s per report (every ~200 ms, and
at once after a 429) and gets one `ShareGrant` per key back. The Ray actor in `ray_engine.py`
only wraps this class; the simulated fleet (`fleet_sim.py`) calls it directly. A key whose
workers forward the provider's rate-limit headers also gets a `FleetBudget` (from the first
report that carries them): its admit caps and pauses ride on the same grants.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from rowloom.distributed.budget import BudgetView, FleetBudget
from rowloom.distributed.shares import FleetShares, FleetSharesView
from rowloom.models.request_admission.shares import ShareGrant, ShareReport


@dataclass(frozen=True, slots=True)
class ShareKeyConfig:
    """One share key: its fleet max limit and the settling AIMD's parameters.

    `adaptive=False` makes the key a fixed cap split into shares (no AIMD): a resource of a
    provider whose own key adapts, so one 429 does not cut both the model and the provider.
    """

    max_limit: int
    decrease_factor: float = 0.75
    increase_step: int = 1
    successes_until_increase: int = 25
    adaptive: bool = True


class UnknownShareKeyError(KeyError):
    """A report named a share key this coordinator does not serve."""


class ShareCoordinator:
    """Fleet limits of one provider's share keys, split into worker shares.

    `epoch` names this incarnation (random by default): after a restart, reports that carry
    another epoch's generation never cut the new limits, which start low again.
    """

    def __init__(self, keys: Mapping[str, ShareKeyConfig], *, epoch: int | None = None) -> None:
        if not keys:
            raise ValueError("a coordinator serves at least one share key")
        self._epoch = epoch if epoch is not None else random.getrandbits(62) + 1
        self._fleets = {
            key: FleetShares(
                cfg.max_limit,
                epoch=self._epoch,
                decrease_factor=cfg.decrease_factor,
                increase_step=cfg.increase_step,
                successes_until_increase=cfg.successes_until_increase,
                adaptive=cfg.adaptive,
            )
            for key, cfg in keys.items()
        }
        self._budgets: dict[str, FleetBudget] = {}
        self._workers: set[str] = set()
        self._reports = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._fleets)

    @property
    def reports(self) -> int:
        """Reports handled since start."""
        return self._reports

    def report(
        self, worker: str, reports: Mapping[str, ShareReport], now: float
    ) -> dict[str, ShareGrant]:
        """Fold one worker's reports in; its grant for every key it reported."""
        self._reports += 1
        self._workers.add(worker)
        grants: dict[str, ShareGrant] = {}
        for key, report in reports.items():
            fleet = self._fleets.get(key)
            if fleet is None:
                raise UnknownShareKeyError(key)
            grant = fleet.report(worker, report, now)
            budget = self._budgets.get(key)
            if budget is None and report.budget is not None:
                budget = self._budgets[key] = FleetBudget(now)
            if budget is not None:
                cap, pause = budget.report(
                    worker, report.admitted, report.demand, report.budget, now
                )
                grant = replace(grant, admit_cap=cap, pause_seconds=max(grant.pause_seconds, pause))
            grants[key] = grant
        return grants

    def leave(self, worker: str) -> None:
        """A worker finished or died: everything it held is free again."""
        self._workers.discard(worker)
        for fleet in self._fleets.values():
            fleet.leave(worker)
        for budget in self._budgets.values():
            budget.leave(worker)

    def view(self) -> dict[str, FleetSharesView]:
        """Each key's fleet limit, generation and shares per worker."""
        return {key: fleet.view() for key, fleet in self._fleets.items()}

    def budgets(self) -> dict[str, BudgetView]:
        """Each key's request budget, for the keys whose workers forwarded headers."""
        return {key: budget.view() for key, budget in self._budgets.items()}
