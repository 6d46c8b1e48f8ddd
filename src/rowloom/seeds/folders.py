"""Folder seeds: one row per file (`directory`), plus its text (`file_contents`).

Columns, as the reference defines them: `source_kind`, `source_path` (absolute), `relative_path`
(POSIX, from the folder), `file_name`, and for `file_contents` the file's text in `content`.
Hidden files and folders (a name starting with `.`) are skipped unless `file_pattern` starts
with `.`. Contents are read at open when the files are small in total (so a bad encoding is
reported before any model call), else block by block as rows need them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pyarrow as pa

from rowloom.config.seed import DirectorySeedSource, FileContentsSeedSource
from rowloom.seeds.blocks import SPOOL_BYTES, BlockSource, TableBlocks
from rowloom.seeds.errors import seed_error
from rowloom.seeds.files import match_files

FILE_BLOCK_ROWS = 256
"""Files per block of a folder seed."""
FILE_WINDOW_ROWS = 1024
"""Files a shuffle mixes at once (a folder of up to this many files is shuffled uniformly)."""

FolderSource = DirectorySeedSource | FileContentsSeedSource


def folder_blocks(source: FolderSource, base_dir: Path | None = None) -> BlockSource:
    """The folder's matching files as seed rows."""
    root = Path(os.path.expanduser(source.path))
    if base_dir is not None and not root.is_absolute():
        root = base_dir / root
    root = root.resolve()
    if not root.is_dir():
        raise seed_error("seed_not_found", "source.path", f"folder {str(root)!r} does not exist")
    relative = list_files(root, source.recursive, source.file_pattern.startswith("."))
    matched = match_files(relative, source.file_pattern)
    if not matched:
        where = "under" if source.recursive else "directly in"
        raise seed_error(
            "seed_no_files",
            "source.file_pattern",
            f"no file matches {source.file_pattern!r} {where} {str(root)!r}",
        )
    kind = "file_contents" if isinstance(source, FileContentsSeedSource) else "directory_file"
    manifest = pa.table(
        {
            "source_kind": [kind] * len(matched),
            "source_path": [str(root / p) for p in matched],
            "relative_path": matched,
            "file_name": [PurePosixPath(p).name for p in matched],
        }
    )
    if not isinstance(source, FileContentsSeedSource):
        return _windowed(TableBlocks(manifest, FILE_BLOCK_ROWS))
    total = sum((root / p).stat().st_size for p in matched)
    if total <= SPOOL_BYTES:
        contents = [_read_text(root / p, source.encoding) for p in matched]
        table = manifest.append_column("content", pa.array(contents, pa.string()))
        return _windowed(TableBlocks(table, FILE_BLOCK_ROWS))
    return ContentBlocks(manifest, source.encoding)


def _windowed(blocks: TableBlocks) -> TableBlocks:
    blocks.window_rows = FILE_WINDOW_ROWS
    return blocks


def list_files(root: Path, recursive: bool, include_hidden: bool) -> list[str]:
    """The files under `root` as POSIX paths relative to it (hidden ones only if asked)."""
    out: list[str] = []
    for folder, dirs, files in os.walk(root):
        if not include_hidden:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(folder).relative_to(root)
        out.extend(
            (base / name).as_posix() for name in files if include_hidden or not name.startswith(".")
        )
        if not recursive:
            break
    return out


def _read_text(path: Path, encoding: str) -> str:
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise seed_error(
            "unreadable_seed",
            "source.encoding",
            f"{str(path)!r} is not {encoding} text: {exc.reason} at byte {exc.start}",
        ) from None
    except OSError as exc:
        raise seed_error(
            "unreadable_seed", "source.path", f"cannot read {str(path)!r}: {exc.strerror}"
        ) from None


class ContentBlocks:
    """A large folder's files, their text read one block of files at a time."""

    window_rows = FILE_WINDOW_ROWS

    def __init__(self, manifest: pa.Table, encoding: str) -> None:
        self._manifest = TableBlocks(manifest, FILE_BLOCK_ROWS)
        self._encoding = encoding
        self.block_rows: Sequence[int] = self._manifest.block_rows
        self._schema = manifest.schema.append(pa.field("content", pa.string()))

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def read_block(self, index: int) -> pa.Table:
        block = self._manifest.read_block(index)
        paths = block.column("source_path").to_pylist()
        contents = [_read_text(Path(p), self._encoding) for p in paths]
        return block.append_column("content", pa.array(contents, pa.string()))

    def close(self) -> None:
        pass
