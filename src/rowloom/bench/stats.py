"""Summaries of one metric over benchmark iterations, and the trimmed check the gates use.

The gates say a claim must still hold after dropping the fastest and slowest iteration;
`SummaryStats.trimmed_mean` is that view (None with fewer than three iterations).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks of an ascending, non-empty sequence."""
    if not ordered:
        raise ValueError("quantile of an empty sequence")
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class SummaryStats:
    """mean, p50, p95, min, max and stdev of one metric over iterations, plus a trimmed mean."""

    n: int
    mean: float
    p50: float
    p95: float
    minimum: float
    maximum: float
    stdev: float
    trimmed_mean: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> SummaryStats:
        """Summarise a non-empty sample."""
        if not values:
            raise ValueError("no values to summarise")
        ordered = sorted(float(v) for v in values)
        trimmed = ordered[1:-1] if len(ordered) >= 3 else None
        return cls(
            n=len(ordered),
            mean=statistics.fmean(ordered),
            p50=quantile(ordered, 0.5),
            p95=quantile(ordered, 0.95),
            minimum=ordered[0],
            maximum=ordered[-1],
            stdev=statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
            trimmed_mean=statistics.fmean(trimmed) if trimmed else None,
        )

    @property
    def cv(self) -> float | None:
        """Coefficient of variation (stdev / |mean|); None when the mean is 0."""
        return self.stdev / abs(self.mean) if self.mean else None

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": self.mean,
            "p50": self.p50,
            "p95": self.p95,
            "min": self.minimum,
            "max": self.maximum,
            "stdev": self.stdev,
            "trimmed_mean": self.trimmed_mean,
        }


def noise_note(stats: SummaryStats) -> str:
    """A plain sentence on how far the iterations of one metric can be trusted."""
    if stats.n < 3:
        return f"{stats.n} iteration(s): too few to drop the extremes; treat as indicative only"
    cv = stats.cv
    if cv is None:
        return f"{stats.n} iterations; every value is 0"
    level = "low" if cv < 0.02 else "moderate" if cv < 0.05 else "high"
    return (
        f"{stats.n} iterations, coefficient of variation {cv:.1%} ({level} noise); "
        f"spread {stats.minimum:.4g}..{stats.maximum:.4g}"
    )


def summarize_metrics(per_iteration: Sequence[dict[str, float]]) -> dict[str, SummaryStats]:
    """One `SummaryStats` per metric name present in any iteration (missing values skipped)."""
    names: dict[str, None] = {}
    for metrics in per_iteration:
        names.update(dict.fromkeys(metrics))
    out: dict[str, SummaryStats] = {}
    for name in names:
        values = [m[name] for m in per_iteration if isinstance(m.get(name), int | float)]
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            out[name] = SummaryStats.of(finite)
    return out
