"""Seed-dataset columns: values copied from a parquet, CSV or JSONL file."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from rowloom.config.columns import SeedDatasetColumnConfig, SeedDatasetConfig
from rowloom.config.errors import ConfigIssue, ConfigValidationError
from rowloom.generators.base import BatchGenerator, BatchInput
from rowloom.generators.rng import stream_key


class SeedDataset:
    """The loaded seed file and its row order (ordered, or a seeded shuffle per pass)."""

    def __init__(self, config: SeedDatasetConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.table = _read(config)
        self.num_rows: int = int(self.table.num_rows)
        if self.num_rows == 0:
            raise ConfigValidationError(
                [ConfigIssue("empty_seed_dataset", "seed_dataset", "path", "the file has no rows")]
            )
        self._columns: dict[str, list[Any]] = {}
        self._perms: dict[int, list[int]] = {}

    def column(self, name: str) -> list[Any]:
        """All values of one source column (loaded once)."""
        if name not in self._columns:
            if name not in self.table.column_names:
                raise ConfigValidationError(
                    [
                        ConfigIssue(
                            "unknown_seed_column",
                            f"columns.{name}",
                            "source_column",
                            f"seed file has no column {name!r}; it has {self.table.column_names}",
                        )
                    ]
                )
            self._columns[name] = self.table.column(name).to_pylist()
        return self._columns[name]

    def source_row(self, global_row: int) -> int:
        """Which file row feeds dataset row `global_row`."""
        epoch, offset = divmod(global_row, self.num_rows)
        if self.config.sampling == "ordered":
            return offset
        perm = self._perms.get(epoch)
        if perm is None:
            rng = np.random.default_rng(stream_key(self.seed, "seed_dataset", str(epoch)))
            perm = self._perms[epoch] = [int(i) for i in rng.permutation(self.num_rows)]
        return perm[offset]


def _read(config: SeedDatasetConfig) -> pa.Table:
    fmt = config.resolved_format
    try:
        if fmt == "parquet":
            return pq.read_table(config.path)
        if fmt == "csv":
            return pacsv.read_csv(config.path)
        if fmt == "jsonl":
            return pajson.read_json(config.path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ConfigValidationError(
            [
                ConfigIssue(
                    "unreadable_seed_dataset",
                    "seed_dataset",
                    "path",
                    f"cannot read {config.path}: {exc}",
                )
            ]
        ) from None
    raise ConfigValidationError(
        [
            ConfigIssue(
                "unknown_seed_format", "seed_dataset", "format", f"unsupported format {fmt!r}"
            )
        ]
    )


class SeedColumnGenerator(BatchGenerator):
    """Copies `source_column` of the seed file for each row."""

    def __init__(self, config: SeedDatasetColumnConfig, dataset: SeedDataset) -> None:
        super().__init__(config)
        self.dataset = dataset
        self.values = dataset.column(config.source)

    def generate_batch(self, batch: BatchInput) -> list[Any]:
        src = self.dataset.source_row
        return [self.values[src(r)] for r in batch.global_rows]
