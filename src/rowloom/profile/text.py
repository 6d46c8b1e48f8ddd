"""Text column profile: lengths, empty and refusal-like answers, exact and near duplicates.

Lengths, emptiness and refusals are pyarrow kernels over each record batch. Exact duplicates
hash every value (pandas' vectorised hash) and count repeats. Near duplicates use MinHash
(datasketch) over word 3-gram shingles on a deterministic, hash-selected sample of at most
`NEAR_DUP_SAMPLE` rows: comparing all pairs of a million texts is neither cheap nor needed to
tell a user "about 4% of answers are near copies of another".
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rowloom.profile.stats import concat_numeric, summary

# tokens are estimated as UTF-8 bytes / 4 (the usual rule of thumb for BPE tokenizers on
# English text; a regex word count costs 30x more and is no closer for code or other scripts);
# the provider-reported token usage per column is in the run summary
BYTES_PER_TOKEN = 4
REFUSAL_PATTERN = (
    r"^\W*(i'?m sorry|i am sorry|sorry, (but )?i|i apologi[sz]e|i can'?t|i cannot|i'?m unable"
    r"|i am unable|i'?m not able|i am not able|as an ai\b|i won'?t be able|i must decline)"
)
NEAR_DUP_SAMPLE = 2000
NEAR_DUP_THRESHOLD = 0.8
NUM_PERM = 64
_SAMPLE_MODULUS = 1 << 20
_WORDS = re.compile(r"\w+")


class TextProfiler:
    """Accumulates one text column over record batches; `as_json()` gives its profile."""

    def __init__(self, expected_rows: int) -> None:
        self._chars: list[np.ndarray] = []
        self._tokens: list[np.ndarray] = []
        self._hashes: list[np.ndarray] = []
        self._empty = 0
        self._refusals = 0
        rate = min(1.0, NEAR_DUP_SAMPLE / max(1, expected_rows))
        self._sample_below = int(rate * _SAMPLE_MODULUS)
        self._sample: list[tuple[int, str]] = []

    def add(self, array: pa.Array) -> None:
        """Profile the non-null values of one batch (cast to text if needed)."""
        values = pc.drop_null(array)
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            values = pc.cast(values, pa.string())
        if len(values) == 0:
            return
        self._chars.append(pc.utf8_length(values).to_numpy(zero_copy_only=False))
        nbytes = pc.binary_length(values).to_numpy(zero_copy_only=False)
        self._tokens.append(np.ceil(nbytes / BYTES_PER_TOKEN))
        trimmed = pc.utf8_length(pc.utf8_trim_whitespace(values))
        self._empty += int(pc.sum(pc.equal(trimmed, 0)).as_py() or 0)
        head = pc.utf8_slice_codeunits(values, 0, 200)
        refusals = pc.match_substring_regex(head, pattern=REFUSAL_PATTERN, ignore_case=True)
        self._refusals += int(pc.sum(refusals).as_py() or 0)
        texts = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
        hashes = _hash_texts(texts)
        self._hashes.append(hashes)
        picked = np.nonzero((hashes % _SAMPLE_MODULUS) < self._sample_below)[0]
        self._sample.extend((int(hashes[i]), str(texts[i])) for i in picked)

    def as_json(self) -> dict[str, Any]:
        """The profile: lengths, empty, refusal-like, duplicates."""
        chars = concat_numeric(self._chars)
        hashes = np.concatenate(self._hashes) if self._hashes else np.zeros(0, np.uint64)
        distinct = int(np.unique(hashes).size)
        return {
            "chars": summary(chars),
            "tokens_estimated": summary(concat_numeric(self._tokens)),
            "empty": self._empty,
            "refusal_like": self._refusals,
            "exact_duplicates": int(hashes.size - distinct),
            "near_duplicates": near_duplicates(self._sample),
        }


def _shingles(text: str) -> set[bytes]:
    words = _WORDS.findall(text.lower())
    if len(words) < 3:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)}


def near_duplicates(sample: list[tuple[int, str]]) -> dict[str, Any]:
    """Among a sample of (hash, text): rows with a near-duplicate partner that is not an
    exact copy (estimated Jaccard similarity of word 3-grams >= the threshold)."""
    base: dict[str, Any] = {
        "method": "minhash",
        "threshold": NEAR_DUP_THRESHOLD,
        "sampled": len(sample),
    }
    if len(sample) < 2:  # nothing to compare; spares the import (seconds) for an empty run
        return {**base, "rows_with_near_duplicate": 0, "fraction": 0.0}
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:  # pragma: no cover - datasketch is a declared dependency
        return {**base, "skipped": "datasketch is not installed"}
    docs = [(h, _shingles(text)) for h, text in sorted(sample)]
    docs = [(h, sh) for h, sh in docs if sh]
    hashes = MinHash.bulk([list(sh) for _, sh in docs], num_perm=NUM_PERM, seed=1)
    lsh = MinHashLSH(threshold=NEAR_DUP_THRESHOLD, num_perm=NUM_PERM, params=_lsh_params())
    rows: set[int] = set()
    for i, ((hash_value, _), mh) in enumerate(zip(docs, hashes, strict=True)):
        partners = [k for k in lsh.query(mh) if docs[k][0] != hash_value]
        lsh.insert(i, mh)
        if partners:
            rows.add(i)
            rows.update(partners)
    base["rows_with_near_duplicate"] = len(rows)
    base["fraction"] = round(len(rows) / len(sample), 6) if sample else 0.0
    return base


@functools.cache
def _lsh_params() -> tuple[int, int]:
    """The LSH bands and rows datasketch picks for the threshold (it integrates to find them,
    about 50 ms, on every `MinHashLSH` built without them): found once per process."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=NEAR_DUP_THRESHOLD, num_perm=NUM_PERM)
    return lsh.b, lsh.r


def _hash_texts(texts: np.ndarray) -> np.ndarray:
    """64-bit hashes of the texts (pandas' vectorised hash; imported here, not at start-up,
    because importing pandas costs about a second of every `rowloom` command)."""
    from pandas.util import hash_array

    hashes: np.ndarray = hash_array(texts, categorize=False)
    return hashes
