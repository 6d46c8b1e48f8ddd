"""`SettlingAimdLimitRule`: the default rule settles below the last 429 ceiling (pure rule)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom.models.request_admission import (
    AimdLimitRule,
    RequestLimitRule,
    RequestLimitSample,
    SettlingAimdLimitRule,
)


def ok(in_flight: int = 10_000) -> RequestLimitSample:
    return RequestLimitSample(0.0, rate_limited=False, latency_seconds=0.2, in_flight=in_flight)


DROP = RequestLimitSample(0.0, rate_limited=True)


def steady_provider(rule: RequestLimitRule, capacity: int, requests: int) -> list[bool]:
    """A provider that answers 429 whenever more than `capacity` requests are in flight.

    Each step sends one request at the current limit (the resource runs saturated): a 429
    when the limit exceeds the capacity, else a success. Returns the 429 flags per request.
    """
    flags = []
    for _ in range(requests):
        limited = rule.limit > capacity
        flags.append(limited)
        rule.update(DROP if limited else ok(in_flight=rule.limit - 1))
    return flags


def test_a_drop_below_the_remembered_ceiling_cuts_multiplicatively_and_sets_the_ceiling() -> None:
    rule = SettlingAimdLimitRule(40, 64, successes_until_increase=2)
    assert rule.update(DROP) == 30
    assert rule.ceiling == 40


def test_increase_stops_one_below_the_ceiling_and_probes_only_after_a_long_streak() -> None:
    rule = SettlingAimdLimitRule(10, 64, successes_until_increase=2)
    rule.update(DROP)  # ceiling 10, limit 7
    for _ in range(4):
        rule.update(ok())
    assert rule.limit == 9  # hold level: one below the ceiling
    for _ in range(10):
        assert rule.update(ok()) == 9  # no further additive increase
    rule.update(DROP)  # a 429 at the hold level is a capacity drop: cut, new ceiling
    assert (rule.limit, rule.ceiling) == (6, 9)
    for _ in range(4):
        rule.update(ok())
    assert rule.limit == 8
    hold = rule.probe_after_successes
    assert hold == 8 * 2 and rule.successes == 0
    for _ in range(hold - 1):
        rule.update(ok())
    assert rule.limit == 8
    rule.update(ok())
    assert rule.limit == 9  # the probe of the ceiling


def test_a_failed_probe_returns_to_the_hold_level_and_doubles_the_wait() -> None:
    rule = SettlingAimdLimitRule(10, 64, successes_until_increase=2)
    rule.update(DROP)
    while rule.limit < 10:
        rule.update(ok())
    first_wait = rule.probe_after_successes
    assert rule.update(DROP) == 9  # no multiplicative cut for a failed probe
    assert rule.ceiling == 10
    assert rule.probe_after_successes == 2 * first_wait


def test_the_probe_wait_is_bounded_so_the_ceiling_is_retested_forever() -> None:
    rule = SettlingAimdLimitRule(10, 64, successes_until_increase=1)
    rule.update(DROP)
    for _ in range(20):
        while rule.limit < 10:
            rule.update(ok())
        rule.update(DROP)
    assert rule.probe_after_successes == 128


def test_a_probe_that_holds_at_saturation_forgets_the_ceiling() -> None:
    rule = SettlingAimdLimitRule(10, 64, successes_until_increase=2)
    rule.update(DROP)
    while rule.limit < 10:
        rule.update(ok())
    rule.update(ok(in_flight=3))  # the resource did not run at the probe level: no evidence
    rule.update(ok(in_flight=3))
    assert rule.ceiling == 10
    rule.update(ok(in_flight=9))
    rule.update(ok(in_flight=9))
    assert rule.ceiling is None
    rule.update(ok())
    rule.update(ok())
    assert rule.limit == 11  # normal additive increase again


def test_a_drop_below_the_ceiling_after_settling_is_a_real_capacity_drop() -> None:
    rule = SettlingAimdLimitRule(20, 64, successes_until_increase=1)
    rule.update(DROP)  # ceiling 20, limit 15
    rule.update(DROP)  # below the ceiling: cut again, new ceiling 15
    assert (rule.limit, rule.ceiling) == (11, 15)


def test_reset_clamps_and_drops_a_ceiling_above_the_new_max() -> None:
    rule = SettlingAimdLimitRule(40, 64)
    rule.update(DROP)
    assert rule.reset(100, 20) == 20 and rule.ceiling is None
    assert rule.reset(0, 20) == 1


def test_a_steady_provider_rarely_sees_a_429_once_settled_while_v1_keeps_hitting_it() -> None:
    capacity, requests = 32, 20_000
    settling = steady_provider(SettlingAimdLimitRule(64, 64), capacity, requests)
    v1 = steady_provider(AimdLimitRule(64, 64), capacity, requests)
    tail = requests // 4
    assert sum(settling[tail:]) / (requests - tail) <= 0.001
    assert sum(v1[tail:]) > 10 * max(1, sum(settling[tail:]))


def test_a_settled_limit_runs_at_the_capacity_most_of_the_time() -> None:
    rule = SettlingAimdLimitRule(64, 64)
    limits = []
    for _ in range(20_000):
        limited = rule.limit > 32
        rule.update(DROP if limited else ok(in_flight=rule.limit - 1))
        limits.append(rule.limit)
    tail = limits[5_000:]
    assert sum(1 for lim in tail if lim == 32) / len(tail) >= 0.95


@settings(max_examples=300, deadline=None)
@given(
    initial=st.integers(1, 80),
    top=st.integers(1, 80),
    step=st.integers(1, 5),
    needed=st.integers(1, 5),
    factor=st.floats(0.05, 0.95),
    samples=st.lists(
        st.tuples(st.booleans(), st.integers(0, 100), st.one_of(st.none(), st.integers(0, 100))),
        max_size=300,
    ),
)
def test_the_limit_stays_within_one_and_the_max_under_any_samples(
    initial: int,
    top: int,
    step: int,
    needed: int,
    factor: float,
    samples: list[tuple[bool, int, int | None]],
) -> None:
    rule = SettlingAimdLimitRule(
        initial, top, decrease_factor=factor, increase_step=step, successes_until_increase=needed
    )
    assert 1 <= rule.limit <= top
    for limited, in_flight, refused in samples:
        sample = RequestLimitSample(0.0, limited, 0.1, in_flight, lease_in_flight=refused)
        value = rule.update(sample)
        assert value == rule.limit
        assert 1 <= rule.limit <= rule.max_limit == top
        ceiling = rule.ceiling
        assert ceiling is None or 1 <= ceiling <= top
