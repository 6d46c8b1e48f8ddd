"""Every benchmark scenario of benchmarks.md, by id, in the spec's order (then the
scenarios added for later issues, e.g. `rate_limit_headers` (issue 7),
`dispatch_throughput` and `mock_server_load` (issue 13), `ramp` (issue 17))."""

from __future__ import annotations

from rowloom.bench.dispatch import DispatchThroughput
from rowloom.bench.fleet import FleetSimulation
from rowloom.bench.http_load import MockServerLoad
from rowloom.bench.micro import QueueAdmissionMicro
from rowloom.bench.overload import (
    AimdConvergence,
    CrossProviderCooldown,
    QueueingOverload,
    Ramp,
)
from rowloom.bench.profiling import EstimateAccuracy, ProfileScale
from rowloom.bench.rate_limits import RateLimitHeadersScenario
from rowloom.bench.ray_fleet import RayFleet
from rowloom.bench.scale import ScaleRows
from rowloom.bench.scenario import Scenario
from rowloom.bench.seeds import SeedStream
from rowloom.bench.sink_overhead import SinkOverhead
from rowloom.bench.workloads import (
    E2EDualModel,
    E2EDynamicRequests,
    E2ENarrow,
    E2EWide,
    HeavyRoot,
    HiddenWaiter,
    IdleUtilization,
)

SCENARIOS: tuple[Scenario, ...] = (
    QueueAdmissionMicro(),
    HeavyRoot(),
    HiddenWaiter(),
    IdleUtilization(),
    E2ENarrow(),
    E2EWide(),
    E2EDualModel(),
    E2EDynamicRequests(),
    AimdConvergence(),
    QueueingOverload(),
    CrossProviderCooldown(),
    RateLimitHeadersScenario(),
    ScaleRows(),
    FleetSimulation(),
    SeedStream(),
    RayFleet(),
    ProfileScale(),
    EstimateAccuracy(),
    SinkOverhead(),
    DispatchThroughput(),
    MockServerLoad(),
    Ramp(),
)


def get_scenario(scenario_id: str) -> Scenario:
    """The scenario with this id; KeyError naming the known ids otherwise."""
    for scenario in SCENARIOS:
        if scenario.id == scenario_id:
            return scenario
    known = ", ".join(s.id for s in SCENARIOS)
    raise KeyError(f"unknown scenario {scenario_id!r}; known: {known}")
