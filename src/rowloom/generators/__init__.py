"""Column generators: one per column family."""

from rowloom.generators.base import BatchInput, CellContext, ColumnGenerator
from rowloom.generators.registry import build_generators

__all__ = ["BatchInput", "CellContext", "ColumnGenerator", "build_generators"]
