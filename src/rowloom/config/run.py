"""Run configuration (public knobs only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RequestAdmissionTuningConfig(BaseModel):
    """The AIMD knobs users may tune; defaults follow the public design."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    multiplicative_decrease_factor: float = Field(0.75, gt=0, lt=1)
    additive_increase_step: int = Field(1, ge=1)
    successes_until_increase: int = Field(25, ge=1)
    cooldown_seconds: float = Field(2.0, ge=0, description="used when a 429 has no Retry-After")
    startup_ramp_seconds: float = Field(0.0, ge=0)


class RunConfig(BaseModel):
    """How a run executes: row-group size and concurrency, request tuning, outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    buffer_size: int = Field(1000, ge=1, description="rows per row group (one parquet part each)")
    max_concurrent_row_groups: int = Field(3, ge=1)
    request_admission: RequestAdmissionTuningConfig | None = None
    write_events: bool = Field(True, description="write events/*.jsonl for the run")
    max_salvage_rounds: int = Field(2, ge=0, description="re-dispatches of a retryable failure")
    error_rate_threshold: float = Field(
        0.5, gt=0, le=1, description="stop the run when this fraction of recent tasks failed"
    )
    error_rate_window: int = Field(200, ge=10, description="recent tasks the breaker looks at")
