"""Seed columns: values read from the run's seed (`rowloom.seeds`)."""

from __future__ import annotations

from typing import Any, ClassVar

from rowloom.config.columns import SeedDatasetColumnConfig
from rowloom.generators.base import BatchGenerator, BatchInput
from rowloom.seeds import SeedDataset


class SeedColumnGenerator(BatchGenerator):
    """Copies the seed column `source` for each row; the seed maps rows to seed rows. Reads may
    touch files or the network, so the host runs it off the event loop."""

    runs_in_thread: ClassVar[bool] = True

    def __init__(self, config: SeedDatasetColumnConfig, dataset: SeedDataset) -> None:
        super().__init__(config)
        self.dataset = dataset
        self.source = config.source

    def generate_batch(self, batch: BatchInput) -> list[Any]:
        return self.dataset.column(self.source, batch.global_rows)
