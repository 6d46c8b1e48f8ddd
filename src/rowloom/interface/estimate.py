"""`rowloom estimate`: what a run will take and cost, from a pilot of a few rows.

The pilot is a real (small) run into a scratch folder, against the real providers or, with
`--simulate`, the embedded simulated one (shape only). From its artifacts it measures, per
request resource (provider/model/domain): attempts and successes per row, 429s, the mean
latency of a successful attempt and the limit request admission settled at; per model: tokens
and cost per row. The prediction for N rows is a throughput model over those figures:

    throughput(r) = usable_limit(r) / latency(r)          (Little's law, requests per second)
    time(r)       = attempts_per_row(r) * N / throughput(r)
    wall          = max over r of time(r) + one row's chain of model calls (the pipeline's tail)

where `usable_limit` is the smallest of the resource's settled limit (its static cap when the
pilot saw no 429, the limit it learned when it did), its share of a shared provider's learned
limit, and the rows the run keeps in flight. The resource with the largest time binds the run,
named in the capacity plan's language with the setting to change.

An estimate is saved in the artifact folder under the config's fingerprint; a later `create`
of the same config copies it, re-predicted for its row count, into the run folder, and the
report shows it beside what happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rowloom.config.dataset import DatasetConfig
from rowloom.config.references import column_model_aliases
from rowloom.observability.view import CorrelatedRuntimeView

AIMD_EFFICIENCY = 0.95  # mean in flight / learned limit for a resource that saw 429s
ESTIMATES_DIR = ".estimates"
ESTIMATE_FILE = "estimate.json"


@dataclass(frozen=True)
class ResourceRates:
    """One request resource as the pilot measured it."""

    resource: str
    provider: str
    aliases: list[str]
    attempts_per_row: float
    successes_per_row: float
    rate_limited_fraction: float
    latency_seconds: float
    limit: int
    limit_source: str


@dataclass(frozen=True)
class PilotMeasurement:
    """What a pilot run measured (per row figures scale to any row count)."""

    rows: int
    wall_seconds: float
    rows_in_flight: int
    resources: list[ResourceRates]
    provider_limits: dict[str, int]
    tokens_per_row: dict[str, dict[str, float]]
    cost_per_row: dict[str, float]
    currency: str | None
    chain_seconds: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PilotMeasurement:
        resources = [ResourceRates(**r) for r in data["resources"]]
        return cls(**{**data, "resources": resources})


@dataclass(frozen=True)
class ResourceForecast:
    """One resource's share of the predicted run."""

    resource: str
    requests: int
    usable_limit: float
    requests_per_second: float
    seconds: float
    limited_by: str


@dataclass(frozen=True)
class Estimate:
    """The prediction for `num_records` rows."""

    num_records: int
    predicted_wall_seconds: float
    predicted_requests: int
    predicted_requests_by_model: dict[str, int]
    predicted_tokens_by_model: dict[str, dict[str, int]]
    predicted_cost: float | None
    currency: str | None
    binding_resource: str | None
    binding_reason: str
    resources: list[ResourceForecast]
    pilot: PilotMeasurement
    config_fingerprint: str = ""
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# --- measuring ------------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return data


def _alias_prefixes(plan: Mapping[str, Any]) -> dict[str, str]:
    """alias -> `provider/model/` prefix of its request resources, from the capacity plan."""
    caps = (plan.get("configured") or {}).get("provider_model_static_caps") or {}
    return {alias: f"{key}/" for key, cap in caps.items() for alias in cap.get("aliases", [])}


def _value(node: Any) -> Any:
    return node.get("value") if isinstance(node, Mapping) else node


def _rows_in_flight(plan: Mapping[str, Any]) -> int:
    configured = plan.get("configured") or {}
    buffer_size = _value(configured.get("buffer_size")) or 1
    groups = _value((configured.get("row_group_admission") or {}).get("row_group_concurrency"))
    return int(buffer_size) * int(groups or 1)


def measure_run(run_dir: Path, view: CorrelatedRuntimeView | None = None) -> PilotMeasurement:
    """Per-row rates, latencies and settled limits of a run, from its folder alone (`view`:
    the folder's joined events, when the caller has them already)."""
    manifest = _read(run_dir / "manifest.json")
    plan = _read(run_dir / "capacity_plan.json")
    view = view if view is not None else CorrelatedRuntimeView.from_run_dir(run_dir)
    rows = max(1, int(manifest.get("rows_written") or 0))
    runtime = plan.get("runtime_snapshot") or {}
    current = runtime.get("request_domain_current_limits") or {}
    effective = runtime.get("request_domain_effective_max") or {}
    prefixes = _alias_prefixes(plan)
    resources = []
    for key, res in sorted(view.resources.items()):
        outcomes = res.attempts_by_outcome
        attempts = sum(outcomes.values())
        if not attempts:
            continue
        limited = int(outcomes.get("rate_limited", 0))
        cap = effective.get(key) or res.effective_max or res.static_cap or 1
        learned = current.get(key)
        if limited and isinstance(learned, int):
            limit, source = learned, "learned limit (429s)"
        else:
            limit, source = int(cap), "static cap"
        latencies = res.success_latencies
        resources.append(
            ResourceRates(
                resource=key,
                provider=key.split("/", 1)[0],
                aliases=sorted(a for a, p in prefixes.items() if key.startswith(p)),
                attempts_per_row=attempts / rows,
                successes_per_row=int(outcomes.get("success", 0)) / rows,
                rate_limited_fraction=limited / attempts,
                latency_seconds=sum(latencies) / len(latencies) if latencies else 0.0,
                limit=max(1, limit),
                limit_source=source,
            )
        )
    tokens, costs, currency = _usage_per_row(manifest, rows)
    return PilotMeasurement(
        rows=rows,
        wall_seconds=view.wall_seconds,
        rows_in_flight=_rows_in_flight(plan),
        resources=resources,
        provider_limits={k: int(v) for k, v in (runtime.get("provider_limits") or {}).items()},
        tokens_per_row=tokens,
        cost_per_row=costs,
        currency=currency,
        chain_seconds=0.0,
    )


def run_advice(run_dir: Path, view: CorrelatedRuntimeView | None = None) -> str | None:
    """What limited a finished run, as the setting to change (None without model requests)."""
    measured = measure_run(run_dir, view)
    if not measured.resources:
        return None
    return predict(measured, measured.rows).binding_reason


def _usage_per_row(
    manifest: Mapping[str, Any], rows: int
) -> tuple[dict[str, dict[str, float]], dict[str, float], str | None]:
    by_model = (manifest.get("token_usage") or {}).get("by_model") or {}
    tokens: dict[str, dict[str, float]] = {}
    costs: dict[str, float] = {}
    for alias, usage in by_model.items():
        tokens[alias] = {
            k: usage.get(k, 0) / rows
            for k in ("prompt_tokens", "completion_tokens", "reasoning_tokens")
        }
        if usage.get("estimated_cost") is not None:
            costs[alias] = float(usage["estimated_cost"]) / rows
    currency = (manifest.get("token_usage") or {}).get("currency")
    return tokens, costs, currency if isinstance(currency, str) else None


def chain_seconds(config: DatasetConfig, resources: list[ResourceRates]) -> float:
    """One row's longest chain of model calls: the pipeline's fill and drain time."""
    latency = {a: r.latency_seconds for r in resources for a in r.aliases}
    depth: dict[str, float] = {}
    for name in config.topological_order:
        column = config.column_by_name[name]
        own = max((latency.get(a, 0.0) for a in column_model_aliases(column)), default=0.0)
        upstream = max((depth.get(d, 0.0) for d in config.dependencies.get(name, ())), default=0.0)
        depth[name] = upstream + own
    return max(depth.values(), default=0.0)


# --- predicting -----------------------------------------------------------------------------


def predict(pilot: PilotMeasurement, num_records: int) -> Estimate:
    """The throughput model (module docstring) for `num_records` rows."""
    forecasts = [_forecast(pilot, r, num_records) for r in pilot.resources]
    forecasts += _provider_forecasts(pilot, num_records)
    busiest = max(forecasts, key=lambda f: f.seconds, default=None)
    notes: list[str] = []
    if busiest is None or busiest.seconds <= 0:
        wall = pilot.wall_seconds * num_records / max(1, pilot.rows)
        notes.append("no model requests in the pilot: wall time scaled from the pilot's")
    else:
        wall = busiest.seconds + pilot.chain_seconds
    requests_by_model: dict[str, int] = {}
    for r in pilot.resources:
        for alias in r.aliases:
            share = round(r.attempts_per_row * num_records / max(1, len(r.aliases)))
            requests_by_model[alias] = requests_by_model.get(alias, 0) + share
    tokens = {
        alias: {k: round(v * num_records) for k, v in per_row.items()}
        for alias, per_row in pilot.tokens_per_row.items()
    }
    priced = [c * num_records for c in pilot.cost_per_row.values()]
    return Estimate(
        num_records=num_records,
        predicted_wall_seconds=round(wall, 3),
        predicted_requests=sum(requests_by_model.values()),
        predicted_requests_by_model=requests_by_model,
        predicted_tokens_by_model=tokens,
        predicted_cost=round(sum(priced), 6) if priced else None,
        currency=pilot.currency,
        binding_resource=busiest.resource if busiest else None,
        binding_reason=_advice(busiest, pilot),
        resources=forecasts,
        pilot=pilot,
        notes=notes,
    )


def _forecast(pilot: PilotMeasurement, r: ResourceRates, n: int) -> ResourceForecast:
    requests = round(r.attempts_per_row * n)
    usable, reason = min(
        (float(r.limit), r.limit_source),
        (float(pilot.rows_in_flight), "rows in flight"),
        key=lambda c: c[0],
    )
    if r.rate_limited_fraction > 0 and reason.startswith("learned"):
        usable *= AIMD_EFFICIENCY
    return _timed(r.resource, requests, usable, r.latency_seconds, reason)


def _timed(
    name: str, requests: int, usable: float, latency: float, reason: str
) -> ResourceForecast:
    rps = usable / latency if latency > 0 else 0.0
    seconds = requests / rps if rps > 0 else 0.0
    return ResourceForecast(name, requests, round(usable, 2), round(rps, 3), seconds, reason)


def _provider_forecasts(pilot: PilotMeasurement, n: int) -> list[ResourceForecast]:
    """A provider serving several resources under one learned limit: its total in flight."""
    out = []
    for provider, limit in sorted(pilot.provider_limits.items()):
        members = [r for r in pilot.resources if r.provider == provider]
        if len(members) < 2 or limit >= sum(r.limit for r in members):
            continue
        busy = sum(r.attempts_per_row * r.latency_seconds for r in members) * n
        usable = limit * AIMD_EFFICIENCY
        requests = round(sum(r.attempts_per_row for r in members) * n)
        mean_latency = busy / requests if requests else 0.0
        reason = f"provider limit {limit} (429s)"
        out.append(_timed(f"provider {provider}", requests, usable, mean_latency, reason))
    return out


def _advice(busiest: ResourceForecast | None, pilot: PilotMeasurement) -> str:
    if busiest is None:
        return "local work (no model requests)"
    if busiest.resource.startswith("provider "):
        return (
            f"{busiest.resource} is the limit: it accepts about {busiest.usable_limit:g} "
            "requests in flight over all its models (learned from its 429s); raising model "
            "limits gains nothing"
        )
    rates = next(r for r in pilot.resources if r.resource == busiest.resource)
    aliases = ", ".join(rates.aliases) or busiest.resource
    if busiest.limited_by.startswith("static cap"):
        return (
            f"{busiest.resource} at its static cap: raise max_parallel_requests of {aliases} "
            "if the provider accepts more"
        )
    if busiest.limited_by.startswith("rows in flight"):
        return (
            f"{busiest.resource} is starved of rows: raise buffer_size or max_concurrent_row_groups"
        )
    return (
        f"{busiest.resource} is limited by the provider (it answers 429 above about "
        f"{busiest.usable_limit:g} in flight): nothing to gain"
    )


# --- pilot, saving, CLI glue ----------------------------------------------------------------


def estimate_from_pilot(pilot_run_dir: Path, config: DatasetConfig, num_records: int) -> Estimate:
    """Measure a finished pilot run and predict `num_records` rows of `config`."""
    measured = measure_run(pilot_run_dir)
    measured = replace(measured, chain_seconds=chain_seconds(config, measured.resources))
    return replace(predict(measured, num_records), config_fingerprint=config.fingerprint())


def save_estimate(artifact_dir: Path, result: Estimate) -> Path:
    """Keep the estimate for a later `create` of the same config."""
    folder = artifact_dir / ESTIMATES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.config_fingerprint}.json"
    path.write_text(json.dumps(result.as_json(), indent=1), encoding="utf-8")
    return path


def attach_saved_estimate(artifact_dir: Path, run_dir: Path, config: DatasetConfig) -> bool:
    """Copy a saved estimate of this config into the run folder, re-predicted for the run's
    row count. True when there was one."""
    saved = artifact_dir / ESTIMATES_DIR / f"{config.fingerprint()}.json"
    manifest = _read(run_dir / "manifest.json")
    if not saved.is_file() or not manifest:
        return False
    data = json.loads(saved.read_text(encoding="utf-8"))
    pilot = PilotMeasurement.from_json(data["pilot"])
    again = predict(pilot, int(manifest.get("num_records") or data["num_records"]))
    again = replace(again, config_fingerprint=config.fingerprint())
    (run_dir / ESTIMATE_FILE).write_text(json.dumps(again.as_json(), indent=1), encoding="utf-8")
    return True
