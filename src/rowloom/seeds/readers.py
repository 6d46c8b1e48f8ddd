"""Open any seed source as a `BlockSource`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.json as pajson
from pydantic import BaseModel

from rowloom.config.errors import ConfigValidationError
from rowloom.config.plugins import find_plugin
from rowloom.config.seed import (
    AgentRolloutSeedSource,
    DataFrameSeedSource,
    DirectorySeedSource,
    FileContentsSeedSource,
    HuggingFaceSeedSource,
    LocalFileSeedSource,
)
from rowloom.seeds.blocks import BlockSource, Opener, ParquetBlocks, TableBlocks, text_blocks
from rowloom.seeds.errors import seed_error
from rowloom.seeds.files import file_format, local_files
from rowloom.seeds.folders import folder_blocks
from rowloom.seeds.hf import hf_files
from rowloom.seeds.rollouts import rollout_blocks


def open_blocks(source: BaseModel, base_dir: Path | None = None) -> BlockSource:
    """The source's rows as blocks; typed errors for missing, empty or unreadable seeds."""
    if isinstance(source, DataFrameSeedSource):
        return TableBlocks(source.table())
    if isinstance(source, DirectorySeedSource | FileContentsSeedSource):
        return folder_blocks(source, base_dir)
    if isinstance(source, AgentRolloutSeedSource):
        return rollout_blocks(source, base_dir)
    if isinstance(source, LocalFileSeedSource):
        paths = local_files(source.path, base_dir)
        sizes = [os.path.getsize(p) for p in paths]
        return _file_blocks(paths, sizes, file_format(paths, source.format), _open_local)
    if isinstance(source, HuggingFaceSeedSource):
        paths, sizes, opener = hf_files(source)
        return _file_blocks(paths, sizes, file_format(paths, source.format), opener)
    return _plugin_blocks(source, base_dir)


def _plugin_blocks(source: BaseModel, base_dir: Path | None) -> BlockSource:
    """A `seed_reader` plugin's rows: its reader's `read(source, base_dir)`, read once."""
    kind = str(getattr(source, "seed_type", type(source).__name__))
    plugin = find_plugin("seed_reader", kind)
    if plugin is None:
        raise seed_error("unknown_seed_type", "source.seed_type", f"no seed reader for {kind!r}")
    try:
        data = plugin.impl_cls().read(source, base_dir)
        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data)
    except ConfigValidationError:
        raise
    except Exception as exc:  # the plugin's own failure, named
        raise seed_error(
            "unreadable_seed", "source", f"seed reader {kind!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    return TableBlocks(
        table.drop_columns([c for c in table.column_names if c.startswith("__index")])
    )


def _open_local(path: str) -> IO[bytes]:
    return open(path, "rb")


def _file_blocks(
    paths: Sequence[str], sizes: Sequence[int], fmt: str, opener: Opener
) -> BlockSource:
    if fmt == "parquet":
        return ParquetBlocks(paths, None if opener is _open_local else opener)
    if fmt in ("csv", "jsonl"):
        return text_blocks(paths, fmt, sizes, opener)
    tables = [_read_json(path, opener) for path in paths]
    names = tables[0].schema.names
    for table, path in zip(tables, paths, strict=True):
        if table.schema.names != names:
            raise seed_error(
                "seed_schema_mismatch",
                "source.path",
                f"{path} has columns {table.schema.names}; the first file has {names}",
            )
    return TableBlocks(pa.concat_tables(tables, promote_options="permissive"))


def _read_json(path: str, opener: Opener) -> pa.Table:
    """A `.json` file: an array of records, an object of columns, or JSON lines."""
    with opener(path) as handle:
        raw = handle.read()
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return pajson.read_json(pa.BufferReader(raw))
        except pa.ArrowInvalid as exc:
            raise seed_error(
                "unreadable_seed", "source.path", f"{path} is not JSON or JSON lines: {exc}"
            ) from None
    try:
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return pa.Table.from_pylist(data)
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            return pa.Table.from_pydict(data)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise seed_error(
            "unreadable_seed", "source.path", f"{path}: values do not fit one type: {exc}"
        ) from None
    shape = json.dumps(data)[:60]
    raise seed_error(
        "unreadable_seed",
        "source.path",
        f"{path} must hold an array of objects or an object of columns, not {shape}",
    )
