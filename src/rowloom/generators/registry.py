"""Build one generator per column of a dataset config."""

from __future__ import annotations

from rowloom.config.columns import (
    CustomColumnConfig,
    EmbeddingColumnConfig,
    ExpressionColumnConfig,
    LLMJudgeColumnConfig,
    LLMStructuredColumnConfig,
    LLMTextColumnConfig,
    SamplerColumnConfig,
    SeedDatasetColumnConfig,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.generators.base import ColumnGenerator
from rowloom.generators.custom import CustomGenerator
from rowloom.generators.embedding import EmbeddingGenerator
from rowloom.generators.expression import ExpressionGenerator
from rowloom.generators.llm import LLMJudgeGenerator, LLMStructuredGenerator, LLMTextGenerator
from rowloom.generators.samplers import SamplerGenerator, probe_constraints
from rowloom.generators.seed import SeedColumnGenerator
from rowloom.models.resources import ModelResourceCatalog
from rowloom.seeds import SeedDataset


def build_generators(
    config: DatasetConfig, catalog: ModelResourceCatalog, seed_data: SeedDataset | None = None
) -> dict[str, ColumnGenerator]:
    """Generators by column name, in topological order; `config` has its seed columns
    (`rowloom.seeds.compile_seed`) and `seed_data` is the opened seed.

    An expression whose inputs are all per-row-group columns also runs per row group.
    Raises `ConfigValidationError` when a constrained sampler column is met too rarely.
    """
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
        elif isinstance(col, LLMJudgeColumnConfig):
            gen = LLMJudgeGenerator(col, catalog)
        elif isinstance(col, LLMStructuredColumnConfig):
            gen = LLMStructuredGenerator(col, catalog)
        elif isinstance(col, LLMTextColumnConfig):
            gen = LLMTextGenerator(col, catalog)
        elif isinstance(col, EmbeddingColumnConfig):
            gen = EmbeddingGenerator(col, catalog)
        elif isinstance(col, CustomColumnConfig):
            gen = CustomGenerator(col, catalog)
        else:  # pragma: no cover - the union is closed
            raise AssertionError(f"no generator for {type(col).__name__}")
        out[name] = gen
    probe_constraints(out, config.effective_seed)
    return out
