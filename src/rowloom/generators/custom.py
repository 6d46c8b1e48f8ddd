"""Custom columns: a user function (sync or async) called once per row."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from rowloom.config.columns import CustomColumnConfig
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.errors import TaskError
from rowloom.generators.base import CellContext, ColumnGenerator
from rowloom.models.facade import ModelFacade, SyncModelFacade
from rowloom.models.resources import ModelResourceCatalog


class CustomColumnError(Exception):
    """A custom function raised: a programming error that stops the run.

    Carries the column and global row; the original exception is the `__cause__`, with its
    traceback.
    """

    def __init__(self, column: str, global_row: int, cause: BaseException) -> None:
        super().__init__(
            f"custom column {column!r} failed on row {global_row}: {type(cause).__name__}: {cause}"
        )
        self.column = column
        self.global_row = global_row


class CustomGenerator(ColumnGenerator):
    """Calls `function(row, facade)`.

    An async function gets a `ModelFacade`; a sync one runs in a worker thread and gets a
    `SyncModelFacade` with the same (blocking) methods.

    Scheduling metadata: the column's explicit `scheduling_metadata`, else derived from its
    `model_aliases` (one endpoint -> `model` metadata with the min cap; several endpoints ->
    deterministic `custom_model` metadata), else `local/default/1`.
    """

    def __init__(
        self,
        config: CustomColumnConfig,
        catalog: ModelResourceCatalog,
    ) -> None:
        super().__init__(config)
        self.function = config.function
        self.is_async = config.is_async
        self._explicit = config.scheduling_metadata
        self._catalog = catalog

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        if self._explicit is not None:
            return self._explicit
        if self.model_aliases:
            from rowloom.scheduling.resolver import metadata_for_aliases

            return metadata_for_aliases(self.model_aliases, self._catalog, "chat")
        return super().get_scheduling_metadata()

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        if self.should_skip(row):
            return None
        facade = ctx.facade or ModelFacade(_NoModels(), allowed_aliases=())
        view = dict(row)
        try:
            if self.is_async:
                return await self.function(view, facade)
            sync_facade = SyncModelFacade(facade, asyncio.get_running_loop())
            return await asyncio.to_thread(self.function, view, sync_facade)
        except (TaskError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise CustomColumnError(self.name, ctx.global_row, exc) from exc


class _NoModels:
    async def execute_chat(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unreachable: the facade rejects every alias")

    async def execute_embedding(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unreachable: the facade rejects every alias")

    async def execute_image(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unreachable: the facade rejects every alias")
