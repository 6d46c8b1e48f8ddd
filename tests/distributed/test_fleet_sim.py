"""The simulated fleet: shared limits hold 429s down where independent limits storm."""

from __future__ import annotations

import pytest

from rowloom.distributed.fleet_sim import (
    FleetSimConfig,
    PacingMode,
    fair_shares,
    simulate_fleet,
)


def test_shared_limit_settles_a_fleet_below_one_percent_429s() -> None:
    result = simulate_fleet(FleetSimConfig(workers=16, slots=32, duration_seconds=40))
    figures = result.summary()
    assert figures["rate_limited_fraction"] <= 0.01
    assert figures["goodput_ratio_after_settling"] >= 0.90
    assert figures["time_to_settle_seconds"] < 20
    assert figures["fairness_jain"] >= 0.95
    assert result.reports > 16 * 40 * 4  # every worker reports about five times a second


def test_independent_limits_are_the_storm_the_coordinator_prevents() -> None:
    cfg = FleetSimConfig(workers=16, slots=32, duration_seconds=20, mode="independent")
    figures = simulate_fleet(cfg).summary()
    assert figures["rate_limited_fraction"] > 0.05
    assert figures["reports_per_second"] == 0


def test_a_storm_is_cut_and_a_large_fleet_shares_few_slots() -> None:
    storm = FleetSimConfig(workers=32, slots=64, duration_seconds=40, storm_at=20)
    figures = simulate_fleet(storm).summary()
    assert figures["rate_limited_fraction_in_storm"] <= 0.10
    assert figures["rate_limited_fraction"] <= 0.02
    crowd = simulate_fleet(FleetSimConfig(workers=200, slots=8, duration_seconds=30))
    assert crowd.summary()["rate_limited_fraction"] <= 0.02
    # eight slots turn over every 5 s: about 48 workers served in 30 s, not the same eight
    assert sum(1 for done in crowd.per_worker_ok if done) >= 40


def test_same_seed_same_figures() -> None:
    cfg = FleetSimConfig(workers=8, slots=16, duration_seconds=10, seed=3)
    a, b = simulate_fleet(cfg), simulate_fleet(cfg)
    assert (a.ok, a.refused, a.per_worker_ok) == (b.ok, b.refused, b.per_worker_ok)


def test_fair_shares_and_config_checks() -> None:
    assert fair_shares(10.0, [1, 10, 10]) == [1.0, 4.5, 4.5]
    with pytest.raises(ValueError):
        simulate_fleet(FleetSimConfig(workers=0, slots=4))


def test_a_request_budget_paced_by_the_coordinator_not_by_each_worker() -> None:
    """A provider of 600 requests per minute that sends x-ratelimit-* headers: workers that
    pace on their own answers each spend the key's budget (429s every window); the
    coordinator splits it into caps, and the fleet still gets the whole budget."""

    def run(pacing: PacingMode) -> dict[str, float]:
        cfg = FleetSimConfig(
            workers=8,
            slots=32,
            latency_seconds=0.2,
            latency_sigma=0.3,
            duration_seconds=120,
            rpm=600,
            pacing=pacing,
        )
        return simulate_fleet(cfg).summary()

    fleet, worker = run("fleet"), run("worker")
    assert worker["rate_limited_fraction"] > 0.02
    assert fleet["rate_limited_fraction"] <= 0.005
    assert fleet["goodput_vs_rpm"] >= 0.98
