"""Seed sources and readers: files, globs, folders, DataFrames, Hugging Face; sampling and
partitions. `compile_seed` opens a config's seed and adds its columns; `SeedDataset` maps dataset
rows to seed rows (`rowloom.seeds.sampling`)."""

from rowloom.seeds.dataset import SeedDataset, compile_seed, open_seed, selected_range

__all__ = ["SeedDataset", "compile_seed", "open_seed", "selected_range"]
