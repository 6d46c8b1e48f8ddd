"""Run configuration (public knobs only)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class RequestAdmissionTuningConfig(BaseModel):
    """The AIMD knobs users may tune; defaults follow the public design."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    multiplicative_decrease_factor: float = Field(0.75, gt=0, lt=1)
    additive_increase_step: int = Field(1, ge=1)
    successes_until_increase: int = Field(25, ge=1)
    cooldown_seconds: float = Field(2.0, ge=0, description="used when a 429 has no Retry-After")
    startup_ramp_seconds: float = Field(0.0, ge=0)
    provider_slow_start_successes: int = Field(
        2,
        ge=0,
        description="a provider serving several models starts its shared limit at the largest "
        "model cap and adds 1 per this many saturated successes until its first 429 or the sum "
        "of the caps (0: start at the sum)",
    )


class StragglerConfig(BaseModel):
    """Cancel and retry a request in flight far longer than its model usually takes.

    Once a model has `min_samples` successful requests, an attempt still running after
    `max(min_seconds, p99_multiple * p99 of its recent latencies)` is cancelled and retried
    (within the request timeout), so one hung connection costs seconds, not the timeout.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    p99_multiple: float = Field(4.0, ge=1, description="multiple of the running p99 latency")
    min_seconds: float = Field(30.0, gt=0, description="never cancel an attempt younger than this")
    min_samples: int = Field(20, ge=1, description="successful requests before the p99 counts")


class RunConfig(BaseModel):
    """How a run executes: row-group size and concurrency, request tuning, outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    buffer_size: int = Field(1000, ge=1, description="rows per row group (one parquet part each)")
    max_concurrent_row_groups: int = Field(3, ge=1)
    request_admission: RequestAdmissionTuningConfig | None = None
    write_events: bool = Field(True, description="record the run's events in events/ (Arrow)")
    max_salvage_rounds: int = Field(2, ge=0, description="re-dispatches of a retryable failure")
    shutdown_error_rate: float = Field(
        0.5,
        gt=0,
        le=1,
        validation_alias=AliasChoices("shutdown_error_rate", "error_rate_threshold"),
        description="stop the run when this fraction of the recent tasks failed",
    )
    shutdown_error_window: int = Field(
        200,
        ge=1,
        validation_alias=AliasChoices("shutdown_error_window", "error_rate_window"),
        description="recent task outcomes the early-shutdown check looks at",
    )
    disable_early_shutdown: bool = Field(
        False, description="never stop early for errors (failures still drop rows and count)"
    )
    stragglers: StragglerConfig = Field(default_factory=StragglerConfig)

    @property
    def breaker_threshold(self) -> float:
        """The failure fraction that stops a run (infinite when early shutdown is off)."""
        return math.inf if self.disable_early_shutdown else self.shutdown_error_rate

    engine: Literal["async", "sequential", "ray"] | None = Field(
        None, description="async (default), sequential (the oracle) or ray (a fleet of workers)"
    )
    workers: int | None = Field(None, ge=1, description="Ray workers (engine ray; default 2)")
    ray_address: str | None = Field(
        None, description="Ray cluster to join (engine ray; default: start a local runtime)"
    )
