"""Hugging Face seeds through `huggingface_hub`'s `HfFileSystem` (the `hf` extra).

The token is the source's `token` (a literal or a variable name), else `HF_TOKEN` as
`huggingface_hub` reads it; the endpoint is the source's, else `HF_ENDPOINT`, else the Hub.
"""

from __future__ import annotations

import os
from typing import IO, Any

from rowloom.config.seed import HuggingFaceSeedSource
from rowloom.seeds.blocks import Opener
from rowloom.seeds.errors import seed_error
from rowloom.seeds.files import DATA_FORMATS, has_glob


def hf_filesystem(source: HuggingFaceSeedSource) -> Any:
    """A fresh `HfFileSystem` for the source (no instance cache: listings are not stale)."""
    try:
        from huggingface_hub import HfFileSystem
    except ImportError:
        raise seed_error(
            "missing_dependency",
            "source.seed_type",
            "Hugging Face seeds need huggingface_hub: pip install 'rowloom[hf]'",
        ) from None
    endpoint = source.endpoint or os.environ.get("HF_ENDPOINT") or None
    return HfFileSystem(token=source.resolve_token(), endpoint=endpoint, skip_instance_cache=True)


def hf_files(source: HuggingFaceSeedSource) -> tuple[list[str], list[int], Opener]:
    """The data files the source's path names (a file, a glob or a folder), their sizes and an
    opener; typed errors when the repository or files cannot be found or reached."""
    fs = hf_filesystem(source)
    path = source.repo_path
    try:
        if has_glob(path):
            found = fs.glob(path, detail=True)
        elif fs.isdir(path):
            found = fs.find(path, detail=True)
            found = {p: i for p, i in found.items() if _is_data(p)}
        else:
            found = {path: fs.info(path)}
    except Exception as exc:  # not found, network and HTTP errors of the hub client
        if isinstance(exc, FileNotFoundError) or "NotFound" in type(exc).__name__:
            raise seed_error(
                "seed_not_found", "source.path", f"hf://{path} does not exist: {_first_line(exc)}"
            ) from None
        raise seed_error(
            "seed_unreachable", "source.path", f"cannot list hf://{path}: {_first_line(exc)}"
        ) from None
    files = sorted(p for p, info in found.items() if info.get("type", "file") == "file")
    if not files:
        raise seed_error("seed_no_files", "source.path", f"no data file matches hf://{path}")
    sizes = [int(found[p].get("size") or 0) for p in files]

    def opener(p: str) -> IO[bytes]:
        try:
            handle: IO[bytes] = fs.open(p, "rb")
        except Exception as exc:
            raise OSError(f"cannot open hf://{p}: {exc}") from None
        return handle

    return files, sizes, opener


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _is_data(path: str) -> bool:
    return any(path.lower().endswith(ext) for ext in DATA_FORMATS)
