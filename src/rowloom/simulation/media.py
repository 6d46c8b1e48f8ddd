"""Deterministic small PNG images for the simulated provider's images endpoint.

`simulated_png(seed, model, prompt)` is a pure function of its inputs: a valid, losslessly
compressed RGB PNG (8x8 pixels by default) whose colours derive from a digest of the request,
written with the standard library only (zlib + struct), so tests can compare bytes.
"""

from __future__ import annotations

import struct
import zlib

from rowloom.simulation.responses import request_digest

__all__ = ["PNG_SIGNATURE", "simulated_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def simulated_png(seed: int, model: str, prompt: str, *, size: int = 8) -> bytes:
    """A `size` x `size` RGB PNG derived from (seed, model, prompt): a two-colour gradient."""
    if not 1 <= size <= 512:
        raise ValueError("size must be within [1, 512]")
    digest = request_digest(seed, model, ("image", prompt)).to_bytes(16, "big")
    a, b = digest[0:3], digest[3:6]
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter type: none
        for x in range(size):
            t = (x + y) / max(1, 2 * (size - 1))
            rows.extend(round(a[c] * (1 - t) + b[c] * t) for c in range(3))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )
