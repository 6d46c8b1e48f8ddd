"""What a benchmark scenario is: knobs, targets, a gate, and how one iteration runs.

`DatasetScenario` covers every scenario that is a dataset run: it builds the providers and the
`DatasetConfig` from the knobs, runs the async engine (in process, or over HTTP against mock
servers), derives the metrics from the run's events, and checks the output hash against the
sequential oracle (run once, with a quiet provider: answers do not depend on timing).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeAlias

from rowloom.bench.events import DEFAULT_TIMELINE_CAP, digest_run
from rowloom.bench.execute import RunCapture, run_dataset
from rowloom.bench.machine import Measurement
from rowloom.bench.metrics import MetricContext, iteration_metrics
from rowloom.bench.providers import ProviderScript, provider_fleet
from rowloom.bench.switches import PROFILE_ENV, PROFILES, TASK_POLICIES, TASK_POLICY_ENV
from rowloom.config.dataset import DatasetConfig
from rowloom.config.models import ModelProvider
from rowloom.observability.view import CorrelatedRuntimeView

KnobValue: TypeAlias = int | float | str | bool | None
KnobKind: TypeAlias = Literal["int", "float", "str", "bool"]


@dataclass(frozen=True, slots=True)
class Knob:
    """A scenario parameter settable from the command line as `--name-with-dashes VALUE`."""

    name: str
    default: KnobValue
    help: str
    kind: KnobKind = "int"
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: str) -> KnobValue:
        """The typed value of `raw` (`none` clears an optional knob); ValueError when invalid."""
        if raw.lower() in ("none", "null") and self.default is None:
            return None
        if self.kind == "int":
            return int(raw)
        if self.kind == "float":
            return float(raw)
        if self.kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.flag} takes true or false, not {raw!r}")
        if self.choices and raw not in self.choices:
            raise ValueError(f"{self.flag} must be one of {', '.join(self.choices)}, not {raw!r}")
        return raw


@dataclass(frozen=True, slots=True)
class Target:
    """A spec target for one metric: where the project aims (the harness reports the gap)."""

    metric: str
    op: Literal[">=", "<=", "between"]
    value: float
    upper: float | None = None
    http_only: bool = False
    label: str = ""

    def met(self, measured: float) -> bool:
        if self.op == ">=":
            return measured >= self.value
        if self.op == "<=":
            return measured <= self.value
        assert self.upper is not None
        return self.value <= measured <= self.upper

    def text(self) -> str:
        if self.op == "between":
            return f"within [{self.value:g}, {self.upper:g}]"
        return f"{self.op} {self.value:g}"

    def gap(self, measured: float) -> float:
        """Signed distance to the target (0 when met; negative: short of it)."""
        if self.met(measured):
            return 0.0
        if self.op == ">=" or (self.op == "between" and measured < self.value):
            return measured - self.value
        bound = self.value if self.op == "<=" else (self.upper or self.value)
        return bound - measured


@dataclass(frozen=True, slots=True)
class Gate:
    """The A/B gate: metrics whose name starts with `metric_prefix`, lower is better, may be
    at most `tolerance` worse than the baseline (after dropping each side's extremes too)."""

    metric_prefix: str
    tolerance: float
    label: str


DEFAULT_HEADLINE: tuple[str, ...] = (
    "wall_time_seconds",
    "engine_wall_seconds",
    "goodput_ratio",
    "successful_requests_per_second",
    "rate_limited_fraction",
    "rate_limited_fraction_after_settling",
    "time_to_settle_seconds",
    "settled_limit",
    "cpu_per_request_ms",
    "request_latency_p50_ms",
    "request_latency_p95_ms",
    "ready_queue_wait_p95_seconds",
    "task_admission_wait_p95_seconds",
    "ready_idle_gap_seconds",
    "max_ready_idle_gap_seconds",
    "active_capacity_integral",
    "mean_active_capacity",
    "endpoint_utilization*",
    "hidden_scheduler_resource_waiters",
    "leaks",
    "cpu_seconds",
    "peak_rss_bytes",
)

NEUTRAL_GATE = Gate("wall_time_seconds", 0.05, "neutral: mean wall time within 5% of baseline")


@dataclass(frozen=True, slots=True)
class IterationContext:
    """One iteration's inputs."""

    records: int
    seed: int
    knobs: Mapping[str, KnobValue]
    http: bool
    workdir: Path
    index: int
    warmup: bool = False
    timeline_cap: int = DEFAULT_TIMELINE_CAP


@dataclass(slots=True)
class IterationResult:
    """One measured (or warm-up) iteration."""

    measurement: Measurement
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    timeline_sampling: dict[str, Any] = field(default_factory=dict)
    final_task_snapshot: dict[str, Any] = field(default_factory=dict)
    final_request_snapshot: dict[str, Any] = field(default_factory=dict)
    output_hashes: dict[str, str | None] = field(default_factory=dict)
    leaks: list[str] = field(default_factory=list)
    capacity_plan: dict[str, Any] = field(default_factory=dict)
    status: str = "complete"


@dataclass(frozen=True, slots=True)
class OracleCheck:
    """How output hashes are checked: `full` (same record count), `reduced` or `none`."""

    mode: Literal["full", "reduced", "none"]
    records: int | None = None
    oracle_hash: str | None = None
    reduced_async_hash: str | None = None
    reason: str = ""

    @property
    def reduced_match(self) -> bool | None:
        if self.mode != "reduced":
            return None
        return self.oracle_hash is not None and self.oracle_hash == self.reduced_async_hash

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "records": self.records,
            "oracle_hash": self.oracle_hash,
            "reduced_async_hash": self.reduced_async_hash,
            "reduced_match": self.reduced_match,
            "reason": self.reason,
        }


class Scenario(ABC):
    """A named, versioned benchmark workload."""

    id: str
    version: int = 1
    shape: str = ""
    shows: str = ""
    default_records: int = 100
    knobs: tuple[Knob, ...] = ()
    targets: tuple[Target, ...] = ()
    gate: Gate = NEUTRAL_GATE
    uses_providers: bool = True
    headline: tuple[str, ...] = DEFAULT_HEADLINE
    compare_metrics: tuple[str, ...] = ()
    """Metrics (patterns) `compare` tabulates for both sides besides the targets' metrics."""

    def summary_extra(self, result: Mapping[str, Any]) -> list[str]:
        """Extra Markdown lines for `summary.md` (default: none)."""
        return []

    def resolve_knobs(self, raw: Mapping[str, str]) -> dict[str, KnobValue]:
        """Defaults overridden by `raw` (names with `_`); ValueError on unknown or bad knobs."""
        by_name = {k.name: k for k in self.knobs}
        unknown = sorted(set(raw) - set(by_name))
        if unknown:
            known = ", ".join(k.flag for k in self.knobs) or "none"
            flags = ", ".join("--" + u.replace("_", "-") for u in unknown)
            raise ValueError(f"{self.id}: unknown knob(s) {flags}; known: {known}")
        values = {k.name: k.default for k in self.knobs}
        for name, text in raw.items():
            values[name] = by_name[name].parse(text)
        return values

    def provider_scripts(self, knobs: Mapping[str, KnobValue], seed: int) -> list[ProviderScript]:
        """The simulated providers (empty for scenarios without model calls)."""
        return []

    def clock_script(self) -> dict[str, Any]:
        return {"clock": "SystemClock", "note": "real monotonic time; nothing is scripted"}

    def warmup_context(self, ctx: IterationContext) -> IterationContext:
        """The context of a warm-up iteration (by default the same workload)."""
        return ctx

    @abstractmethod
    async def run_iteration(self, ctx: IterationContext) -> IterationResult: ...

    @abstractmethod
    async def oracle(self, ctx: IterationContext) -> OracleCheck: ...


@contextmanager
def scoped_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in `os.environ` for the block and restore what was there after.

    The harness reads its benchmark switches (e.g. `ROWLOOM_REQUEST_ADMISSION_PROFILE`, see
    `bench/switches.py`) when a run starts; a scenario knob that selects one sets it here, for
    its own runs only.
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def knob_int(knobs: Mapping[str, KnobValue], name: str) -> int:
    """An int knob's value."""
    value = knobs[name]
    assert isinstance(value, int) and not isinstance(value, bool), name
    return value


def knob_float(knobs: Mapping[str, KnobValue], name: str) -> float:
    """A numeric knob's value as float."""
    value = knobs[name]
    assert isinstance(value, int | float) and not isinstance(value, bool), name
    return float(value)


def knob_str(knobs: Mapping[str, KnobValue], name: str) -> str:
    """A string knob's value."""
    return str(knobs[name])


def scaled_warmup(ctx: IterationContext, knob: str, divisor: int = 10) -> IterationContext:
    """A warm-up context whose int knob `knob` is divided by `divisor` (at least 1)."""
    knobs = {**ctx.knobs, knob: max(1, knob_int(ctx.knobs, knob) // divisor)}
    return replace(ctx, knobs=knobs, warmup=True)


def without_requests(note: str, in_flight: int = 0) -> dict[str, Any]:
    """The final request snapshot of a scenario that has no request admission."""
    return {"note": note, "in_flight_total": in_flight, "waiters_total": 0}


def without_timeline(rule: str) -> dict[str, Any]:
    """The timeline sampling record of a scenario that keeps no event timeline."""
    return {"total_events": 0, "kept_events": 0, "keep_fraction": 1.0, "rule": rule}


ORACLE_RECORD_CAP = 5_000
"""Above this many records the oracle compares a reduced run (sequential vs async)."""

RUN_KNOBS: tuple[Knob, ...] = (
    Knob("buffer_size", None, "rows per row group (default: the scenario's)"),
    Knob("max_concurrent_row_groups", None, "row groups in flight (default: the scenario's)"),
    Knob(
        "admission_profile",
        None,
        f"request admission baseline for the run (bench/baselines.py; v1: the reference V1 "
        f"behaviour); none: as {PROFILE_ENV} says, else the default",
        "str",
        PROFILES,
    ),
    Knob(
        "task_policy",
        None,
        f"task admission policy for the run; none: as {TASK_POLICY_ENV} says, else provider_aware",
        "str",
        TASK_POLICIES,
    ),
)
"""Knobs every dataset scenario takes: row-group settings and the engine baselines."""


class DatasetScenario(Scenario):
    """A scenario that is one dataset run per iteration (see the module docstring)."""

    buffer_size: int | None = None
    max_concurrent_row_groups: int | None = None
    hash_outputs: bool = True

    @abstractmethod
    def build_config(
        self,
        knobs: Mapping[str, KnobValue],
        providers: Sequence[ModelProvider],
        seed: int,
    ) -> DatasetConfig: ...

    def metric_context(
        self, knobs: Mapping[str, KnobValue], seed: int, config: DatasetConfig, records: int
    ) -> MetricContext:
        return MetricContext(scripts=self.provider_scripts(knobs, seed))

    def extra_metrics(
        self,
        knobs: Mapping[str, KnobValue],
        metrics: dict[str, float],
        details: dict[str, Any],
        view: CorrelatedRuntimeView,
    ) -> None:
        """Scenario-specific figures derived from the computed ones (default: none)."""

    def engine_environment(self, knobs: Mapping[str, KnobValue]) -> dict[str, str]:
        """The bench switches (`bench/switches.py`) the knobs select, set for this scenario's
        runs; the harness turns them into the builder's `EngineOptions`."""
        out: dict[str, str] = {}
        for knob, variable in (
            ("admission_profile", PROFILE_ENV),
            ("task_policy", TASK_POLICY_ENV),
        ):
            value = knobs.get(knob)
            if value:
                out[variable] = str(value)
        return out

    def run_settings(self, knobs: Mapping[str, KnobValue]) -> dict[str, Any]:
        """The `run:` section: the scenario's row-group settings unless a knob overrides them."""
        out: dict[str, Any] = {}
        buffer = knobs.get("buffer_size") or self.buffer_size
        groups = knobs.get("max_concurrent_row_groups") or self.max_concurrent_row_groups
        if buffer:
            out["buffer_size"] = buffer
        if groups:
            out["max_concurrent_row_groups"] = groups
        return out

    async def run_once(
        self,
        ctx: IterationContext,
        name: str,
        *,
        resume_after: int | None = None,
        hash_output: bool | None = None,
    ) -> tuple[RunCapture, DatasetConfig, list[RunCapture]]:
        """One dataset build (optionally cancelled after `resume_after` tasks, then resumed).

        Returns the final capture, the config, and the captures of cancelled segments (whose
        events were moved aside so each segment is analysed on its own).
        """
        scripts = self.provider_scripts(ctx.knobs, ctx.seed)
        run_dir = ctx.workdir / name
        segments: list[RunCapture] = []
        # one fleet for both segments: a resumed run must see the same config (endpoints)
        with (
            scoped_environment(self.engine_environment(ctx.knobs)),
            provider_fleet(scripts, http=ctx.http) as fleet,
        ):
            config = self.build_config(ctx.knobs, fleet.providers, ctx.seed)
            if resume_after is not None:
                first = await run_dataset(
                    config, ctx.records, run_dir, fleet=fleet, cancel_after_tasks=resume_after
                )
                segments.append(_set_aside(first, ctx.workdir / f"{name}-cancelled"))
            capture = await run_dataset(
                config,
                ctx.records,
                run_dir,
                fleet=fleet,
                resume=resume_after is not None,
                hash_output=self.hash_outputs if hash_output is None else hash_output,
            )
        return capture, config, segments

    async def run_iteration(self, ctx: IterationContext) -> IterationResult:
        capture, config, _ = await self.run_once(ctx, f"iter-{ctx.index}")
        return await asyncio.to_thread(self.analyse, ctx, capture, config)

    def analyse(
        self, ctx: IterationContext, capture: RunCapture, config: DatasetConfig
    ) -> IterationResult:
        """Metrics, timeline and snapshots of one capture (its run folder is then removed)."""
        digest = digest_run(capture.run_dir, timeline_cap=ctx.timeline_cap)
        view = CorrelatedRuntimeView.from_run_dir(
            capture.run_dir, submission_capacity=capture.submission_capacity
        )
        mctx = self.metric_context(ctx.knobs, ctx.seed, config, ctx.records)
        metrics, details = iteration_metrics(view, digest, capture, mctx)
        self.extra_metrics(ctx.knobs, metrics, details, view)
        details["run_summary"] = capture.summary
        shutil.rmtree(capture.run_dir, ignore_errors=True)
        return IterationResult(
            measurement=capture.measurement,
            metrics=metrics,
            details=details,
            timeline=digest.timeline,
            timeline_sampling=digest.sampling,
            final_task_snapshot=capture.final_task_snapshot,
            final_request_snapshot=capture.final_request_snapshot,
            output_hashes={"async": capture.output_hash},
            leaks=capture.leaks(),
            capacity_plan=capture.capacity_plan,
            status=capture.status,
        )

    async def oracle(self, ctx: IterationContext) -> OracleCheck:
        records = min(ctx.records, ORACLE_RECORD_CAP)
        quiet = [s.quiet() for s in self.provider_scripts(ctx.knobs, ctx.seed)]
        with (
            scoped_environment(self.engine_environment(ctx.knobs)),
            provider_fleet(quiet, http=False) as fleet,
        ):
            config = self.build_config(ctx.knobs, fleet.providers, ctx.seed)
            seq = await run_dataset(config, records, ctx.workdir / "oracle", engine="sequential")
        shutil.rmtree(seq.run_dir, ignore_errors=True)
        if records == ctx.records:
            return OracleCheck("full", records, seq.output_hash, reason="same record count")
        reduced = await self.run_once(
            IterationContext(records, ctx.seed, ctx.knobs, ctx.http, ctx.workdir, -1),
            "oracle-async",
            hash_output=True,
        )
        shutil.rmtree(reduced[0].run_dir, ignore_errors=True)
        return OracleCheck(
            "reduced",
            records,
            seq.output_hash,
            reduced[0].output_hash,
            reason=f"{ctx.records} records exceed the oracle cap ({ORACLE_RECORD_CAP}); the "
            f"sequential oracle and an async run of the same scenario are compared at "
            f"{records} records",
        )


def _set_aside(capture: RunCapture, target: Path) -> RunCapture:
    """Move a cancelled segment's events to `target/events` so the resumed run starts fresh."""
    events = capture.run_dir / "events"
    (target / "events").parent.mkdir(parents=True, exist_ok=True)
    if events.is_dir():
        shutil.move(str(events), str(target / "events"))
    plan = capture.run_dir / "capacity_plan.json"
    if plan.is_file():
        shutil.copy(plan, target / "capacity_plan.json")
    return replace(capture, run_dir=target)


__all__ = [
    "NEUTRAL_GATE",
    "RUN_KNOBS",
    "DatasetScenario",
    "Gate",
    "IterationContext",
    "IterationResult",
    "Knob",
    "KnobValue",
    "OracleCheck",
    "Scenario",
    "Target",
    "knob_float",
    "knob_int",
    "knob_str",
    "scaled_warmup",
    "scoped_environment",
    "without_requests",
    "without_timeline",
]
