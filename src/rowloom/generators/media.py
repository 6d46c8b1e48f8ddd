"""Images in and out of model calls: `image_url` content parts from column values, and image
files written into the run folder.

A value for an image input may be an http(s) URL or `data:` URI (sent as is), a path to an
image file (read and sent inline as a `data:` URI: absolute, or relative to the run folder
(an image column's own files, as Data Designer's artifact folder), then to the config's folder,
then to the seed's folder (a seed listing image files by relative path), then to the working
folder (Data Designer's fallback)), or base64 image bytes; a list of such values (or a JSON
list) sends several images. The format of inline bytes is detected from their first bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rowloom.config.dataset import DatasetConfig
from rowloom.config.media import ImageContext
from rowloom.errors import NonRetryableTaskError

__all__ = ["IMAGES_DIR", "MediaStore", "image_folders", "image_format", "image_parts"]

IMAGES_DIR = "images"
"""The run folder's subfolder of image columns' files: `images/<column>/<global row>.<fmt>`."""

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif",
         "webp": "image/webp"}  # fmt: skip
_MAX_IMAGE_BYTES = 20 * 1024 * 1024


def image_format(data: bytes) -> str | None:
    """`png`, `jpeg`, `gif` or `webp` from the first bytes; None when unknown."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


class MediaStore:
    """Where a run's media live: `run_dir/images/<column>/` (None: in memory, a preview).

    `run_dir` is the folder the dataset's relative paths start from (`RunStorage.media_root`:
    the run's own folder; a Ray worker's own folder, from which the driver moves a committed
    row group's files into the run's).

    A relative path is looked up in the run folder, then in each of `folders` (the config's
    folder, the seed's), then in the working folder.
    """

    def __init__(self, run_dir: Path | None, folders: Sequence[Path] = ()) -> None:
        self.run_dir = run_dir
        self._folders = tuple(folders)

    def resolve(self, value: str) -> Path | None:
        """An existing image file for a path value, or None."""
        if len(value) > 4096 or "\x00" in value:
            return None
        path = Path(value).expanduser()
        if path.is_absolute():
            return path if path.is_file() else None
        roots = [*([self.run_dir] if self.run_dir is not None else []), *self._folders]
        candidates = [root / path for root in roots] + [path]
        return next((c for c in candidates if c.is_file()), None)

    def save_image(self, column: str, global_row: int, data: bytes) -> str:
        """Store one generated image; the value for the dataset (a path relative to the run
        folder, or a `data:` URI without a run folder)."""
        fmt = image_format(data) or "png"
        if self.run_dir is None:
            return f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode('ascii')}"
        relative = Path(IMAGES_DIR) / column / f"{global_row:08d}.{fmt}"
        target = self.run_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return relative.as_posix()

    def remove(self, value: Any) -> None:
        """Delete an image this store saved (a value `save_image` returned); anything else,
        e.g. a `data:` URI or None, is left alone."""
        if self.run_dir is None or not isinstance(value, str):
            return
        relative = Path(value)
        if relative.is_absolute() or relative.parts[:1] != (IMAGES_DIR,) or ".." in relative.parts:
            return
        target = self.run_dir / relative
        target.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the column's folder, once it holds nothing
            target.parent.rmdir()


_GLOB = re.compile(r"[*?\[]")


def image_folders(config: DatasetConfig) -> list[Path]:
    """Where relative image paths of `config`'s rows are looked up after the run folder: the
    config's folder, then the folder of a local seed (a file's, a glob's or the folder)."""
    folders = [config.resolve_path(".")]
    source = config.seed_config.source if config.seed_config is not None else None
    path = getattr(source, "path", None)
    if isinstance(path, str) and getattr(source, "seed_type", None) in _LOCAL_SEEDS:
        seed = config.resolve_path(_GLOB.split(path, maxsplit=1)[0] or ".")
        folders.append(seed if seed.is_dir() else seed.parent)
    return folders


_LOCAL_SEEDS = ("local", "directory", "file_contents")


def image_parts(
    contexts: Sequence[ImageContext], row: Mapping[str, Any], media: MediaStore
) -> list[dict[str, Any]]:
    """The `image_url` content parts for a row's image contexts, in order."""
    parts: list[dict[str, Any]] = []
    for context in contexts:
        for value in _values(row.get(context.column_name)):
            image_url: dict[str, Any] = {"url": _url(value, context, media)}
            if context.detail is not None:
                image_url["detail"] = context.detail
            parts.append({"type": "image_url", "image_url": image_url})
    return parts


def _values(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, str) and raw.lstrip().startswith("["):
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError:
            decoded = None
        if isinstance(decoded, list):
            return [v for v in decoded if v is not None]
    if isinstance(raw, list | tuple):
        return [v for v in raw if v is not None]
    return [raw]


def _url(value: Any, context: ImageContext, media: MediaStore) -> str:
    if isinstance(value, bytes):
        return _data_uri(value, context.image_format)
    if not isinstance(value, str) or not value.strip():
        raise NonRetryableTaskError(
            "invalid_image", f"column {context.column_name!r}: an image value must be text"
        )
    text = value.strip()
    if context.data_type == "url" or text.startswith(("http://", "https://")):
        return text
    if text.startswith("data:"):
        return _checked_data_uri(text, context)
    if context.data_type != "base64":
        path = media.resolve(text)
        if path is not None:
            if path.stat().st_size > _MAX_IMAGE_BYTES:
                raise NonRetryableTaskError(
                    "invalid_image", f"image file {text!r} is larger than 20 MiB"
                )
            return _data_uri(path.read_bytes(), context.image_format, source=text)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NonRetryableTaskError(
            "invalid_image",
            f"column {context.column_name!r}: {text[:60]!r} is not a URL, an image file "
            "that exists, or base64 image data",
        ) from None
    return _data_uri(data, context.image_format, source="base64 data", encoded=text)


_BASE64_DATA_URI = re.compile(r"^data:(?P<media>[^;,]+);base64,")


def _checked_data_uri(text: str, context: ImageContext) -> str:
    """A base64 `data:` URI of an image type (and of `image_format`, when declared), as Data
    Designer checks one; other `data:` URIs are sent as they are."""
    match = _BASE64_DATA_URI.match(text)
    if match is None:
        return text
    media = match["media"].lower().replace("image/jpg", "image/jpeg")
    where = f"column {context.column_name!r}"
    if media not in _MIME.values():
        raise NonRetryableTaskError(
            "invalid_image",
            f"{where}: unsupported image type {match['media']!r} (png, jpeg, gif or webp)",
        )
    if context.image_format is not None and _MIME[context.image_format] != media:
        raise NonRetryableTaskError(
            "invalid_image",
            f"{where}: image_format {context.image_format!r} does not match the data URI's "
            f"{match['media']!r}",
        )
    return text


def _data_uri(
    data: bytes, declared: str | None, *, source: str = "bytes", encoded: str | None = None
) -> str:
    fmt = declared or image_format(data)
    if fmt is None:
        raise NonRetryableTaskError(
            "invalid_image", f"{source[:60]!r}: unknown image format (png, jpeg, gif or webp)"
        )
    body = encoded if encoded is not None else base64.b64encode(data).decode("ascii")
    return f"data:{_MIME[fmt]};base64,{body}"
