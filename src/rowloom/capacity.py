"""`AsyncCapacityPlan`: which capacity values were in force for a run, from where, and how high
each layer got. It explains; it does not admit.

Three sections: `configured` (values fixed at run start, each a `CapacityValue` naming its
source), `runtime_snapshot` (the request controller's state when the run ended) and
`observed_maxima` (the highest values each layer reached). Row groups in flight appear only
among the observed maxima; the configured row-group concurrency is in `row_group_admission`.
`build_capacity_plan` is pure: it reads configs, views and snapshots and calls no mutating
method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

from rowloom.config.dataset import DatasetConfig
from rowloom.config.run import RequestAdmissionTuningConfig, RunConfig
from rowloom.models.request_admission import (
    RequestAdmissionCapacityView,
    RequestAdmissionConfig,
    RequestResourceKey,
)
from rowloom.models.resources import ModelResourceCatalog, ProviderModelKey, ProviderModelStaticCap
from rowloom.provider_wire import TransportPoolLimits
from rowloom.scheduling.admission_view import TaskAdmissionView
from rowloom.scheduling.task_admission import TaskAdmissionConfig

T = TypeVar("T")

CapacitySource: TypeAlias = Literal[
    "default",
    "run_config",
    "dataset_builder",
    "model_metadata",
    "engine_internal_config",
    "adapter_config",
    "environment",
    "runtime_snapshot",
    "benchmark_override",
]

CAPACITY_PLAN_SCHEMA_VERSION: Final = 1
DEFAULT_LIMIT_RULE: Final = "aimd"
_AIMD_KNOBS: Final = (
    "cooldown_seconds",
    "multiplicative_decrease_factor",
    "additive_increase_step",
    "successes_until_increase",
    "startup_ramp_seconds",
    "provider_slow_start_successes",
)


@dataclass(frozen=True, slots=True)
class CapacityValue(Generic[T]):
    """One capacity value and where it came from.

    `value` is None only with a `missing_reason`; `fallback_from` names the source that was
    wanted but not used (the value then comes from `source`).
    """

    value: T | None
    source: CapacitySource
    fallback_from: CapacitySource | None = None
    missing_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "value": _plain(self.value),
            "source": self.source,
            "fallback_from": self.fallback_from,
            "missing_reason": self.missing_reason,
        }


@dataclass(frozen=True, slots=True)
class RowGroupAdmission:
    """Configured row-group admission (observed row groups in flight are in the maxima)."""

    row_group_concurrency: CapacityValue[int]

    def as_json(self) -> dict[str, Any]:
        return {"row_group_concurrency": self.row_group_concurrency.as_json()}


@dataclass(frozen=True, slots=True)
class RequestAdmissionConfigSnapshot:
    """The request-admission configuration of the run; the tunable AIMD knobs carry sources."""

    resources: tuple[str, ...]
    initial_limits: Mapping[str, int]
    max_limit_clamps: Mapping[str, int]
    cooldown_seconds: CapacityValue[float]
    multiplicative_decrease_factor: CapacityValue[float]
    additive_increase_step: CapacityValue[int]
    successes_until_increase: CapacityValue[int]
    startup_ramp_seconds: CapacityValue[float]
    provider_slow_start_successes: CapacityValue[int]
    default_queue_wait_timeout_seconds: CapacityValue[float]

    @classmethod
    def of(
        cls, config: RequestAdmissionConfig, tuning: RequestAdmissionTuningConfig | None
    ) -> RequestAdmissionConfigSnapshot:
        """Snapshot `config`; knobs set in `tuning` are `run_config`, the rest `default`."""
        tuned = tuning.model_fields_set if tuning is not None else frozenset()
        knobs: dict[str, CapacityValue[Any]] = {
            name: CapacityValue(getattr(config, name), "run_config" if name in tuned else "default")
            for name in _AIMD_KNOBS
        }
        timeout = config.default_queue_wait_timeout_seconds
        return cls(
            resources=tuple(r.as_key_str() for r in config.resources),
            initial_limits=_keyed(config.initial_limits),
            max_limit_clamps=_keyed(config.max_limit_clamps),
            default_queue_wait_timeout_seconds=CapacityValue(
                timeout,
                "engine_internal_config",
                missing_reason=None
                if timeout is not None
                else "no queue-wait timeout: waiters wait until granted, cancelled or shut down",
            ),
            **knobs,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "resources": list(self.resources),
            "initial_limits": dict(self.initial_limits),
            "max_limit_clamps": dict(self.max_limit_clamps),
            **{name: getattr(self, name).as_json() for name in _AIMD_KNOBS},
            "default_queue_wait_timeout_seconds": (
                self.default_queue_wait_timeout_seconds.as_json()
            ),
        }


@dataclass(frozen=True, slots=True)
class ConfiguredCapacity:
    """Values fixed at run start. Keys: scheduler resource names, `provider/model[/domain]`."""

    buffer_size: CapacityValue[int]
    row_group_admission: RowGroupAdmission
    submission_capacity: CapacityValue[int]
    task_resource_limits: Mapping[str, CapacityValue[int]]
    task_admission_policy: CapacityValue[str]
    request_resources: tuple[str, ...]
    provider_model_static_caps: Mapping[str, ProviderModelStaticCap]
    request_domain_initial_limits: Mapping[str, CapacityValue[int]]
    request_admission_config: RequestAdmissionConfigSnapshot | None
    transport_pool_limits: Mapping[str, CapacityValue[dict[str, Any]]]
    request_limit_rules: Mapping[str, CapacityValue[str]]
    request_provider_limits: CapacityValue[bool]

    def as_json(self) -> dict[str, Any]:
        return {
            "buffer_size": self.buffer_size.as_json(),
            "row_group_admission": self.row_group_admission.as_json(),
            "submission_capacity": self.submission_capacity.as_json(),
            "task_resource_limits": _values_json(self.task_resource_limits),
            "task_admission_policy": self.task_admission_policy.as_json(),
            "request_resources": list(self.request_resources),
            "provider_model_static_caps": {
                k: {
                    "cap": c.cap,
                    "aliases": list(c.aliases),
                    "raw_caps": dict(c.raw_caps),
                    "merge_rule": c.merge_rule,
                }
                for k, c in self.provider_model_static_caps.items()
            },
            "request_domain_initial_limits": _values_json(self.request_domain_initial_limits),
            "request_admission_config": (
                self.request_admission_config.as_json()
                if self.request_admission_config is not None
                else None
            ),
            "transport_pool_limits": _values_json(self.transport_pool_limits),
            "request_limit_rules": _values_json(self.request_limit_rules),
            "request_provider_limits": self.request_provider_limits.as_json(),
        }


@dataclass(frozen=True, slots=True)
class RuntimeCapacitySnapshot:
    """The request controller's adaptive state when the plan was built (end of the run);
    `provider_limits`: the learned limit of each provider serving two or more endpoints."""

    captured_at: float | None
    request_domain_current_limits: Mapping[str, int]
    request_domain_effective_max: Mapping[str, int]
    request_domain_blocked_until: Mapping[str, float | None]
    provider_model_aggregate_in_flight: Mapping[str, int]
    missing_reason: str | None = None
    provider_limits: Mapping[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "captured_at": self.captured_at,
            "request_domain_current_limits": dict(self.request_domain_current_limits),
            "request_domain_effective_max": dict(self.request_domain_effective_max),
            "request_domain_blocked_until": dict(self.request_domain_blocked_until),
            "provider_model_aggregate_in_flight": dict(self.provider_model_aggregate_in_flight),
            "provider_limits": dict(self.provider_limits),
            "missing_reason": self.missing_reason,
        }


@dataclass(frozen=True, slots=True)
class ObservedCapacityMaxima:
    """The highest value each layer reached during the run.

    `transport_pool_utilization` is an upper bound per provider: the sum of its endpoints'
    in-flight maxima over the pool's `max_connections` (the maxima may not coincide).
    """

    row_groups_in_flight: int | None
    queued_tasks_by_group: Mapping[str, int]
    task_leases_by_resource: Mapping[str, int]
    request_waiters_by_resource: Mapping[str, int]
    request_in_flight_by_resource: Mapping[str, int]
    provider_model_aggregate_in_flight: Mapping[str, int]
    request_domain_current_limits: Mapping[str, int]
    transport_pool_utilization: Mapping[str, CapacityValue[float]]

    def as_json(self) -> dict[str, Any]:
        return {
            "row_groups_in_flight": self.row_groups_in_flight,
            "queued_tasks_by_group": dict(self.queued_tasks_by_group),
            "task_leases_by_resource": dict(self.task_leases_by_resource),
            "request_waiters_by_resource": dict(self.request_waiters_by_resource),
            "request_in_flight_by_resource": dict(self.request_in_flight_by_resource),
            "provider_model_aggregate_in_flight": dict(self.provider_model_aggregate_in_flight),
            "request_domain_current_limits": dict(self.request_domain_current_limits),
            "transport_pool_utilization": _values_json(self.transport_pool_utilization),
        }


@dataclass(frozen=True, slots=True)
class AsyncCapacityPlan:
    """The run-level explanation of capacity (artifact `capacity_plan.json`)."""

    engine: str
    configured: ConfiguredCapacity
    runtime_snapshot: RuntimeCapacitySnapshot
    observed_maxima: ObservedCapacityMaxima
    schema_version: int = CAPACITY_PLAN_SCHEMA_VERSION

    def as_json(self) -> dict[str, Any]:
        """The plan as plain JSON (the `capacity_plan.json` shape)."""
        return {
            "schema_version": self.schema_version,
            "engine": self.engine,
            "configured": self.configured.as_json(),
            "runtime_snapshot": self.runtime_snapshot.as_json(),
            "observed_maxima": self.observed_maxima.as_json(),
        }


@dataclass(frozen=True, slots=True)
class SchedulerMaxima:
    """What the engine observed about row groups and queues (from its `SchedulerOutcome`)."""

    row_groups_in_flight: int | None = None
    queued_tasks_by_group: Mapping[str, int] = field(default_factory=dict)


def run_config_sources(run_config: RunConfig) -> dict[str, CapacitySource]:
    """`run_config` for fields set explicitly (YAML `run:` section, CLI flag, Python argument),
    `default` for the rest."""
    return {
        name: ("run_config" if name in run_config.model_fields_set else "default")
        for name in RunConfig.model_fields
    }


def build_capacity_plan(
    *,
    config: DatasetConfig,
    run_config: RunConfig,
    engine: str = "async",
    sources: Mapping[str, CapacitySource] | None = None,
    task_admission_config: TaskAdmissionConfig | None = None,
    task_admission_view: TaskAdmissionView | None = None,
    request_admission: RequestAdmissionCapacityView | None = None,
    transport_pools: Mapping[str, TransportPoolLimits | None] | None = None,
    scheduler: SchedulerMaxima | None = None,
    limit_rules: Mapping[RequestResourceKey, str] | None = None,
    task_policy: CapacityValue[str] | None = None,
) -> AsyncCapacityPlan:
    """The plan of one run, from its configs and the final views of its controllers.

    `sources` overrides the source of run-config fields (e.g. `benchmark_override`);
    `limit_rules` names the adaptive rule of each request resource when the controller was not
    built with the default (AIMD for every resource). Missing controllers (a run that failed
    before they existed, the sequential engine) yield values with a `missing_reason`.
    """
    src: dict[str, CapacitySource] = {**run_config_sources(run_config), **(sources or {})}
    catalog = ModelResourceCatalog(config.models, config.providers)
    sequential = engine == "sequential"
    ra_config = request_admission.config if request_admission is not None else None
    configured = ConfiguredCapacity(
        buffer_size=CapacityValue(run_config.buffer_size, src["buffer_size"]),
        row_group_admission=RowGroupAdmission(_row_group_concurrency(run_config, src, sequential)),
        submission_capacity=_submission(task_admission_config, sequential),
        task_resource_limits=_task_limits(task_admission_config),
        task_admission_policy=task_policy
        or CapacityValue(
            "",
            "default",
            missing_reason="the sequential engine admits one task at a time"
            if sequential
            else "no task admission controller was built",
        ),
        request_resources=tuple(r.as_key_str() for r in ra_config.resources) if ra_config else (),
        provider_model_static_caps={
            k.as_key_str(): c for k, c in sorted(catalog.static_caps().items())
        },
        request_domain_initial_limits=_initial_limits(ra_config),
        request_admission_config=(
            RequestAdmissionConfigSnapshot.of(ra_config, run_config.request_admission)
            if ra_config is not None
            else None
        ),
        transport_pool_limits=_pools(transport_pools or {}),
        request_limit_rules=_limit_rules(config, ra_config, limit_rules),
        request_provider_limits=(
            CapacityValue(ra_config.provider_limits, "engine_internal_config")
            if ra_config is not None
            else CapacityValue(False, "default", missing_reason="no request admission in this run")
        ),
    )
    return AsyncCapacityPlan(
        engine=engine,
        configured=configured,
        runtime_snapshot=_runtime(request_admission),
        observed_maxima=_observed(
            request_admission, task_admission_view, scheduler, transport_pools or {}
        ),
    )


def _row_group_concurrency(
    rc: RunConfig, src: Mapping[str, CapacitySource], sequential: bool
) -> CapacityValue[int]:
    if sequential:
        return CapacityValue(
            1,
            "engine_internal_config",
            fallback_from=src["max_concurrent_row_groups"],
            missing_reason="the sequential engine runs one row group at a time",
        )
    return CapacityValue(rc.max_concurrent_row_groups, src["max_concurrent_row_groups"])


def _submission(config: TaskAdmissionConfig | None, sequential: bool) -> CapacityValue[int]:
    if config is not None:
        return CapacityValue(config.submission_capacity, "engine_internal_config")
    reason = (
        "the sequential engine runs one task at a time without task admission"
        if sequential
        else "the run stopped before task admission was configured"
    )
    return CapacityValue(None, "engine_internal_config", missing_reason=reason)


def _task_limits(config: TaskAdmissionConfig | None) -> dict[str, CapacityValue[int]]:
    limits = config.resource_limits if config is not None else {}
    return {str(k): CapacityValue(v, "engine_internal_config") for k, v in sorted(limits.items())}


def _initial_limits(config: RequestAdmissionConfig | None) -> dict[str, CapacityValue[int]]:
    if config is None:
        return {}
    out: dict[str, CapacityValue[int]] = {}
    for resource in config.resources:
        value = config.initial_limit(resource)
        explicit = resource in config.initial_limits or resource in config.max_limit_clamps
        out[resource.as_key_str()] = CapacityValue(
            value, "engine_internal_config" if explicit else "model_metadata"
        )
    return out


def _limit_rules(
    config: DatasetConfig,
    ra_config: RequestAdmissionConfig | None,
    rules: Mapping[RequestResourceKey, str] | None,
) -> dict[str, CapacityValue[str]]:
    """The adaptive rule per resource: `rules` when given (the controller's own choice), else
    the request-admission config's `limit_rule(resource)` when it has one, else AIMD."""
    if ra_config is None:
        return {}
    requested: dict[ProviderModelKey, set[str]] = {}
    explicit: set[ProviderModelKey] = set()
    for model in config.models:
        key = ProviderModelKey(model.provider, model.model)
        requested.setdefault(key, set()).add(model.limit_rule)
        if "limit_rule" in model.model_fields_set:
            explicit.add(key)
    config_rule = getattr(ra_config, "limit_rule", None)  # present once rules are per resource
    out: dict[str, CapacityValue[str]] = {}
    for resource in ra_config.resources:
        source: CapacitySource
        if rules is not None:
            active, source = rules.get(resource, DEFAULT_LIMIT_RULE), "engine_internal_config"
        elif callable(config_rule):
            active = str(config_rule(resource))
            source = "model_metadata" if resource.provider_model in explicit else "default"
        else:
            active, source = DEFAULT_LIMIT_RULE, "default"
        wanted = requested.get(resource.provider_model, set()) - {active}
        if wanted:
            out[resource.as_key_str()] = CapacityValue(
                active,
                source,
                fallback_from="model_metadata",
                missing_reason=f"the model config asks for {', '.join(sorted(wanted))}; this "
                f"run's request controller applies {active}",
            )
        else:
            out[resource.as_key_str()] = CapacityValue(active, source)
    return out


def _pools(pools: Mapping[str, TransportPoolLimits | None]) -> dict[str, CapacityValue[Any]]:
    out: dict[str, CapacityValue[Any]] = {}
    for provider, limits in sorted(pools.items()):
        if limits is None:
            out[provider] = CapacityValue(
                None, "adapter_config", missing_reason="in-process provider: no transport pool"
            )
        else:
            out[provider] = CapacityValue(
                {
                    "kind": limits.kind,
                    "max_connections": limits.max_connections,
                    "max_keepalive_connections": limits.max_keepalive_connections,
                    **{str(k): _plain(v) for k, v in limits.extra.items()},
                },
                "adapter_config",
            )
    return out


def _runtime(view: RequestAdmissionCapacityView | None) -> RuntimeCapacitySnapshot:
    if view is None:
        return RuntimeCapacitySnapshot(
            None, {}, {}, {}, {}, missing_reason="no request admission in this run"
        )
    rt = view.runtime_snapshot
    return RuntimeCapacitySnapshot(
        captured_at=rt.captured_at,
        request_domain_current_limits=_keyed(rt.current_limits),
        request_domain_effective_max=_keyed(rt.effective_max),
        request_domain_blocked_until=_keyed(rt.blocked_until),
        provider_model_aggregate_in_flight=_keyed(rt.provider_model_aggregate_in_flight),
        provider_limits=dict(rt.provider_limits),
    )


def _observed(
    request: RequestAdmissionCapacityView | None,
    task_view: TaskAdmissionView | None,
    scheduler: SchedulerMaxima | None,
    pools: Mapping[str, TransportPoolLimits | None],
) -> ObservedCapacityMaxima:
    om = request.observed_maxima if request is not None else None
    pm_max = om.provider_model_aggregate_in_flight if om is not None else {}
    utilization: dict[str, CapacityValue[float]] = {}
    for provider, limits in sorted(pools.items()):
        if limits is None or not limits.max_connections:
            utilization[provider] = CapacityValue(
                None, "runtime_snapshot", missing_reason="no bounded transport pool"
            )
            continue
        peak = sum(n for k, n in pm_max.items() if k.provider_name == provider)
        utilization[provider] = CapacityValue(peak / limits.max_connections, "runtime_snapshot")
    sched = scheduler or SchedulerMaxima()
    return ObservedCapacityMaxima(
        row_groups_in_flight=sched.row_groups_in_flight,
        queued_tasks_by_group=dict(sorted(sched.queued_tasks_by_group.items())),
        task_leases_by_resource=(
            {str(k): v for k, v in sorted(task_view.observed_max_leased.items())}
            if task_view is not None
            else {}
        ),
        request_waiters_by_resource=_keyed(om.request_waiters_by_resource) if om else {},
        request_in_flight_by_resource=_keyed(om.request_in_flight_by_resource) if om else {},
        provider_model_aggregate_in_flight=_keyed(pm_max),
        request_domain_current_limits=_keyed(om.request_domain_current_limits) if om else {},
        transport_pool_utilization=utilization,
    )


def _keyed(mapping: Mapping[Any, T]) -> dict[str, T]:
    return {k.as_key_str(): v for k, v in sorted(mapping.items())}


def _values_json(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.as_json() for k, v in mapping.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
