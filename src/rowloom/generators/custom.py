"""Custom columns: a user function (sync or async), per row (`cell_by_cell`) or per row group
(`full_column`, with a pandas DataFrame)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from rowloom.config.columns import CustomColumnConfig, function_parameters
from rowloom.config.errors import ConfigIssue, ConfigValidationError
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.errors import TaskError
from rowloom.generators.base import (
    BatchInput,
    CellContext,
    CellOutput,
    ColumnGenerator,
    TaskType,
)
from rowloom.models.facade import ModelFacade, SyncModelFacade
from rowloom.models.resources import ModelResourceCatalog


class CustomColumnError(Exception):
    """A custom function raised or broke its contract: a programming error that stops the run.

    Carries the column and global row; the original exception is the `__cause__`, with its
    traceback.
    """

    def __init__(self, column: str, global_row: int, cause: BaseException) -> None:
        super().__init__(
            f"custom column {column!r} failed on row {global_row}: {type(cause).__name__}: {cause}"
        )
        self.column = column
        self.global_row = global_row


class BoundModel:
    """One model alias of a custom function's `models`: the facade's calls without the alias,
    plus Data Designer's `generate(prompt, parser=..., system_prompt=...) -> (output, trace)`
    (`agenerate` from async functions)."""

    def __init__(self, facade: ModelFacade | SyncModelFacade, alias: str) -> None:
        self._facade = facade
        self.alias = alias
        self.chat = functools.partial(facade.chat, alias)
        self.structured = functools.partial(facade.structured, alias)
        self.embed = functools.partial(facade.embed, alias)

    def generate(
        self,
        prompt: str,
        *,
        parser: Callable[[str], Any] | None = None,
        system_prompt: str | None = None,
    ) -> tuple[Any, list[dict[str, str]]]:
        """A chat answer, parsed by `parser` when given, and the message trace (sync)."""
        if not isinstance(self._facade, SyncModelFacade):
            raise TypeError("use 'await model.agenerate(...)' in an async custom function")
        text = self._facade.chat(self.alias, prompt, system_prompt=system_prompt)
        return _parsed(prompt, system_prompt, text, parser)

    async def agenerate(
        self,
        prompt: str,
        *,
        parser: Callable[[str], Any] | None = None,
        system_prompt: str | None = None,
    ) -> tuple[Any, list[dict[str, str]]]:
        """`generate` for async custom functions."""
        if not isinstance(self._facade, ModelFacade):
            raise TypeError("use 'model.generate(...)' in a sync custom function")
        text = await self._facade.chat(self.alias, prompt, system_prompt=system_prompt)
        return _parsed(prompt, system_prompt, text, parser)


def _parsed(
    prompt: str, system: str | None, text: str, parser: Callable[[str], Any] | None
) -> tuple[Any, list[dict[str, str]]]:
    trace = [{"role": "system", "content": system}] if system else []
    trace += [{"role": "user", "content": prompt}, {"role": "assistant", "content": text}]
    return (parser(text) if parser is not None else text), trace


class ModelsView(Mapping[str, BoundModel]):
    """A custom function's `models`: `models["alias"]` (Data Designer's shape) and the
    facade's own calls, `models.chat("alias", ...)`."""

    def __init__(self, facade: ModelFacade | SyncModelFacade, aliases: Sequence[str]) -> None:
        self._facade = facade
        self._bound = {a: BoundModel(facade, a) for a in aliases}

    def __getitem__(self, alias: str) -> BoundModel:
        try:
            return self._bound[alias]
        except KeyError:
            raise KeyError(
                f"model alias {alias!r} is not in this column's model_aliases {sorted(self._bound)}"
            ) from None

    def __iter__(self) -> Any:
        return iter(self._bound)

    def __len__(self) -> int:
        return len(self._bound)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._facade, name)


class CustomGenerator(ColumnGenerator):
    """Calls `generator_function` per row or per row group; see `CustomColumnConfig`.

    A sync function runs in a worker thread and gets blocking model calls; an async one runs on
    the event loop. Scheduling metadata: the column's explicit `scheduling_metadata`, else
    derived from its `model_aliases` (one endpoint -> `model` metadata with the min cap;
    several endpoints -> deterministic `custom_model` metadata), else `local/default/1`.
    """

    task_type: ClassVar[TaskType] = "cell"

    def __init__(self, config: CustomColumnConfig, catalog: ModelResourceCatalog) -> None:
        super().__init__(config)
        self.function = config.generator_function
        self.is_async = config.is_async
        self.params = function_parameters(config.generator_function)[1:]
        self.generator_params = _typed_params(config)
        self._explicit = config.scheduling_metadata
        self._catalog = catalog
        if config.generation_strategy == "full_column":
            self.task_type = "batch"  # type: ignore[misc]

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        if self._explicit is not None:
            return self._explicit
        if self.model_aliases:
            return self._catalog.scheduling_metadata(self.model_aliases, "chat")
        return super().get_scheduling_metadata()

    async def generate_cell(self, row: Mapping[str, Any], ctx: CellContext) -> Any:
        view = dict(row)
        try:
            result = await self._call(view, ctx)
            return self._cell_value(result, view)
        except (TaskError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise CustomColumnError(self.name, ctx.global_row, exc) from exc

    async def agenerate_batch(self, batch: BatchInput, ctx: CellContext) -> list[Any]:
        import pandas as pd

        if not batch.global_rows:
            return []
        df = pd.DataFrame({c: list(v) for c, v in batch.columns.items()})
        try:
            result = await self._call(df.copy(), ctx)
            return self._column_values(result, len(df))
        except (TaskError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise CustomColumnError(self.name, batch.global_rows[0], exc) from exc

    async def _call(self, data: Any, ctx: CellContext) -> Any:
        facade = ctx.facade or ModelFacade(_NoModels(), allowed_aliases=())
        if self.is_async:
            args = self._arguments(data, facade)
            result = self.function(*args)
            return await result if inspect.isawaitable(result) else result
        sync = SyncModelFacade(facade, asyncio.get_running_loop())
        return await asyncio.to_thread(self.function, *self._arguments(data, sync))

    def _arguments(self, data: Any, facade: ModelFacade | SyncModelFacade) -> list[Any]:
        args = [data]
        for name in self.params:
            if name == "generator_params":
                args.append(self.generator_params)
            elif name == "models":
                args.append(ModelsView(facade, self.model_aliases))
            else:  # "facade": rowloom's facade, called with the alias
                args.append(facade)
        return args

    def _cell_value(self, result: Any, row: Mapping[str, Any]) -> Any:
        """The function's value, or (Data Designer's shape) the row dict it returned with the
        column and its side-effect columns added."""
        wanted = {self.name, *self.side_effect_columns}
        is_row = (
            isinstance(result, dict) and self.name in result and set(result) <= set(row) | wanted
        )
        if not self.side_effect_columns:
            return result[self.name] if is_row else result
        if not is_row:
            raise ValueError(
                f"with side_effect_columns the function returns the row dict with "
                f"{sorted(wanted)} added, got {type(result).__name__}"
            )
        missing = sorted(wanted - set(result))
        if missing:
            raise ValueError(f"the returned row lacks {missing}")
        return CellOutput(result[self.name], {c: result[c] for c in self.side_effect_columns})

    def _column_values(self, result: Any, rows: int) -> list[Any]:
        import pandas as pd

        if isinstance(result, pd.DataFrame):
            missing = sorted({self.name, *self.side_effect_columns} - set(result.columns))
            if missing:
                raise ValueError(f"the returned DataFrame lacks columns {missing}")
            values = _pylist(result[self.name])
            extras = {c: _pylist(result[c]) for c in self.side_effect_columns}
        elif self.side_effect_columns:
            raise ValueError("with side_effect_columns the function returns a DataFrame")
        else:
            values = _pylist(result) if isinstance(result, pd.Series) else list(result)
            extras = {}
        if len(values) != rows:
            raise ValueError(f"the function returned {len(values)} values for {rows} rows")
        if not extras:
            return values
        return [CellOutput(v, {c: extras[c][i] for c in extras}) for i, v in enumerate(values)]


def _pylist(series: Any) -> list[Any]:
    """A pandas Series as Python values (NaN/NA as None)."""
    import pandas as pd

    return [None if _is_missing(v, pd) else v for v in series.tolist()]


def _is_missing(value: Any, pd: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, dicts, arrays
        return False


def _typed_params(config: CustomColumnConfig) -> Any:
    """`generator_params`, validated into the pydantic model the function annotates it with
    when the config gives a dict."""
    params = config.generator_params
    if not isinstance(params, dict):
        return params
    try:
        annotation = typing.get_type_hints(config.generator_function).get("generator_params")
    except Exception:  # unresolvable annotations: pass the dict as given
        return params
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return params
    try:
        return annotation.model_validate(params)
    except ValidationError as exc:
        raise ConfigValidationError(
            [
                ConfigIssue(
                    "invalid_generator_params",
                    f"columns.{config.name}",
                    "generator_params." + ".".join(str(p) for p in err["loc"]),
                    err["msg"],
                )
                for err in exc.errors()
            ]
        ) from None


class _NoModels:
    async def execute_chat(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unreachable: the facade rejects every alias")

    async def execute_embedding(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unreachable: the facade rejects every alias")

    async def execute_image(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unreachable: the facade rejects every alias")
