"""Image columns: one generated image per row, stored as a file in the run folder."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from rowloom.config.columns import ImageColumnConfig
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.generators.base import CellContext, ColumnGenerator, compile_template, render
from rowloom.generators.llm import facade_of
from rowloom.generators.media import MediaStore
from rowloom.models.resources import ModelResourceCatalog


class ImageGenerator(ColumnGenerator):
    """Renders the prompt, asks the `image` model for one image, stores it; the value is its
    path relative to the run folder (`images/<column>/<row>.png`), or a `data:` URI when the
    run keeps its rows in memory (a preview). A dropped row's image file is removed when its
    row group is written, and so are all of a `drop: true` column's (unless a processor's
    output names them), so `images/` holds exactly the images the outputs point to."""

    writes_files = True

    def __init__(
        self, config: ImageColumnConfig, catalog: ModelResourceCatalog, media: MediaStore
    ) -> None:
        super().__init__(config)
        self.alias = config.model_alias
        self._catalog = catalog
        self._media = media
        self._prompt = compile_template(config.prompt)

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        return self._catalog.scheduling_metadata((self.alias,))

    def discard_files(self, values: Sequence[Any]) -> None:
        for value in values:
            self._media.remove(value)

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        data = await facade_of(ctx).image(self.alias, render(self._prompt, row))
        return await asyncio.to_thread(self._media.save_image, self.name, ctx.global_row, data)
