"""`SettlingAimdLimitRule`: the default rule settles below the last 429 ceiling (pure rule)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom.clock import ManualClock
from rowloom.models.request_admission import (
    AdaptiveRequestLimitState,
    AimdLimitRule,
    RequestLimitRule,
    RequestLimitSample,
    SettlingAimdLimitRule,
)
from rowloom.models.request_admission.settling_aimd import (
    MAX_PROBE_AFTER_SECONDS,
    MAX_PROBE_HOLD_FACTOR,
    PROBE_AFTER_SECONDS,
)


def ok(in_flight: int = 10_000, now: float = 0.0) -> RequestLimitSample:
    return RequestLimitSample(now, rate_limited=False, latency_seconds=0.2, in_flight=in_flight)


def refused(in_flight: int, now: float = 0.0) -> RequestLimitSample:
    """A 429 whose request was granted with `in_flight` requests in flight (itself included)."""
    return RequestLimitSample(now, rate_limited=True, lease_in_flight=in_flight)


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


# -- a remembered ceiling cannot pin a resource low for long ------------------------------------


def test_a_refusal_far_below_the_limit_cuts_like_v1_and_learns_no_ceiling() -> None:
    # A shared provider saturated by other models refuses this resource with 1 in flight.
    rule = SettlingAimdLimitRule(32, 32)
    assert rule.update(refused(1)) == 24  # V1's multiplicative cut, not a cut to 1
    assert rule.ceiling is None
    for _ in range(8 * 25):
        rule.update(ok(in_flight=1))  # low demand: the limit is not binding
    assert rule.limit == 32  # plain additive increase all the way back


def test_refusals_at_low_concurrency_never_collapse_the_limit_faster_than_v1() -> None:
    settling, v1 = SettlingAimdLimitRule(32, 32), AimdLimitRule(32, 32)
    for _ in range(4):  # four refusals at 1 in flight, each a new cascade
        settling.update(refused(1))
        v1.update(refused(1))
    assert settling.limit == v1.limit == 9 and settling.ceiling is None


def test_a_refusal_that_lands_near_the_refused_concurrency_still_sets_the_ceiling() -> None:
    rule = SettlingAimdLimitRule(64, 64)
    assert rule.update(refused(33)) == 32  # overshoot from 2C: lands on C
    assert rule.ceiling == 33


def test_a_low_ceiling_is_probed_after_a_few_rounds_not_hundreds_of_successes() -> None:
    # Capacity 2 right now: refused at 2 in flight with limit 2 -> hold at 1, ceiling 2.
    rule = SettlingAimdLimitRule(2, 32)
    assert rule.update(refused(2)) == 1 and rule.ceiling == 2
    assert rule.probe_after_successes == 8  # eight rounds of one request, not 8 x 25
    for _ in range(7):
        rule.update(ok(in_flight=0))
    assert rule.limit == 1
    rule.update(ok(in_flight=0))
    assert rule.limit == 2  # the probe


def test_a_slow_low_ceiling_is_probed_once_the_time_bound_passes() -> None:
    rule = SettlingAimdLimitRule(2, 32)
    rule.update(refused(2, now=100.0))  # hold at 1, ceiling 2
    rule.update(ok(in_flight=0, now=100.0 + PROBE_AFTER_SECONDS / 2))
    assert rule.limit == 1
    rule.update(ok(in_flight=0, now=100.0 + PROBE_AFTER_SECONDS))
    assert rule.limit == 2  # two successes, but the ceiling is PROBE_AFTER_SECONDS old


def test_a_stuck_low_ceiling_climbs_back_to_the_max_within_bounded_successes() -> None:
    """The qa_judge regression: a 429 at low concurrency, then only successes at the limit."""
    rule = SettlingAimdLimitRule(2, 32)
    rule.update(refused(2))
    now, successes = 0.0, 0
    while rule.limit < 32:
        now += 0.2 / rule.limit  # a saturated resource at 200 ms latency
        rule.update(ok(in_flight=rule.limit - 1, now=now))
        successes += 1
        assert successes <= 8 + 25 + 30 * 25, "pinned below the max"
    assert rule.ceiling is None
    assert now < 60.0  # the old rule held at 1 for 200 successes (40 s) before probing


def test_failed_probes_space_out_in_time_up_to_a_bound() -> None:
    rule = SettlingAimdLimitRule(2, 32)
    now = 0.0
    rule.update(refused(2, now=now))
    waits = []
    for _ in range(8):
        start = now
        while rule.limit < 2:
            now += 1.0  # one slow success a second: the time bound decides
            rule.update(ok(in_flight=0, now=now))
        waits.append(now - start)
        rule.update(refused(2, now=now))  # the probe fails: back to 1
    assert rule.probe_after_seconds == MAX_PROBE_AFTER_SECONDS
    assert waits == [5.0, 10.0, 20.0, 40.0, 80.0, 80.0, 80.0, 80.0]


@settings(max_examples=300, deadline=None)
@given(
    top=st.integers(1, 64),
    step=st.integers(1, 3),
    needed=st.integers(1, 30),
    history=st.lists(
        st.tuples(st.booleans(), st.integers(0, 70), st.floats(0.0, 20.0)),
        max_size=200,
    ),
    spacing=st.floats(0.001, 30.0),
)
def test_after_any_429_history_successes_bring_the_limit_to_the_max_in_bounded_time(
    top: int,
    step: int,
    needed: int,
    history: list[tuple[bool, int, float]],
    spacing: float,
) -> None:
    rule = SettlingAimdLimitRule(top, top, increase_step=step, successes_until_increase=needed)
    now = 0.0
    for limited, in_flight, gap in history:
        now += gap
        rule.update(RequestLimitSample(now, limited, 0.2, in_flight, lease_in_flight=in_flight))
    hold_bound = min(
        MAX_PROBE_HOLD_FACTOR * needed, math.ceil(MAX_PROBE_AFTER_SECONDS / spacing) + 1
    )
    bound = (top + 1) * needed + hold_bound
    for _ in range(bound):
        if rule.limit == top:
            break
        now += spacing
        rule.update(ok(in_flight=rule.limit - 1, now=now))
    assert rule.limit == top


@settings(max_examples=200, deadline=None)
@given(
    top=st.integers(1, 48),
    mode=st.sampled_from(["reduced_limit", "block_all"]),
    history=st.lists(
        st.tuples(
            st.booleans(),  # rate limited
            st.integers(1, 60),  # in flight at grant
            st.integers(0, 8),  # how far above the current limit the lease was granted
            st.floats(0.0, 3.0),  # seconds since the previous event
        ),
        max_size=120,
    ),
    latency=st.floats(0.01, 20.0),
)
def test_the_limit_state_recovers_to_the_effective_max_after_any_429_history(
    top: int,
    mode: str,
    history: list[tuple[bool, int, int, float]],
    latency: float,
) -> None:
    """Whatever the 429s before, a resource that then only succeeds at its limit reaches
    `effective_max` within bounded successes and time (the default rule and its state)."""
    clock = ManualClock()
    limits = AdaptiveRequestLimitState(
        SettlingAimdLimitRule(top, top),
        initial_limit=top,
        effective_max=top,
        cooldown_seconds=2.0,
        startup_ramp_seconds=0.0,
        now=clock.monotonic(),
        cooldown_mode=mode,
    )
    for limited, in_flight, above, gap in history:
        clock.advance(gap)
        now, current = clock.monotonic(), limits.current_limit
        if limited:
            limits.on_rate_limited(
                now, current + above, 1.0, granted_in_cooldown=above == 0, lease_in_flight=in_flight
            )
        else:
            limits.on_success(now, 0.2, min(in_flight, current), current)
    clock.advance(2.0)  # past any cooldown
    needed = 25
    hold = min(MAX_PROBE_HOLD_FACTOR * needed, math.ceil(MAX_PROBE_AFTER_SECONDS / latency) + 1)
    for _ in range((top + 1) * needed + hold):
        if limits.current_limit == top:
            break
        clock.advance(latency)
        current = limits.current_limit
        limits.on_success(clock.monotonic(), latency, current - 1, current)
    assert limits.current_limit == top
    assert not limits.in_cooldown(clock.monotonic())


# -- slow start ---------------------------------------------------------------------------


def saturated_round(rule: SettlingAimdLimitRule) -> None:
    """One round trip at the limit: every request in flight succeeds, each freed slot (and
    each new one) is refilled at once, so every success is saturated."""
    for _ in range(rule.limit):
        rule.update(ok(in_flight=rule.limit - 1))


def test_slow_start_ends_at_the_first_429_one_below_the_refused_concurrency() -> None:
    rule = SettlingAimdLimitRule(32, 64, slow_start_successes=4)
    saturated_round(rule)
    assert rule.in_slow_start and rule.limit == 40  # 32 successes, one step per 4
    assert rule.update(refused(33)) == 32  # not the binding cut floor(40 * 0.75) = 30
    assert rule.ceiling == 33 and not rule.in_slow_start
    saturated_round(rule)
    assert rule.limit == 32  # settling now: it holds one below the ceiling


def test_slow_start_off_or_at_the_max_is_plain_settling_aimd() -> None:
    assert not SettlingAimdLimitRule(32, 64).in_slow_start
    assert not SettlingAimdLimitRule(64, 64, slow_start_successes=4).in_slow_start


@settings(max_examples=200, deadline=None)
@given(
    initial=st.integers(1, 64),
    top=st.integers(1, 128),
    per_step=st.integers(1, 8),
    samples=st.lists(st.tuples(st.booleans(), st.integers(0, 130)), max_size=300),
)
def test_slow_start_stays_bounded_grows_only_on_successes_and_never_restarts(
    initial: int, top: int, per_step: int, samples: list[tuple[bool, int]]
) -> None:
    rule = SettlingAimdLimitRule(initial, top, slow_start_successes=per_step)
    ended = not rule.in_slow_start
    for now, (limited, in_flight) in enumerate(samples):
        before = rule.limit
        sample = refused(in_flight + 1, now) if limited else ok(in_flight, now)
        after = rule.update(sample)
        assert 1 <= after <= top
        if limited:
            assert after <= before  # a 429 never opens the limit
            assert not rule.in_slow_start
        elif not ended:
            assert after >= before  # a success in the ramp never closes it
            if in_flight + 1 < before:
                assert after == before  # only saturated successes are evidence
        if ended:
            assert not rule.in_slow_start
        ended = not rule.in_slow_start


@settings(max_examples=100, deadline=None)
@given(initial=st.integers(1, 64), top=st.integers(1, 1024), per_step=st.integers(1, 8))
def test_slow_start_reaches_the_max_without_a_429_in_logarithmic_round_trips(
    initial: int, top: int, per_step: int
) -> None:
    rule = SettlingAimdLimitRule(initial, top, slow_start_successes=per_step)
    rounds = 0
    while rule.limit < top:
        saturated_round(rule)
        rounds += 1
        assert rounds <= 1000
    # Below `per_step` a round adds at least one step every `per_step` rounds; from there each
    # round multiplies the limit by at least 1 + 1 / (2 * per_step).
    bound = per_step * per_step + math.ceil(math.log(top) / math.log(1 + 1 / (2 * per_step)))
    assert rounds <= bound
    if per_step == 1:  # the classic slow start doubles per round trip
        assert rounds <= max(0, math.ceil(math.log2(top / initial)))
    assert not rule.in_slow_start
