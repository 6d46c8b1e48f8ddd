"""Build one generator per column of a dataset config."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from rowloom.config.columns import (
    CustomColumnConfig,
    EmbeddingColumnConfig,
    ExpressionColumnConfig,
    ImageColumnConfig,
    LLMCodeColumnConfig,
    LLMJudgeColumnConfig,
    LLMStructuredColumnConfig,
    LLMTextColumnConfig,
    SamplerColumnConfig,
    SeedDatasetColumnConfig,
    ValidationColumnConfig,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.config.plugins import PluginLoadError, find_plugin
from rowloom.generators.base import ColumnGenerator
from rowloom.generators.code import LLMCodeGenerator
from rowloom.generators.custom import CustomGenerator
from rowloom.generators.embedding import EmbeddingGenerator
from rowloom.generators.expression import ExpressionGenerator
from rowloom.generators.image import ImageGenerator
from rowloom.generators.llm import LLMJudgeGenerator, LLMStructuredGenerator, LLMTextGenerator
from rowloom.generators.media import MediaStore, image_folders
from rowloom.generators.samplers import SamplerGenerator, probe_constraints
from rowloom.generators.seed import SeedColumnGenerator
from rowloom.generators.validation import ValidationGenerator
from rowloom.models.resources import ModelResourceCatalog
from rowloom.seeds import SeedDataset


def build_generators(
    config: DatasetConfig,
    catalog: ModelResourceCatalog,
    seed_data: SeedDataset | None = None,
    run_dir: Path | None = None,
) -> dict[str, ColumnGenerator]:
    """Generators by column name, in topological order; `config` has its seed columns
    (`rowloom.seeds.compile_seed`) and `seed_data` is the opened seed.

    An expression whose inputs are all per-row-group columns also runs per row group.
    Raises `ConfigValidationError` when a constrained sampler column is met too rarely.
    Image columns write their files under `run_dir` (None: values are `data:` URIs);
    image inputs given as relative paths are looked up there, then in the config's folder,
    the seed's folder and the working folder (`image_folders`).
    """
    media = MediaStore(run_dir, image_folders(config))
    out: dict[str, ColumnGenerator] = {}
    for name in config.topological_order:
        col = config.column_by_name[name]
        gen: ColumnGenerator
        if isinstance(col, SamplerColumnConfig):
            gen = SamplerGenerator(col, config.constraints or (), config.column_by_name)
        elif isinstance(col, SeedDatasetColumnConfig):
            if seed_data is None:
                raise ValueError("a config with seed columns needs its opened seed (compile_seed)")
            gen = SeedColumnGenerator(col, seed_data)
        elif isinstance(col, ExpressionColumnConfig):
            deps = config.dependencies[name]
            gen = ExpressionGenerator(col, batch=all(out[d].task_type == "batch" for d in deps))
        elif isinstance(col, LLMCodeColumnConfig):
            gen = LLMCodeGenerator(col, catalog)
        elif isinstance(col, LLMJudgeColumnConfig):
            gen = LLMJudgeGenerator(col, catalog, media)
        elif isinstance(col, LLMStructuredColumnConfig):
            gen = LLMStructuredGenerator(col, catalog, media)
        elif isinstance(col, LLMTextColumnConfig):
            gen = LLMTextGenerator(col, catalog, media)
        elif isinstance(col, ImageColumnConfig):
            gen = ImageGenerator(col, catalog, media)
        elif isinstance(col, EmbeddingColumnConfig):
            gen = EmbeddingGenerator(col, catalog)
        elif isinstance(col, CustomColumnConfig):
            gen = CustomGenerator(col, catalog)
        elif isinstance(col, ValidationColumnConfig):
            gen = ValidationGenerator(col)
        else:
            gen = plugin_generator(col, catalog)
        out[name] = gen
    probe_constraints(out, config.effective_seed)
    return out


def plugin_generator(config: Any, catalog: ModelResourceCatalog) -> ColumnGenerator:
    """The generator of a plugin column: its plugin's `impl(config)`, or `impl(config, catalog)`
    when the implementation takes the model catalog (to derive model scheduling metadata)."""
    plugin = find_plugin("column_generator", str(getattr(config, "column_type", "")))
    if plugin is None:
        raise AssertionError(f"no generator for {type(config).__name__}")
    impl = plugin.impl_cls
    if not (isinstance(impl, type) and issubclass(impl, ColumnGenerator)):
        raise PluginLoadError(f"{impl!r} is not a rowloom ColumnGenerator")
    takes_catalog = "catalog" in inspect.signature(impl).parameters
    factory: Any = impl
    gen = factory(config, catalog) if takes_catalog else factory(config)
    assert isinstance(gen, ColumnGenerator)
    return gen
