"""Public configuration DTOs. Imports nothing else from rowloom."""

from rowloom.config.columns import (
    ColumnConfig,
    CustomColumnConfig,
    EmbeddingColumnConfig,
    ExpressionColumnConfig,
    LLMJudgeColumnConfig,
    LLMStructuredColumnConfig,
    LLMTextColumnConfig,
    SamplerColumnConfig,
    Score,
    SeedDatasetColumnConfig,
    SeedDatasetConfig,
)
from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigError, ConfigFileError, ConfigIssue, ConfigValidationError
from rowloom.config.models import (
    InferenceParameters,
    ModelConfig,
    ModelProvider,
    SimulationConfig,
)
from rowloom.config.run import RequestAdmissionTuningConfig, RunConfig
from rowloom.config.scheduling import SchedulingMetadata, SchedulingMetadataError

__all__ = [
    "ColumnConfig",
    "ConfigError",
    "ConfigFileError",
    "ConfigIssue",
    "ConfigValidationError",
    "CustomColumnConfig",
    "DatasetConfig",
    "EmbeddingColumnConfig",
    "ExpressionColumnConfig",
    "InferenceParameters",
    "LLMJudgeColumnConfig",
    "LLMStructuredColumnConfig",
    "LLMTextColumnConfig",
    "ModelConfig",
    "ModelProvider",
    "RequestAdmissionTuningConfig",
    "RunConfig",
    "SamplerColumnConfig",
    "SchedulingMetadata",
    "SchedulingMetadataError",
    "Score",
    "SeedDatasetColumnConfig",
    "SeedDatasetConfig",
    "SimulationConfig",
]
