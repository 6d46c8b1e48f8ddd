"""Which seed row feeds each dataset row: a pure function of the run seed and the row index.

The selected rows (an index range of the seed's natural order) are cut into segments, one per
block they touch. Dataset row `r` reads:

- `ordered`: selected row `r mod N`, so the seed repeats in order when a run needs more rows;
- `shuffle`: in pass `r div N`, the segments in a seeded random order are grouped into windows of
  at least `window_rows` rows, and each window's rows are permuted uniformly. A selection of up
  to `window_rows` rows is one window: a uniform shuffle. A larger one is read one window at a
  time (a few blocks), never whole;
- `with_replacement`: window `r div window_rows` draws a seeded random set of segments holding at
  least `window_rows` rows, and each of its rows is an independent uniform draw from them
  (exactly uniform draws with replacement when the selection fits one window).

Nothing depends on the buffer size, the engine or the order rows are asked for, so a run is the
same async or sequential, at any buffer size, and after a resume.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
WindowKey = tuple[str, int, int]

_BLOCK_ORDER, _WINDOW_PERM, _DRAW_SEGMENTS, _DRAW_ROWS = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class Segment:
    """Rows `lo`..`hi` (exclusive) of block `block`."""

    block: int
    lo: int
    hi: int

    @property
    def rows(self) -> int:
        return self.hi - self.lo


def select_segments(block_rows: Sequence[int], start: int, stop: int) -> list[Segment]:
    """The parts of the blocks that rows `start`..`stop` (exclusive) of the seed cover."""
    out: list[Segment] = []
    offset = 0
    for block, n in enumerate(block_rows):
        lo, hi = max(start - offset, 0), min(stop - offset, n)
        if lo < hi:
            out.append(Segment(block, lo, hi))
        offset += n
        if offset >= stop:
            break
    return out


@dataclass(frozen=True, slots=True)
class _Layout:
    order: IntArray  # segment indices in window order
    bounds: IntArray  # cumulative rows at the end of each window
    firsts: list[int]  # index into `order` where each window starts


class SeedSampler:
    """Maps dataset rows to (window, row within window) for one seed selection."""

    def __init__(
        self,
        segments: Sequence[Segment],
        *,
        strategy: Literal["ordered", "shuffle"],
        with_replacement: bool,
        seed: int,
        window_rows: int,
    ) -> None:
        if not segments:
            raise ValueError("a seed selection needs at least one row")
        self.segments = list(segments)
        self.mode = "replace" if with_replacement else strategy
        self.window_rows = window_rows
        self._seed = seed % 2**64
        self._sizes = np.array([s.rows for s in segments], dtype=np.int64)
        self._ends = np.cumsum(self._sizes)
        self.num_rows = int(self._ends[-1])
        self._layouts: OrderedDict[int, _Layout] = OrderedDict()
        self._perms: OrderedDict[WindowKey, IntArray] = OrderedDict()

    def _rng(self, *parts: int) -> np.random.Generator:
        return np.random.default_rng([self._seed, *parts])

    def locate(self, rows: Sequence[int]) -> list[tuple[WindowKey, IntArray, IntArray]]:
        """For each window the rows touch: its key, which of `rows` it serves (positions in
        `rows`) and which of its rows they read."""
        r = np.asarray(rows, dtype=np.int64)
        if self.mode == "ordered":
            pos = r % self.num_rows
            seg = np.searchsorted(self._ends, pos, side="right")
            within = pos - (self._ends[seg] - self._sizes[seg])
            return self._group("ordered", np.zeros_like(seg), seg, within)
        if self.mode == "replace":
            windows, offsets = np.divmod(r, self.window_rows)
            return self._group("replace", windows, np.zeros_like(windows), offsets)
        epochs, pos = np.divmod(r, self.num_rows)
        windows = np.empty_like(r)
        within = np.empty_like(r)
        for epoch in np.unique(epochs).tolist():
            mask = epochs == epoch
            bounds = self._layout(epoch).bounds
            w = np.searchsorted(bounds, pos[mask], side="right")
            windows[mask] = w
            within[mask] = pos[mask] - np.where(w > 0, bounds[np.maximum(w - 1, 0)], 0)
        return self._group("shuffle", epochs, windows, within)

    def _group(
        self, kind: str, a: IntArray, b: IntArray, within: IntArray
    ) -> list[tuple[WindowKey, IntArray, IntArray]]:
        out: list[tuple[WindowKey, IntArray, IntArray]] = []
        span = int(b.max()) + 1 if len(b) else 1
        uniq, inverse = np.unique(a * span + b, return_inverse=True)
        inverse = inverse.reshape(-1)
        for n, combined in enumerate(uniq.tolist()):
            ka, kb = divmod(int(combined), span)
            key: WindowKey = (kind, ka, kb)
            where = np.flatnonzero(inverse == n).astype(np.int64)
            idx = within[where]
            if kind != "ordered":
                idx = self._permutation(key)[idx]
            out.append((key, where, idx))
        return out

    def window_segments(self, key: WindowKey) -> list[Segment]:
        """The segments whose rows, concatenated in this order, make the window."""
        kind, a, b = key
        if kind == "ordered":
            return [self.segments[b]]
        if kind == "shuffle":
            layout = self._layout(a)
            first = layout.firsts[b]
            last = layout.firsts[b + 1] if b + 1 < len(layout.firsts) else len(layout.order)
            return [self.segments[int(i)] for i in layout.order[first:last]]
        order = self._rng(_DRAW_SEGMENTS, a).permutation(len(self.segments))
        upto = int(np.searchsorted(np.cumsum(self._sizes[order]), self.window_rows)) + 1
        return [self.segments[int(i)] for i in order[:upto]]

    def _layout(self, epoch: int) -> _Layout:
        layout = self._layouts.get(epoch)
        if layout is None:
            order = self._rng(_BLOCK_ORDER, epoch).permutation(len(self.segments))
            bounds: list[int] = []
            firsts: list[int] = []
            held = 0
            for j, size in enumerate(self._sizes[order].tolist()):
                if held == 0:
                    firsts.append(j)
                held += size
                if held >= self.window_rows:
                    bounds.append((bounds[-1] if bounds else 0) + held)
                    held = 0
            if held:
                bounds.append((bounds[-1] if bounds else 0) + held)
            layout = _Layout(order.astype(np.int64), np.array(bounds, dtype=np.int64), firsts)
            self._layouts[epoch] = layout
            if len(self._layouts) > 4:
                self._layouts.popitem(last=False)
        return layout

    def _permutation(self, key: WindowKey) -> IntArray:
        perm = self._perms.get(key)
        if perm is None:
            size = sum(s.rows for s in self.window_segments(key))
            kind, a, b = key
            if kind == "shuffle":
                perm = self._rng(_WINDOW_PERM, a, b).permutation(size).astype(np.int64)
            else:
                draws = self._rng(_DRAW_ROWS, a).integers(0, size, size=self.window_rows)
                perm = draws.astype(np.int64)
            self._perms[key] = perm
            if len(self._perms) > 8:
                self._perms.popitem(last=False)
        return perm
