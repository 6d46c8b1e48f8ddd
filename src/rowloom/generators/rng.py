"""Counter-based randomness: every random value is a pure function of (a stream key, a global
row index, a draw index), so it does not depend on `buffer_size`, row-group order or engine.

A stream key hashes the run seed with names (a column, a purpose); `row_bits` mixes it with
the row index through splitmix64. For a fixed key and draw, the map row -> bits is a
bijection, so no two rows share a draw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ROW_MIX = np.uint64(0xD1B54A32D192ED03)
Rows = Sequence[int] | npt.NDArray[np.int64]


def stream_key(seed: int, *parts: str) -> int:
    """A 64-bit key for one (seed, name...) random stream."""
    digest = hashlib.blake2b("\x1f".join([str(seed), *parts]).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_bits(key: int, rows: Rows, draws: int) -> npt.NDArray[np.uint64]:
    """`draws` independent 64-bit values per row, shape (len(rows), draws)."""
    r = np.asarray(rows, dtype=np.uint64).reshape(-1, 1)
    j = np.arange(draws, dtype=np.uint64).reshape(1, -1)
    with np.errstate(over="ignore"):
        x = (np.uint64(key) ^ (r * _ROW_MIX)) + j * _GOLDEN
    return _splitmix64(_splitmix64(x))


def row_uniforms(key: int, rows: Rows, draws: int) -> npt.NDArray[np.float64]:
    """Uniforms in [0, 1), shape (len(rows), draws), one stream per row."""
    bits = row_bits(key, rows, draws) >> np.uint64(11)
    return bits.astype(np.float64) * (1.0 / (1 << 53))


def open_uniforms(key: int, rows: Rows, draws: int) -> npt.NDArray[np.float64]:
    """Uniforms in the open interval (0, 1) (safe for inverse CDFs), shape (len(rows), draws)."""
    bits = row_bits(key, rows, draws) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def row_choices(key: int, rows: Rows, draws: int, n: int) -> npt.NDArray[np.int64]:
    """Indices in [0, n), shape (len(rows), draws) (Lemire's multiply-shift: unbiased to
    within n / 2**64)."""
    bits = row_bits(key, rows, draws) >> np.uint64(32)
    return ((bits * np.uint64(n)) >> np.uint64(32)).astype(np.int64)
