"""`SeedDataset`: an opened seed that answers "which values feed these dataset rows"."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rowloom.config.dataset import DatasetConfig
from rowloom.config.seed import IndexRange, PartitionBlock, SeedConfig
from rowloom.seeds.blocks import BlockSource
from rowloom.seeds.errors import seed_error
from rowloom.seeds.readers import open_blocks
from rowloom.seeds.sampling import SeedSampler, WindowKey, select_segments

WINDOWS_HELD = 2
"""Windows of seed rows kept in memory at once."""


def selected_range(selection: IndexRange | PartitionBlock | None, num_rows: int) -> range:
    """The seed rows a selection covers; typed errors when it does not fit the seed."""
    if selection is None:
        return range(num_rows)
    if isinstance(selection, PartitionBlock):
        if selection.num_partitions > num_rows:
            raise seed_error(
                "seed_selection_out_of_range",
                "selection_strategy.num_partitions",
                f"{selection.num_partitions} partitions of a seed of {num_rows} rows would "
                "leave some empty",
            )
        selection = selection.to_index_range(num_rows)
    if selection.end >= num_rows:
        raise seed_error(
            "seed_selection_out_of_range",
            "selection_strategy.end",
            f"end {selection.end} is past the seed's last row ({num_rows - 1})",
        )
    return range(selection.start, selection.end + 1)


class SeedDataset:
    """An opened seed: its columns, its selected rows, and values for any dataset rows.

    Reads whole blocks (parquet row groups, or `BLOCK_ROWS`-row blocks) and keeps at most
    `WINDOWS_HELD` windows of them in memory; thread-safe.
    """

    def __init__(self, blocks: BlockSource, config: SeedConfig, seed: int) -> None:
        self.config = config
        self._blocks = blocks
        self.num_source_rows = int(sum(blocks.block_rows))
        if self.num_source_rows == 0:
            raise seed_error("empty_seed", "source", "the seed has no rows")
        self.selection = selected_range(config.selection_strategy, self.num_source_rows)
        segments = select_segments(blocks.block_rows, self.selection.start, self.selection.stop)
        self.sampler = SeedSampler(
            segments,
            strategy=config.sampling_strategy,
            with_replacement=config.with_replacement,
            seed=seed,
            window_rows=blocks.window_rows,
        )
        self.column_names: tuple[str, ...] = tuple(blocks.schema.names)
        self._lock = threading.Lock()
        self._windows: OrderedDict[WindowKey, pa.Table] = OrderedDict()
        self._last: tuple[tuple[int, ...], pa.Table] | None = None

    @property
    def num_rows(self) -> int:
        """Rows in the selection."""
        return len(self.selection)

    def take(self, rows: Sequence[int]) -> pa.Table:
        """The seed row (all columns) that feeds each dataset row in `rows`, in order."""
        key = tuple(rows)
        with self._lock:
            if self._last is not None and self._last[0] == key:
                return self._last[1]
            parts: list[pa.Table] = []
            order: list[Any] = []
            for window_key, where, idx in self.sampler.locate(key):
                parts.append(self._window(window_key).take(pa.array(idx)))
                order.append(where)
            table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            if len(parts) > 1:
                table = table.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))
            self._last = (key, table)
            return table

    def column(self, name: str, rows: Sequence[int]) -> list[Any]:
        """One column's values for `rows` (see `take`)."""
        if name not in self.column_names:
            raise seed_error(
                "unknown_seed_column",
                "source",
                f"the seed has no column {name!r}; it has {list(self.column_names)}",
            )
        return self.take(rows).column(name).to_pylist()  # type: ignore[no-any-return]

    def _window(self, key: WindowKey) -> pa.Table:
        table = self._windows.get(key)
        if table is not None:
            self._windows.move_to_end(key)
            return table
        pieces = [
            self._blocks.read_block(s.block).slice(s.lo, s.rows)
            for s in self.sampler.window_segments(key)
        ]
        table = pa.concat_tables(pieces).combine_chunks() if len(pieces) > 1 else pieces[0]
        self._windows[key] = table
        while len(self._windows) > WINDOWS_HELD:
            self._windows.popitem(last=False)
        return table

    def close(self) -> None:
        """Release files and any spooled copy."""
        with self._lock:
            self._windows.clear()
            self._last = None
        self._blocks.close()


def open_seed(config: SeedConfig, seed: int, base_dir: Path | None = None) -> SeedDataset:
    """Open a seed for a run with run seed `seed`; relative paths resolve against `base_dir`
    (else the working directory)."""
    return SeedDataset(open_blocks(config.source, base_dir), config, seed)


def compile_seed(
    config: DatasetConfig, base_dir: Path | None = None
) -> tuple[DatasetConfig, SeedDataset | None]:
    """The config with its seed's columns added, and the opened seed (None without one).

    Relative seed paths resolve against `base_dir`, else the config's own (the folder of its
    file). Reads only what it must (parquet footers, a small file, a folder listing), before any
    model call; raises `ConfigValidationError` for a seed that cannot be used.
    """
    if config.seed_config is None:
        return config, None
    where = base_dir if base_dir is not None else config.base_dir
    dataset = open_seed(config.seed_config, config.effective_seed, where)
    try:
        return config.with_seed_columns(dataset.column_names), dataset
    except BaseException:
        dataset.close()
        raise
