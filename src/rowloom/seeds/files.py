"""Which files a seed path names (a file, a glob or a folder) and in which format."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from rowloom.seeds.errors import seed_error

DATA_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
"""File extensions a `local` or `hf` seed reads, and their formats."""

GLOB_CHARS = frozenset("*?[")


def has_glob(path: str) -> bool:
    """True when the path holds a glob pattern."""
    return any(c in GLOB_CHARS for c in path)


def local_files(path: str, base_dir: Path | None = None) -> list[str]:
    """The data files a local path names: the file, the glob's matches or the folder's data files
    (recursive, hidden entries skipped), sorted; typed errors when there are none."""
    expanded = Path(os.path.expanduser(path))
    if base_dir is not None and not expanded.is_absolute():
        expanded = base_dir / expanded
    if has_glob(path):
        files = _glob(expanded)
        if not files:
            raise seed_error("seed_no_files", "source.path", f"no file matches {str(expanded)!r}")
        return files
    if expanded.is_dir():
        files = sorted(
            str(p)
            for p in expanded.rglob("*")
            if p.is_file()
            and p.suffix.lower() in DATA_FORMATS
            and not _hidden(p.relative_to(expanded))
        )
        if not files:
            raise seed_error(
                "seed_no_files",
                "source.path",
                f"folder {str(expanded)!r} holds no {'/'.join(sorted(set(DATA_FORMATS.values())))}"
                " files",
            )
        return files
    if not expanded.exists():
        raise seed_error("seed_not_found", "source.path", f"{str(expanded)!r} does not exist")
    return [str(expanded)]


def _glob(pattern: Path) -> list[str]:
    parts = pattern.parts
    first = next(i for i, part in enumerate(parts) if has_glob(part))
    root = Path(*parts[:first]) if first else Path(".")
    rest = str(Path(*parts[first:]))
    try:
        return sorted(str(p) for p in root.glob(rest) if p.is_file())
    except (ValueError, OSError) as exc:
        raise seed_error(
            "seed_bad_glob", "source.path", f"bad glob {str(pattern)!r}: {exc}"
        ) from None


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def file_format(paths: Sequence[str], explicit: str | None) -> str:
    """The one format of the files: `explicit`, else from their extensions (all alike)."""
    if explicit is not None:
        return explicit
    formats = {DATA_FORMATS.get(PurePosixPath(p).suffix.lower()) for p in paths}
    if None in formats:
        odd = next(p for p in paths if PurePosixPath(p).suffix.lower() not in DATA_FORMATS)
        raise seed_error(
            "unknown_seed_format",
            "source.format",
            f"cannot tell the format of {odd!r} from its extension; set source.format "
            "(parquet, csv, jsonl or json)",
        )
    if len(formats) > 1:
        raise seed_error(
            "mixed_seed_formats",
            "source.path",
            f"the files mix formats {sorted(f for f in formats if f)}; use one format per seed",
        )
    (fmt,) = formats
    assert fmt is not None
    return fmt


def match_files(relative_paths: Sequence[str], pattern: str) -> list[str]:
    """The relative paths whose file name matches `pattern` (case-sensitive), sorted."""
    return sorted(p for p in relative_paths if fnmatchcase(PurePosixPath(p).name, pattern))
