"""`RateLimitPacer`: stopping before a provider's request budget runs out (pure, explicit times)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rowloom.models.request_admission import RateLimitPacer
from rowloom.provider_wire import RateLimitHeaders

T0 = 100.0


def budget(remaining: int, reset: float | None = 10.0, limit: int | None = 600) -> RateLimitHeaders:
    return RateLimitHeaders(
        limit_requests=limit, remaining_requests=remaining, reset_requests_seconds=reset
    )


def test_no_headers_or_budget_left_never_paces() -> None:
    pacer = RateLimitPacer()
    assert pacer.not_before(T0) is None
    pacer.observe(T0, budget(3), granted_since=0)
    pacer.on_admit(T0)
    pacer.on_admit(T0)
    assert pacer.budget_left == 1
    assert pacer.not_before(T0) is None


def test_leases_granted_after_the_reporting_one_count_against_the_budget() -> None:
    pacer = RateLimitPacer()
    pacer.observe(T0, budget(20, reset=4.0), granted_since=20)
    assert pacer.budget_left == 0
    assert pacer.not_before(T0) == T0 + 4.0


def test_an_exhausted_budget_waits_for_the_reset_then_admits_at_the_sustainable_rate() -> None:
    pacer = RateLimitPacer()
    pacer.observe(T0, budget(1, reset=4.0, limit=600), granted_since=0)
    pacer.on_admit(T0)  # the last unit
    assert pacer.not_before(T0 + 1.0) == T0 + 4.0
    assert pacer.not_before(T0 + 4.0) is None  # renewed at the reset: one goes
    pacer.on_admit(T0 + 4.0)
    assert pacer.not_before(T0 + 4.0) == T0 + 4.1  # then 600/min until a fresh answer
    assert pacer.not_before(T0 + 4.1) is None


def test_without_a_stated_limit_the_reset_ends_pacing() -> None:
    pacer = RateLimitPacer()
    pacer.observe(T0, budget(0, reset=2.0, limit=None), granted_since=0)
    assert pacer.not_before(T0) == T0 + 2.0
    pacer.on_admit(T0 + 2.0)
    pacer.on_admit(T0 + 2.0)
    assert pacer.not_before(T0 + 2.0) is None


def test_a_fresh_answer_with_budget_left_ends_pacing() -> None:
    pacer = RateLimitPacer()
    pacer.observe(T0, budget(0, reset=30.0), granted_since=0)
    assert pacer.not_before(T0) is not None
    pacer.observe(T0 + 1.0, budget(300), granted_since=0)
    assert pacer.not_before(T0 + 1.0) is None


observation = st.tuples(
    st.just("observe"),
    st.integers(0, 50),
    st.one_of(st.none(), st.floats(0, 120, allow_nan=False)),
    st.one_of(st.none(), st.integers(1, 10_000)),
    st.integers(0, 60),
)
admission = st.tuples(st.just("admit"))
advance = st.tuples(st.just("advance"), st.floats(0, 30, allow_nan=False))


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(st.one_of(observation, admission, advance), max_size=80))
def test_pacing_never_deadlocks(ops: list[tuple[object, ...]]) -> None:
    """`not_before` is None or a finite instant after now, and reaching it opens admission."""
    pacer = RateLimitPacer()
    now = T0
    for op in ops:
        if op[0] == "observe":
            _, remaining, reset, limit, since = op
            pacer.observe(now, budget(remaining, reset, limit), since)  # type: ignore[arg-type]
        elif op[0] == "admit":
            pacer.on_admit(now)
        else:
            now += op[1]  # type: ignore[operator]
        at = pacer.not_before(now)
        if at is not None:
            assert now < at < float("inf")
            assert pacer.not_before(at) is None
