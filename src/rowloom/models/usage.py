"""Token usage: who asked (`CallTag`), what it cost (`UsageLedger`, `UsageTotals`).

The request executor adds the usage of every answered attempt to the run's ledger under the
cell that asked (column, row group) and the model alias that answered. A row group's usage is
taken out of the ledger when the row group is checkpointed and stored with it in the manifest,
so a resumed run adds the usage of the row groups it keeps to what it spends itself, and usage
spent on row groups that never finished is kept apart (`discarded`), never lost or counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rowloom.config.models import ModelPrice
from rowloom.models.clients.base import TokenUsage

__all__ = ["CallTag", "UsageCounts", "UsageLedger", "UsageTotals", "usage_report"]


@dataclass(frozen=True, slots=True)
class CallTag:
    """The cell a model call is made for: its column, row group and global row (None for a
    whole-row-group task)."""

    column: str
    row_group: int
    global_row: int | None = None


@dataclass(frozen=True, slots=True)
class UsageCounts:
    """Answered requests and their tokens."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: UsageCounts) -> UsageCounts:
        return UsageCounts(
            self.requests + other.requests,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @classmethod
    def of(cls, usage: TokenUsage | None) -> UsageCounts:
        """One answered request with `usage` (zero tokens when the provider sent none)."""
        if usage is None:
            return cls(requests=1)
        return cls(1, usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_json(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UsageCounts:
        return cls(
            int(data.get("requests", 0)),
            int(data.get("prompt_tokens", 0)),
            int(data.get("completion_tokens", 0)),
            int(data.get("reasoning_tokens", 0)),
        )


UsageKey = tuple[str, str]
"""(column, model alias)"""


class UsageTotals:
    """Usage by (column, model alias); JSON form `{column: {alias: counts}}`."""

    __slots__ = ("_by_key",)

    def __init__(self, by_key: Mapping[UsageKey, UsageCounts] | None = None) -> None:
        self._by_key: dict[UsageKey, UsageCounts] = dict(by_key or {})

    def add(self, column: str, alias: str, counts: UsageCounts) -> None:
        key = (column, alias)
        self._by_key[key] = self._by_key.get(key, UsageCounts()) + counts

    def merge(self, other: UsageTotals) -> None:
        for (column, alias), counts in other.items():
            self.add(column, alias, counts)

    def items(self) -> Iterable[tuple[UsageKey, UsageCounts]]:
        return sorted(self._by_key.items())

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def total(self) -> UsageCounts:
        out = UsageCounts()
        for counts in self._by_key.values():
            out = out + counts
        return out

    def by_column(self) -> dict[str, UsageCounts]:
        out: dict[str, UsageCounts] = {}
        for (column, _), counts in self.items():
            out[column] = out.get(column, UsageCounts()) + counts
        return out

    def by_alias(self) -> dict[str, UsageCounts]:
        out: dict[str, UsageCounts] = {}
        for (_, alias), counts in self.items():
            out[alias] = out.get(alias, UsageCounts()) + counts
        return out

    def as_json(self) -> dict[str, dict[str, dict[str, int]]]:
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (column, alias), counts in self.items():
            out.setdefault(column, {})[alias] = counts.as_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> UsageTotals:
        totals = cls()
        for column, by_alias in (data or {}).items():
            for alias, counts in by_alias.items():
                totals.add(column, alias, UsageCounts.from_json(counts))
        return totals


UNTAGGED = "(untagged)"
"""The column name usage is booked under when a call carries no `CallTag`."""


class UsageLedger:
    """Live usage of a run, per row group; the executor adds, the host takes per checkpoint.

    Single event loop: no locks needed.
    """

    __slots__ = ("_by_row_group", "_session")

    def __init__(self) -> None:
        self._by_row_group: dict[int | None, UsageTotals] = {}
        self._session = UsageTotals()

    def record(self, tag: CallTag | None, alias: str, usage: TokenUsage | None) -> None:
        """Book one answered request."""
        counts = UsageCounts.of(usage)
        row_group = tag.row_group if tag is not None else None
        column = tag.column if tag is not None else UNTAGGED
        totals = self._by_row_group.get(row_group)
        if totals is None:
            totals = self._by_row_group[row_group] = UsageTotals()
        totals.add(column, alias, counts)
        self._session.add(column, alias, counts)

    def take(self, row_group: int) -> UsageTotals:
        """Remove and return a row group's usage (at its checkpoint)."""
        return self._by_row_group.pop(row_group, None) or UsageTotals()

    def take_rest(self) -> UsageTotals:
        """Remove and return the usage of every row group not taken (unfinished ones)."""
        rest = UsageTotals()
        for totals in self._by_row_group.values():
            rest.merge(totals)
        self._by_row_group.clear()
        return rest

    @property
    def session(self) -> UsageTotals:
        """Everything this process booked (live; for progress displays)."""
        return self._session


def _cost(counts: UsageCounts, price: ModelPrice | None) -> float | None:
    if price is None:
        return None
    return (
        counts.prompt_tokens * price.prompt_per_million
        + counts.completion_tokens * price.completion_per_million
    ) / 1_000_000


def usage_report(totals: UsageTotals, prices: Mapping[str, ModelPrice | None]) -> dict[str, Any]:
    """Token usage for summaries, the manifest and the report: totals, per model alias and per
    column, with an estimated cost wherever every alias involved has a price."""

    def entry(counts: UsageCounts, cost: float | None) -> dict[str, Any]:
        out: dict[str, Any] = counts.as_json()
        out["total_tokens"] = counts.total_tokens
        if cost is not None:
            out["estimated_cost"] = round(cost, 6)
        return out

    by_model = {
        alias: entry(counts, _cost(counts, prices.get(alias)))
        for alias, counts in totals.by_alias().items()
    }
    column_costs: dict[str, float | None] = {}
    for (column, alias), counts in totals.items():
        cost = _cost(counts, prices.get(alias))
        before = column_costs.get(column, 0.0)
        column_costs[column] = None if cost is None or before is None else before + cost
    by_column = {
        column: entry(counts, column_costs.get(column))
        for column, counts in totals.by_column().items()
    }
    priced = [m["estimated_cost"] for m in by_model.values() if "estimated_cost" in m]
    unpriced = sorted(alias for alias, m in by_model.items() if "estimated_cost" not in m)
    currencies = sorted({p.currency for p in prices.values() if p is not None})
    return {
        "total": entry(totals.total(), sum(priced) if priced else None),
        "by_model": by_model,
        "by_column": by_column,
        "currency": currencies[0] if len(currencies) == 1 else None,
        "unpriced_models": unpriced if priced else [],
    }
