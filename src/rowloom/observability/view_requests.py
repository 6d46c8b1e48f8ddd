"""The request stream's part of the vectorised view: waits, attempts, resources, AIMD steps.

Pairings (each a `last_source_before(..., consume=True)` over one key):
- a wait end (completed, timeout, cancelled, denied) with its attempt's last wait start;
- a provider completion with its attempt's last `model_request_started`;
- an execution's wait start with its last provider completion before it: after a failed
  attempt, the time between them is the executor's wait before retrying (Retry-After after
  a 429: provider cooldown; backoff after other failures: provider execution).
Wait time overlapping a resource's rate-limit cooldown (from its snapshots'
`blocked_until_monotonic`) is provider cooldown; the rest is request admission.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import numpy as np

from rowloom.observability.series import CountSeries, StepSeries, merged_intervals, overlaps
from rowloom.observability.view_columns import (
    BoolArray,
    FloatArray,
    IntArray,
    Interner,
    StreamColumns,
    first_by_key,
    last_by_key,
    last_source_before,
    nullable_ints,
    sum_by_key,
)
from rowloom.observability.view_model import ResourceTimeline
from rowloom.observability.view_timelines import TimelineColumns

_WAIT_ENDS: Final = (
    "request_wait_completed",
    "request_wait_timeout",
    "request_wait_cancelled",
    "request_acquire_denied",
)
_LIMIT_KINDS: Final = (
    "request_limit_decreased",
    "request_limit_increased",
    "request_soft_ceiling_recovered",
    "request_fully_recovered",
    "request_effective_cap_changed",
)


class RequestJoin:
    """Everything the request stream contributes to the view."""

    def __init__(
        self,
        r: StreamColumns,
        attempt: IntArray,
        ex: IntArray,
        tl: TimelineColumns,
        origin: float,
        end: float | None,
    ) -> None:
        self.r, self.attempt, self.ex, self.tl = r, attempt, ex, tl
        self.origin, self.end = origin, end
        keys = Interner()
        self.key = r.codes("request_resource_key", keys)
        self.key_names = keys.values
        self.layer_request = self.layer_cooldown = self.layer_provider = 0.0
        self._completions()
        self._cooldowns = self._cooldown_intervals()
        self._waits()
        self._retry_gaps()
        self._leases()
        self.limit_changes: list[tuple[float, str, str, Any, Any]] = []
        self.resources = self._resources()
        rate = r.is_("request_rate_limited") & (self.key >= 0)
        self.rate_limit_cascades = [
            (t, self.key_names[k])
            for t, k in zip(r.t[rate].tolist(), self.key[rate].tolist(), strict=True)
        ]

    # --- attempts -------------------------------------------------------------------------------

    def _completions(self) -> None:
        r, tl, ex = self.r, self.tl, self.ex
        has_attempt = self.attempt >= 0
        started = r.is_("model_request_started") & has_attempt
        done = r.is_("model_request_completed") & has_attempt
        self.done = done
        hit, _ = last_source_before(self.attempt, started, done, consume=True)
        reasons = Interner()
        reason = r.codes("reason", reasons)
        names = [*reasons.values, "unknown"]
        outcome = np.where(reason >= 0, reason, len(names) - 1)
        self.outcome_names = names
        self.outcome = outcome
        self.success = outcome == reasons.codes.get("success", -2)
        self.rate_limited = outcome == reasons.codes.get("rate_limited", -2)
        self.attempts_by_outcome = _counts(outcome[done], names)
        matched = np.flatnonzero(hit >= 0)
        self.duration = np.zeros(r.n)
        self.duration[matched] = r.t[matched] - r.t[hit[matched]]
        self.matched_done = hit >= 0
        self.layer_provider += float(self.duration.sum())
        rec = ex >= 0
        tl.floats["provider_seconds"] += sum_by_key(
            np.where(rec & self.matched_done, ex, -1), self.duration, tl.size
        )
        tl.attempts += np.bincount(ex[started & rec], minlength=tl.size)[: tl.size]
        tl.floats["model_request_started_at"] = _first_time(r.t, started & rec, ex, tl.size)
        tl.floats["model_request_completed_at"] = _last_time(r.t, done & rec, ex, tl.size)

    def _cooldown_intervals(self) -> dict[int, list[tuple[float, float]]]:
        r = self.r
        until = r.floats("snapshot_blocked_until_monotonic")
        blocked = (self.key >= 0) & ~np.isnan(until) & (until > r.t)
        out: dict[int, list[tuple[float, float]]] = {}
        for k, rows in _groups(self.key, blocked):
            out[k] = merged_intervals(r.t[rows], until[rows])
        return out

    def _waits(self) -> None:
        r, tl, ex, t = self.r, self.tl, self.ex, self.r.t
        has_attempt = self.attempt >= 0
        self.wait_start = r.is_("request_wait_started") & has_attempt & (self.key >= 0)
        ends = r.is_(*_WAIT_ENDS) & has_attempt
        hit, _ = last_source_before(self.attempt, self.wait_start, ends, consume=True)
        self.wait_end = hit >= 0
        self.wait_hit = hit
        rows = np.flatnonzero(self.wait_end)
        start = t[hit[rows]]
        waited = t[rows] - start
        cooling = np.zeros(len(rows))
        start_key = self.key[hit[rows]]
        self.wait_end_key = np.full(r.n, -1, dtype=np.int64)
        self.wait_end_key[rows] = start_key
        for k, idx in _groups(start_key, np.ones(len(rows), dtype=bool)):
            cooling[idx] = overlaps(self._cooldowns.get(k, []), start[idx], t[rows[idx]])
        cooling = np.minimum(waited, cooling)
        capacity = np.maximum(0.0, waited - cooling)
        self.layer_cooldown += float(cooling.sum())
        self.layer_request += float(capacity.sum())
        owner = ex[rows]
        tl.floats["cooldown_wait_seconds"] += sum_by_key(owner, cooling, tl.size)
        tl.floats["request_wait_seconds"] += sum_by_key(owner, capacity, tl.size)
        granted = np.zeros(r.n, dtype=bool)
        granted[rows] = r.is_("request_wait_completed")[rows]
        tl.floats["request_wait_completed_at"] = _first_time(t, granted & (ex >= 0), ex, tl.size)
        tl.floats["request_wait_started_at"] = _first_time(
            t, self.wait_start & (ex >= 0), ex, tl.size
        )

    def _retry_gaps(self) -> None:
        r, tl, ex = self.r, self.tl, self.ex
        rec = ex >= 0
        hit, _ = last_source_before(ex, self.done & rec, self.wait_start & rec, consume=True)
        rows = np.flatnonzero(hit >= 0)
        failed = ~self.success[hit[rows]]
        rows, since = rows[failed], hit[rows][failed]
        gap = np.maximum(0.0, r.t[rows] - r.t[since])
        tl.floats["backoff_seconds"] += sum_by_key(ex[rows], gap, tl.size)
        cooling = self.rate_limited[since]
        self.layer_cooldown += float(gap[cooling].sum())
        self.layer_provider += float(gap[~cooling].sum())

    def _leases(self) -> None:
        r, tl, ex = self.r, self.tl, self.ex
        keyed = self.key >= 0
        self.acquired = r.is_("request_lease_acquired") & keyed
        self.released = r.is_("request_lease_released") & keyed
        rec = ex >= 0
        tl.floats["request_lease_acquired_at"] = _first_time(r.t, self.acquired & rec, ex, tl.size)
        tl.floats["request_lease_released_at"] = _last_time(r.t, self.released & rec, ex, tl.size)

    # --- resources ------------------------------------------------------------------------------

    def _resources(self) -> dict[str, ResourceTimeline]:
        r = self.r
        limits = self._limit_points()
        cap, cap_ok = nullable_ints(r.table.column("snapshot_static_cap"))
        top, top_ok = nullable_ints(r.table.column("snapshot_effective_max"))
        ones = np.ones(r.n)
        out: dict[str, ResourceTimeline] = {}
        for k in sorted(set(self.key[self.key >= 0].tolist()), key=self.key_names.__getitem__):
            mine = self.key == k
            done = self.done & mine
            caps = np.flatnonzero(mine & cap_ok)
            tops = np.flatnonzero(mine & top_ok)
            name = self.key_names[k]
            out[name] = ResourceTimeline(
                name,
                self._steps(self.acquired & mine, self.released & mine, ones),
                self._limit_series(limits.get(k)),
                self._steps(self.wait_start & mine, self.wait_end_key == k, ones),
                CountSeries.from_times(self.origin, r.t[done & self.rate_limited]),
                tuple(self._cooldowns.get(k, [])),
                int(cap[caps[-1]]) if len(caps) else None,
                int(top[tops[-1]]) if len(tops) else None,
                _counts(self.outcome[done], self.outcome_names),
                tuple(self.duration[done & self.matched_done & self.success].tolist()),
            )
        return out

    def _steps(self, up: BoolArray, down: BoolArray, ones: FloatArray) -> StepSeries:
        rows = np.flatnonzero(up | down)
        deltas = np.where(up[rows], ones[rows], -ones[rows])
        return StepSeries.from_values(self.origin, self.r.t[rows], np.cumsum(deltas), end=self.end)

    def _limit_points(self) -> dict[int, tuple[FloatArray, FloatArray]]:
        """Per resource, the times and values its current limit was set to, in order."""
        r = self.r
        current, ok = nullable_ints(r.table.column("snapshot_current_limit"))
        snap_rows = np.flatnonzero(ok & (self.key >= 0))
        changes = list(self._limit_change_points())
        rows = np.concatenate((snap_rows, np.array([c[0] for c in changes], dtype=np.int64)))
        source = np.concatenate(
            (np.zeros(len(snap_rows), np.int64), np.ones(len(changes), np.int64))
        )
        keys = self.key[rows]
        values = np.concatenate(
            (current[snap_rows].astype(np.float64), np.array([c[3] for c in changes], np.float64))
        )
        order = np.lexsort((values, source, rows, keys))  # per key, in (row, source) order
        rows, source, keys, values = rows[order], source[order], keys[order], values[order]
        # a snapshot repeating the previous point's value (the limit in force) sets nothing
        repeat = np.zeros(len(rows), dtype=bool)
        repeat[1:] = (source[1:] == 0) & (keys[1:] == keys[:-1]) & (values[1:] == values[:-1])
        rows, keys, values = rows[~repeat], keys[~repeat], values[~repeat]
        cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        return {
            int(k[0]): (r.t[part], v)
            for k, part, v in zip(
                np.split(keys, cuts), np.split(rows, cuts), np.split(values, cuts), strict=True
            )
            if len(k)
        }

    def _limit_change_points(self) -> Iterator[tuple[int, int, int, float]]:
        r = self.r
        rows = np.flatnonzero(r.is_(*_LIMIT_KINDS) & (self.key >= 0))
        diags = r.json_at("diagnostics", rows)
        for row, diag in zip(rows.tolist(), diags, strict=True):
            d = diag if isinstance(diag, dict) else {}
            if d.get("scope") == "provider":
                # a provider-limit change, reported on the resource whose release caused it:
                # not a change of that resource's own limit
                continue
            k = int(self.key[row])
            kind = r.kind_names[int(r.kind[row])]
            after = d.get("after")
            self.limit_changes.append(
                (float(r.t[row]), self.key_names[k], kind, d.get("before"), after)
            )
            if isinstance(after, int) and kind != "request_effective_cap_changed":
                yield (row, 1, k, float(after))

    def _limit_series(self, points: tuple[FloatArray, FloatArray] | None) -> StepSeries:
        if points is None:
            return StepSeries.from_values(
                self.origin, np.zeros(0), np.zeros(0), initial=None, end=self.end
            )
        times, values = points
        return StepSeries.from_values(self.origin, times, values, initial=None, end=self.end)


def _groups(key: IntArray, mask: BoolArray) -> Iterator[tuple[int, IntArray]]:
    """(key, rows in order) for each key >= 0 among the rows in `mask`."""
    rows = np.flatnonzero(mask & (key >= 0))
    if len(rows) == 0:
        return
    order = np.argsort(key[rows], kind="stable")
    rows = rows[order]
    k = key[rows]
    cuts = np.flatnonzero(k[1:] != k[:-1]) + 1
    for part in np.split(rows, cuts):
        yield int(key[part[0]]), part


def _counts(codes: IntArray, names: list[str]) -> dict[str, int]:
    """Counts per name, in first-seen order."""
    if len(codes) == 0:
        return {}
    uniq, first, counts = np.unique(codes, return_index=True, return_counts=True)
    return {names[int(uniq[i])]: int(counts[i]) for i in np.argsort(first)}


def _first_time(t: FloatArray, mask: BoolArray, key: IntArray, size: int) -> FloatArray:
    return _time_by_key(t, mask, key, size, first_by_key)


def _last_time(t: FloatArray, mask: BoolArray, key: IntArray, size: int) -> FloatArray:
    return _time_by_key(t, mask, key, size, last_by_key)


def _time_by_key(
    t: FloatArray,
    mask: BoolArray,
    key: IntArray,
    size: int,
    by_key: Callable[[IntArray, int], IntArray],
) -> FloatArray:
    """Per key: the time of its first or last (`by_key`) row in `mask` (NaN when none)."""
    rows = np.flatnonzero(mask & (key >= 0))
    at = by_key(key[rows], size)
    out = np.full(size, np.nan)
    out[at >= 0] = t[rows[at[at >= 0]]]
    return out
