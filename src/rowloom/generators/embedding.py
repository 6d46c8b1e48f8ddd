"""Embedding columns: the vector of another column's text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rowloom.config.columns import EmbeddingColumnConfig
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.generators.base import CellContext, ColumnGenerator
from rowloom.generators.llm import facade_of
from rowloom.models.resources import ModelResourceCatalog


class EmbeddingGenerator(ColumnGenerator):
    """One embedding request per row; non-text targets are embedded as their string form."""

    def __init__(self, config: EmbeddingColumnConfig, catalog: ModelResourceCatalog) -> None:
        super().__init__(config)
        self.alias = config.model_alias
        self.target = config.target_column
        self._catalog = catalog

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        return self._catalog.scheduling_metadata((self.alias,))

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        value = row.get(self.target)
        if value is None:
            return None
        text = value if isinstance(value, str) else str(value)
        return await facade_of(ctx).embed(self.alias, text)
