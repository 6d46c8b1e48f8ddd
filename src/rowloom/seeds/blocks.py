"""Block sources: a seed as an ordered list of row blocks, read one block at a time.

A block is the unit of reading: a parquet row group, or `BLOCK_ROWS` rows of anything else
(in-memory tables, and CSV/JSONL spooled to a temporary parquet file with row groups of exactly
`BLOCK_ROWS` rows, so a small CSV read whole and a large one spooled have the same blocks).
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from rowloom.seeds.errors import seed_error

BLOCK_ROWS = 65_536
"""Rows per block for sources without row groups of their own."""
WINDOW_ROWS = 262_144
"""Rows a shuffle mixes at once: a selection of up to this many rows is shuffled uniformly;
a larger one as windows of whole blocks taken in a random order (see `rowloom.seeds.sampling`)."""

Opener = Callable[[str], IO[bytes]]
"""Opens a file of the source's file system for binary reading."""


class BlockSource(Protocol):
    """A seed's rows as blocks in their natural order."""

    @property
    def schema(self) -> pa.Schema: ...

    @property
    def block_rows(self) -> Sequence[int]: ...

    @property
    def window_rows(self) -> int: ...

    def read_block(self, index: int) -> pa.Table: ...

    def close(self) -> None: ...


class TableBlocks:
    """An in-memory table cut into blocks of `block_size` rows."""

    window_rows = WINDOW_ROWS

    def __init__(self, table: pa.Table, block_size: int | None = None) -> None:
        block_size = block_size or BLOCK_ROWS
        self._table = table.combine_chunks()
        self._block_size = block_size
        n = table.num_rows
        self.block_rows: Sequence[int] = [
            min(block_size, n - start) for start in range(0, n, block_size)
        ]

    @property
    def schema(self) -> pa.Schema:
        return self._table.schema

    def read_block(self, index: int) -> pa.Table:
        return self._table.slice(index * self._block_size, self.block_rows[index])

    def close(self) -> None:
        pass


class ParquetBlocks:
    """Parquet files (sorted, one schema) whose row groups are the blocks. Only footers are
    read up front; a row group is read when asked for."""

    window_rows = WINDOW_ROWS

    def __init__(self, paths: Sequence[str], opener: Opener | None = None) -> None:
        self.on_close: Callable[[], object] | None = None
        self.paths = list(paths)
        self._opener = opener
        self._files: list[pq.ParquetFile] = []
        self._index: list[tuple[int, int]] = []  # block -> (file, row group)
        rows: list[int] = []
        schema: pa.Schema | None = None
        for path in paths:
            pf = self._open(path)
            if schema is None:
                schema = pf.schema_arrow
            elif pf.schema_arrow.names != schema.names:
                raise seed_error(
                    "seed_schema_mismatch",
                    "source.path",
                    f"{path} has columns {pf.schema_arrow.names}; the first file has "
                    f"{schema.names}",
                )
            for rg in range(pf.metadata.num_row_groups):
                n = pf.metadata.row_group(rg).num_rows
                if n > 0:
                    self._index.append((len(self._files), rg))
                    rows.append(n)
            self._files.append(pf)
        assert schema is not None
        self._schema = schema
        self.block_rows: Sequence[int] = rows

    def _open(self, path: str) -> pq.ParquetFile:
        try:
            source: Any = self._opener(path) if self._opener is not None else path
            return pq.ParquetFile(source)
        except (OSError, pa.ArrowInvalid) as exc:
            raise seed_error(
                "unreadable_seed", "source.path", f"cannot read {path} as parquet: {exc}"
            ) from None

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def read_block(self, index: int) -> pa.Table:
        file, rg = self._index[index]
        table = self._files[file].read_row_group(rg)
        if table.schema != self._schema:
            table = table.cast(self._schema)
        return table

    def close(self) -> None:
        for pf in self._files:
            pf.close()
        if self.on_close is not None:
            self.on_close()  # a spooled copy is removed now, not when collected


SPOOL_BYTES = 32 * 1024 * 1024
"""CSV/JSONL inputs larger than this (in total) are spooled to parquet instead of read whole."""


def text_blocks(
    paths: Sequence[str], fmt: str, sizes: Sequence[int], opener: Opener
) -> BlockSource:
    """CSV or JSONL files as blocks: read whole when small, else spooled to parquet."""
    if sum(sizes) <= SPOOL_BYTES:
        tables = [_read_whole(path, fmt, opener) for path in paths]
        return TableBlocks(_concat(tables, paths))
    return _spool(paths, fmt, opener)


def _read_whole(path: str, fmt: str, opener: Opener) -> pa.Table:
    try:
        with opener(path) as handle:
            if fmt == "csv":
                return pacsv.read_csv(handle)
            return pajson.read_json(handle)
    except (OSError, pa.ArrowInvalid) as exc:
        raise seed_error("unreadable_seed", "source.path", f"cannot read {path}: {exc}") from None


def _concat(tables: Sequence[pa.Table], paths: Sequence[str]) -> pa.Table:
    first = tables[0]
    for table, path in zip(tables[1:], paths[1:], strict=True):
        if table.schema.names != first.schema.names:
            raise seed_error(
                "seed_schema_mismatch",
                "source.path",
                f"{path} has columns {table.schema.names}; the first file has {first.schema.names}",
            )
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise seed_error(
            "seed_schema_mismatch", "source.path", f"the files' column types differ: {exc}"
        ) from None


class _TypesChanged(Exception):
    """A streamed CSV's inferred column types broke mid-file."""


def _spool(paths: Sequence[str], fmt: str, opener: Opener) -> ParquetBlocks:
    folder = tempfile.mkdtemp(prefix="rowloom-seed-")
    target = str(Path(folder) / "seed.parquet")
    try:
        try:
            _write_spool(paths, fmt, opener, target, as_text=False)
        except _TypesChanged:
            _write_spool(paths, fmt, opener, target, as_text=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    blocks = ParquetBlocks([target])
    blocks.on_close = weakref.finalize(blocks, shutil.rmtree, folder, True)
    return blocks


def _write_spool(
    paths: Sequence[str], fmt: str, opener: Opener, target: str, *, as_text: bool
) -> None:
    """Stream every file into one parquet file with row groups of exactly BLOCK_ROWS rows."""
    writer: pq.ParquetWriter | None = None
    pending: list[pa.RecordBatch] = []
    held = 0
    try:
        for path in paths:
            for batch in _stream(path, fmt, opener, as_text):
                if writer is None:
                    writer = pq.ParquetWriter(target, batch.schema)
                elif batch.schema != writer.schema:
                    batch = _conform(batch, writer.schema, path)
                pending.append(batch)
                held += batch.num_rows
                while held >= BLOCK_ROWS:
                    table = pa.Table.from_batches(pending)
                    writer.write_table(table.slice(0, BLOCK_ROWS), row_group_size=BLOCK_ROWS)
                    rest = table.slice(BLOCK_ROWS)
                    pending, held = rest.to_batches(), rest.num_rows
        if writer is not None and held:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=BLOCK_ROWS)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise seed_error("empty_seed", "source.path", "the seed files hold no rows")


def _conform(batch: pa.RecordBatch, schema: pa.Schema, path: str) -> pa.RecordBatch:
    if batch.schema.names != schema.names:
        raise seed_error(
            "seed_schema_mismatch",
            "source.path",
            f"{path} has columns {batch.schema.names}; the first file has {schema.names}",
        )
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise seed_error(
            "seed_schema_mismatch", "source.path", f"{path}: column types differ: {exc}"
        ) from None


def _stream(path: str, fmt: str, opener: Opener, as_text: bool) -> Iterator[pa.RecordBatch]:
    """A file's record batches (CSV columns all as text when `as_text`)."""
    try:
        with opener(path) as handle:
            if fmt != "csv":
                yield from pajson.open_json(handle)
                return
            convert = None
            if as_text:
                with opener(path) as head:
                    names = pacsv.open_csv(head).schema.names
                convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
            yield from pacsv.open_csv(handle, convert_options=convert)
    except pa.ArrowInvalid as exc:
        if fmt == "csv" and not as_text:
            raise _TypesChanged from None
        raise seed_error(
            "unreadable_seed",
            "source.path",
            f"cannot stream {path}: {exc} (if a column's type changes mid-file, convert the "
            "file to parquet)",
        ) from None
    except OSError as exc:
        raise seed_error("unreadable_seed", "source.path", f"cannot read {path}: {exc}") from None
