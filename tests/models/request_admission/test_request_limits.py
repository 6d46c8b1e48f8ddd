"""The pure AIMD rule and `AdaptiveRequestLimitState`, driven by explicit times (no asyncio)."""

from __future__ import annotations

import pytest

from rowloom.models.request_admission import (
    AdaptiveRequestLimitState,
    AimdLimitRule,
    RequestLimitSample,
)

T0 = 100.0


def state(
    initial: int = 8,
    top: int = 8,
    *,
    factor: float = 0.75,
    step: int = 1,
    successes: int = 3,
    cooldown: float = 2.0,
    ramp: float = 0.0,
) -> AdaptiveRequestLimitState:
    rule = AimdLimitRule(
        initial, top, decrease_factor=factor, increase_step=step, successes_until_increase=successes
    )
    return AdaptiveRequestLimitState(
        rule,
        initial_limit=initial,
        effective_max=top,
        cooldown_seconds=cooldown,
        startup_ramp_seconds=ramp,
        now=T0,
    )


def kinds(transitions: tuple[object, ...]) -> list[str]:
    return [t.event_kind for t in transitions]  # type: ignore[attr-defined]


# -- the pure rule ----------------------------------------------------------------------------


def test_aimd_rule_decreases_multiplicatively_and_never_below_one() -> None:
    rule = AimdLimitRule(10, 10, decrease_factor=0.75)
    seen = [rule.update(RequestLimitSample(0.0, rate_limited=True)) for _ in range(8)]
    assert seen == [7, 5, 3, 2, 1, 1, 1, 1]


def test_aimd_rule_increases_additively_after_n_successes_up_to_max() -> None:
    rule = AimdLimitRule(2, 4, increase_step=1, successes_until_increase=3)
    limits = [rule.update(RequestLimitSample(0.0, rate_limited=False)) for _ in range(12)]
    assert limits == [2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4]


def test_aimd_rule_restarts_success_count_on_drop() -> None:
    rule = AimdLimitRule(4, 8, successes_until_increase=2)
    rule.update(RequestLimitSample(0.0, rate_limited=False))
    rule.update(RequestLimitSample(0.0, rate_limited=True))
    assert rule.limit == 3 and rule.successes == 0
    rule.update(RequestLimitSample(0.0, rate_limited=False))
    assert rule.limit == 3
    assert rule.update(RequestLimitSample(0.0, rate_limited=False)) == 4


def test_aimd_rule_reset_clamps() -> None:
    rule = AimdLimitRule(5, 10)
    assert rule.reset(50, 6) == 6 and rule.max_limit == 6
    assert rule.reset(0, 6) == 1


# -- adaptive state -----------------------------------------------------------------------------


def test_rate_limit_cuts_once_and_cools_down_for_the_configured_default() -> None:
    s = state(initial=8, cooldown=2.0)
    effect = s.on_rate_limited(T0, lease_limit=8, retry_after_seconds=None)
    assert effect.new_cascade
    assert kinds(effect.transitions) == ["request_limit_decreased"]
    assert s.current_limit == 6  # floor(8 * 0.75)
    assert s.rate_limit_ceiling == 8
    assert s.in_cooldown(T0 + 1.99) and not s.in_cooldown(T0 + 2.0)
    assert s.blocked_until(T0) == T0 + 2.0


def test_retry_after_sets_the_cooldown() -> None:
    s = state(cooldown=2.0)
    s.on_rate_limited(T0, lease_limit=8, retry_after_seconds=7.5)
    assert s.blocked_until(T0) == T0 + 7.5
    assert s.cooldown_remaining(T0 + 5.0) == pytest.approx(2.5)


def test_cascade_is_dampened_for_leases_granted_above_the_current_limit() -> None:
    s = state(initial=8)
    s.on_rate_limited(T0, lease_limit=8, retry_after_seconds=None)
    assert s.current_limit == 6
    # More 429s from leases granted at limit 8 are the same cascade: no further cut.
    for _ in range(3):
        effect = s.on_rate_limited(T0 + 0.1, lease_limit=8, retry_after_seconds=None)
        assert not effect.new_cascade and effect.transitions == ()
    assert s.current_limit == 6
    assert s.consecutive_rate_limits == 4 and s.rate_limited_total == 4
    # A 429 from a lease granted at the reduced limit starts a new cascade.
    effect = s.on_rate_limited(T0 + 0.2, lease_limit=6, retry_after_seconds=None)
    assert effect.new_cascade and s.current_limit == 4


def test_dampened_rate_limit_still_extends_cooldown_to_the_later_retry_after() -> None:
    s = state()
    s.on_rate_limited(T0, lease_limit=8, retry_after_seconds=1.0)
    s.on_rate_limited(T0, lease_limit=8, retry_after_seconds=5.0)
    assert s.blocked_until(T0) == T0 + 5.0
    s.on_rate_limited(T0, lease_limit=8, retry_after_seconds=0.5)
    assert s.blocked_until(T0) == T0 + 5.0  # never shortened


def test_successes_during_cooldown_do_not_count_toward_increase() -> None:
    s = state(initial=4, top=8, successes=2)
    s.on_rate_limited(T0, lease_limit=4, retry_after_seconds=None)  # 4 -> 3, cool until T0+2
    for _ in range(10):
        assert s.on_success(T0 + 1.0, 0.1, 0) == ()
    assert s.current_limit == 3
    s.on_success(T0 + 2.0, 0.1, 0)
    assert s.current_limit == 3
    transitions = s.on_success(T0 + 2.1, 0.1, 0)
    assert s.current_limit == 4 and "request_limit_increased" in kinds(transitions)


def test_increase_stops_at_effective_max() -> None:
    s = state(initial=2, top=3, successes=1)
    for _ in range(5):
        s.on_success(T0, 0.1, 0)
    assert s.current_limit == 3 == s.effective_max


def test_soft_ceiling_and_full_recovery_transitions() -> None:
    s = state(initial=4, top=6, successes=1, cooldown=1.0)
    s.on_rate_limited(T0, lease_limit=4, retry_after_seconds=None)  # 4 -> 3, ceiling 4
    assert s.current_limit == 3
    seen: list[str] = []
    now = T0 + 1.0
    for _ in range(3):
        seen += kinds(s.on_success(now, 0.1, 0))
    # 3 -> 4 (not above the ceiling), 4 -> 5 (above it: soft recovered), 5 -> 6 (fully).
    assert seen == [
        "request_limit_increased",
        "request_limit_increased",
        "request_soft_ceiling_recovered",
        "request_limit_increased",
        "request_fully_recovered",
    ]
    assert s.rate_limit_ceiling is None
    assert kinds(s.on_success(now, 0.1, 0)) == []  # recovery is reported once


def test_full_recovery_waits_for_cooldown_to_end() -> None:
    s = state(initial=1, top=1, cooldown=3.0)
    effect = s.on_rate_limited(T0, lease_limit=1, retry_after_seconds=None)
    assert effect.new_cascade and effect.transitions == ()  # already at 1: no visible cut
    assert s.refresh(T0 + 2.0) == ()
    assert s.next_change_at(T0 + 2.0) == T0 + 3.0
    assert kinds(s.refresh(T0 + 3.0)) == ["request_fully_recovered"]
    assert s.next_change_at(T0 + 3.0) is None


def test_startup_ramp_rises_linearly_from_one_to_initial() -> None:
    s = state(initial=5, top=8, ramp=8.0)
    assert s.in_ramp and s.current_limit == 1
    assert s.next_change_at(T0) == T0 + 2.0
    assert s.limit_at(T0 + 3.9) == 2
    assert kinds(s.refresh(T0 + 4.0)) == ["request_limit_increased"]
    assert s.current_limit == 3
    assert s.next_change_at(T0 + 4.0) == T0 + 6.0
    s.refresh(T0 + 8.0)
    assert s.current_limit == 5 and not s.in_ramp
    assert s.next_change_at(T0 + 8.0) is None


def test_successes_do_not_move_the_limit_during_the_ramp() -> None:
    s = state(initial=5, top=8, successes=1, ramp=8.0)
    for _ in range(5):
        s.on_success(T0 + 1.0, 0.1, 0)
    assert s.current_limit == 1
    s.refresh(T0 + 8.0)
    assert s.current_limit == 5
    s.on_success(T0 + 8.0, 0.1, 0)
    assert s.current_limit == 6


def test_rate_limit_aborts_the_ramp_and_cuts_from_the_ramp_value() -> None:
    s = state(initial=9, top=9, ramp=8.0)
    s.refresh(T0 + 4.0)
    assert s.current_limit == 5
    effect = s.on_rate_limited(T0 + 4.0, lease_limit=5, retry_after_seconds=None)
    assert effect.ramp_aborted and effect.new_cascade
    assert effect.transitions[-1].cause == "rate_limited_during_ramp"
    assert s.current_limit == 3 and not s.in_ramp
    s.refresh(T0 + 100.0)
    assert s.current_limit == 3  # the ramp does not resume


def test_effective_max_change_lowers_the_limit_and_reports() -> None:
    s = state(initial=8, top=8)
    transitions = s.set_effective_max(5, T0)
    assert kinds(transitions) == ["request_effective_cap_changed", "request_limit_decreased"]
    assert s.current_limit == 5 == s.effective_max
    assert s.set_effective_max(5, T0) == ()
    assert kinds(s.set_effective_max(9, T0)) == ["request_effective_cap_changed"]
    assert s.current_limit == 5 and s.effective_max == 9


def test_initial_limit_is_clamped_to_effective_max() -> None:
    rule = AimdLimitRule(50, 4)
    s = AdaptiveRequestLimitState(
        rule, initial_limit=50, effective_max=4, cooldown_seconds=1, startup_ramp_seconds=0, now=0
    )
    assert s.current_limit == 4
