"""Which seed row feeds each dataset row: ordered, shuffled, with replacement; selections and
partitions. The mapping is pure, so it is the same however the rows are asked for."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom.config.seed import DataFrameSeedSource, IndexRange, PartitionBlock, SeedConfig
from rowloom.seeds.blocks import TableBlocks
from rowloom.seeds.dataset import SeedDataset
from rowloom.seeds.sampling import SeedSampler, select_segments


def sampler(
    block_rows: list[int],
    *,
    strategy: str = "shuffle",
    replace: bool = False,
    seed: int = 7,
    window_rows: int = 1000,
    start: int = 0,
    stop: int | None = None,
) -> SeedSampler:
    stop = sum(block_rows) if stop is None else stop
    return SeedSampler(
        select_segments(block_rows, start, stop),
        strategy=strategy,  # type: ignore[arg-type]
        with_replacement=replace,
        seed=seed,
        window_rows=window_rows,
    )


def source_rows(s: SeedSampler, rows: list[int]) -> list[int]:
    """Which seed row (block * 1e6 + row in block) each dataset row reads."""
    out = [0] * len(rows)
    for key, where, idx in s.locate(rows):
        flat = [(seg.block, r) for seg in s.window_segments(key) for r in range(seg.lo, seg.hi)]
        for w, i in zip(where.tolist(), idx.tolist(), strict=True):
            block, r = flat[i]
            out[w] = block * 1_000_000 + r
    return out


def test_ordered_reads_in_order_and_cycles() -> None:
    s = sampler([3, 3, 2], strategy="ordered")
    got = source_rows(s, list(range(10)))
    expected = [0, 1, 2, 1_000_000, 1_000_001, 1_000_002, 2_000_000, 2_000_001]
    assert got == expected + expected[:2]


@pytest.mark.parametrize("window_rows", [1000, 4, 1])
def test_each_shuffle_pass_is_a_permutation(window_rows: int) -> None:
    s = sampler([5, 5, 5, 3], window_rows=window_rows)
    n = s.num_rows
    passes = [source_rows(s, list(range(p * n, (p + 1) * n))) for p in range(3)]
    everything = sorted(source_rows(sampler([5, 5, 5, 3], strategy="ordered"), list(range(n))))
    for one in passes:
        assert sorted(one) == everything
    assert passes[0] != passes[1]  # each pass has its own order


def test_small_selection_is_shuffled_uniformly_not_block_by_block() -> None:
    s = sampler([4] * 10, window_rows=1000)  # one window: a uniform permutation of 40 rows
    got = source_rows(s, list(range(40)))
    blocks_of_first_ten = {r // 1_000_000 for r in got[:10]}
    assert len(blocks_of_first_ten) > 3


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 9), min_size=1, max_size=6),
    st.sampled_from(["ordered", "shuffle", "replace"]),
    st.integers(1, 12),
    st.integers(1, 25),
    st.integers(0, 2**70),
)
def test_mapping_does_not_depend_on_how_rows_are_asked_for(
    block_rows: list[int], mode: str, window: int, chunk: int, seed: int
) -> None:
    def make() -> SeedSampler:
        return sampler(
            block_rows,
            strategy="ordered" if mode == "ordered" else "shuffle",
            replace=mode == "replace",
            window_rows=window,
            seed=seed,
        )

    rows = list(range(3 * sum(block_rows) + 5))
    whole = source_rows(make(), rows)
    fresh = make()
    pieces: list[int] = []
    for start in range(0, len(rows), chunk):
        pieces += source_rows(fresh, rows[start : start + chunk])
    backwards = make()
    reverse_pieces: dict[int, int] = {}
    for start in reversed(range(0, len(rows), chunk)):
        part = rows[start : start + chunk]
        reverse_pieces.update(zip(part, source_rows(backwards, part), strict=True))
    assert pieces == whole
    assert [reverse_pieces[r] for r in rows] == whole


def test_with_replacement_repeats_rows_and_covers_the_selection() -> None:
    s = sampler([10, 10], replace=True, window_rows=1000)
    got = source_rows(s, list(range(20)))
    assert len(set(got)) < 20  # some row repeats within one pass's worth of rows
    many = Counter(source_rows(s, list(range(20_000))))
    assert len(many) == 20
    assert max(many.values()) < 1.15 * 1000 and min(many.values()) > 0.85 * 1000


def test_seed_changes_the_order() -> None:
    rows = list(range(30))
    a = source_rows(sampler([30], seed=1), rows)
    b = source_rows(sampler([30], seed=2), rows)
    assert a != b and sorted(a) == sorted(b)


def dataset(n: int, config: SeedConfig, seed: int = 0) -> SeedDataset:
    return SeedDataset(TableBlocks(pa.table({"i": list(range(n))})), config, seed)


def table_config(n: int, **kw: object) -> SeedConfig:
    return SeedConfig(source=DataFrameSeedSource(df=pa.table({"i": list(range(n))})), **kw)  # type: ignore[arg-type]


def test_index_range_selects_inclusive_rows() -> None:
    ds = dataset(10, table_config(10, selection_strategy=IndexRange(start=2, end=5)))
    assert ds.column("i", range(6)) == [2, 3, 4, 5, 2, 3]
    shuffled = dataset(
        10,
        table_config(
            10, selection_strategy=IndexRange(start=2, end=5), sampling_strategy="shuffle"
        ),
    )
    assert sorted(shuffled.column("i", range(4))) == [2, 3, 4, 5]


def test_partitions_are_disjoint_and_cover_the_seed_like_the_reference() -> None:
    n = 11
    seen: list[int] = []
    for index in range(3):
        block = PartitionBlock(index=index, num_partitions=3)
        ds = dataset(n, table_config(n, selection_strategy=block))
        seen += ds.column("i", range(ds.num_rows))
    assert seen == list(range(n))
    assert PartitionBlock(index=2, num_partitions=3).to_index_range(n) == IndexRange(
        start=6, end=10
    )


def test_partition_of_a_config_composes_with_its_range() -> None:
    base = table_config(20, selection_strategy=IndexRange(start=10, end=19))
    parts = [base.partition(i, 3) for i in range(3)]
    assert [p.selection_strategy for p in parts] == [
        IndexRange(start=10, end=12),
        IndexRange(start=13, end=15),
        IndexRange(start=16, end=19),
    ]
    whole = table_config(20).partition(1, 4)
    assert whole.selection_strategy == PartitionBlock(index=1, num_partitions=4)
    with pytest.raises(ValueError, match="already partition"):
        whole.partition(0, 2)


def test_take_keeps_rows_aligned_across_windows() -> None:
    blocks = TableBlocks(pa.table({"i": list(range(50)), "sq": [i * i for i in range(50)]}), 7)
    blocks.window_rows = 10  # several windows per call
    ds = SeedDataset(blocks, table_config(50, sampling_strategy="shuffle"), 3)
    table = ds.take(list(range(120)))
    assert [i * i for i in table.column("i").to_pylist()] == table.column("sq").to_pylist()
