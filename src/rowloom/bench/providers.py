"""Simulated providers of a scenario, in process or as real HTTP servers.

A `ProviderScript` is one provider's behaviour (concurrency slots, latency, overload mode,
Retry-After, rpm, faults, seed). In process it becomes a `simulated` `ModelProvider`; with
`--http` the harness starts `rowloom mock-server`'s server in a child process on 127.0.0.1
(`rowloom.simulation.process.MockServerProcess`) and points an `openai` provider at it, so
calls go through the real OpenAI-compatible client over real sockets and the server's CPU is
not charged to the engine. The same seed gives the same answers on both paths, so output hashes are
comparable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from rowloom.config.models import ModelProvider, SimulationConfig
from rowloom.simulation.process import MockServerProcess
from rowloom.simulation.server import MockServerOptions


@dataclass(frozen=True, slots=True)
class ProviderScript:
    """One simulated provider's behaviour; `physical_limit_rps` is its ceiling on goodput."""

    name: str
    capacity: int = 32
    latency_ms: float = 200.0
    overload: Literal["reject", "queue"] = "reject"
    retry_after_s: float = 1.0
    rpm: int | None = None
    fail_rate: float = 0.0
    timeout_rate: float = 0.0
    seed: int = 0
    latency_distribution: Literal["fixed", "lognormal"] = "fixed"

    @property
    def physical_limit_rps(self) -> float | None:
        """Successful requests per second the provider can serve at most (None: unbounded)."""
        limits = []
        if self.latency_ms > 0:
            limits.append(self.capacity / (self.latency_ms / 1000.0))
        if self.rpm is not None:
            limits.append(self.rpm / 60.0)
        return min(limits) if limits else None

    def simulation(self) -> SimulationConfig:
        """The in-process capacity model's settings."""
        return SimulationConfig(
            capacity=self.capacity,
            latency_ms=self.latency_ms,
            latency_distribution=self.latency_distribution,
            overload=self.overload,
            retry_after_s=self.retry_after_s,
            rpm=self.rpm,
            fail_rate=self.fail_rate,
            timeout_rate=self.timeout_rate,
            seed=self.seed,
        )

    def server_options(self) -> MockServerOptions:
        """The HTTP mock server's options (same capacity model, same seed)."""
        return MockServerOptions(
            capacity=self.capacity,
            latency_ms=self.latency_ms,
            latency_distribution=self.latency_distribution,
            overload=self.overload,
            retry_after=self.retry_after_s,
            rpm=self.rpm,
            fail_rate=self.fail_rate,
            timeout_rate=self.timeout_rate,
            seed=self.seed,
        )

    def quiet(self) -> ProviderScript:
        """The oracle's provider: same answers, no latency, no faults, no limits."""
        return replace(
            self, capacity=100_000, latency_ms=0.0, rpm=None, fail_rate=0.0, timeout_rate=0.0
        )

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "physical_limit_rps": self.physical_limit_rps}


def physical_limit_rps(scripts: Sequence[ProviderScript]) -> float | None:
    """The summed physical limit of several providers (None when any is unbounded)."""
    limits = [s.physical_limit_rps for s in scripts]
    if not limits or any(v is None for v in limits):
        return None
    return float(sum(v for v in limits if v is not None))


@dataclass(frozen=True, slots=True)
class ProviderFleet:
    """The `ModelProvider` configs of one run and, with HTTP, the servers behind them."""

    providers: tuple[ModelProvider, ...]
    servers: Mapping[str, MockServerProcess]

    def server_stats(self) -> dict[str, dict[str, Any]]:
        """Per provider: the HTTP server's counters (empty in process)."""
        return {name: server.stats() for name, server in self.servers.items()}


@contextmanager
def provider_fleet(scripts: Sequence[ProviderScript], *, http: bool) -> Iterator[ProviderFleet]:
    """Providers for `scripts`; with `http`, one mock server per provider, always stopped."""
    with ExitStack() as stack:
        servers: dict[str, MockServerProcess] = {}
        providers = []
        for script in scripts:
            if not http:
                providers.append(
                    ModelProvider(
                        name=script.name, provider_type="simulated", simulation=script.simulation()
                    )
                )
                continue
            server = MockServerProcess(script.server_options())
            stack.callback(server.stop)
            server.start()
            servers[script.name] = server
            providers.append(
                ModelProvider(name=script.name, provider_type="openai", endpoint=server.url)
            )
        yield ProviderFleet(tuple(providers), servers)
