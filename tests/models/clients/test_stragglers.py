"""Straggler cancellation and request timeouts in `ModelRequestExecutor`, on a ManualClock:
an attempt running far beyond its model's p99 is cancelled and retried (counted, with an
event); without a p99 (or with the feature off) only the request timeout ends it."""

from __future__ import annotations

import asyncio

from tests.models.clients.clients_support import call, drive, setup

from rowloom.config.run import StragglerConfig


async def test_a_hung_attempt_is_cancelled_as_a_straggler_and_retried() -> None:
    policy = StragglerConfig(p99_multiple=4, min_seconds=3, min_samples=10)
    clock, executor, _, sink = setup({11}, policy)
    for _ in range(10):  # ten answers of 0.5 s: p99 0.5 s
        await drive(clock, call(executor))
    hung = call(executor)
    await drive(clock, hung, step=0.1)  # hangs, is cancelled at 3 s, the retry answers
    assert hung.result().text == "answer 12"
    assert executor.stragglers_cancelled == 1
    assert executor.stats.by_outcome == {"success": 11, "straggler_cancelled": 1}
    cancelled = [e for e in sink.events if e.event_kind == "model_request_straggler_cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0].diagnostics == {"limit_seconds": 3.0, "p99_seconds": 0.5}
    assert executor.attempts_in_flight == 0 and executor.oldest_attempt_age() is None


async def test_in_flight_attempts_and_the_oldest_age_are_visible() -> None:
    clock, executor, client, _ = setup({1}, StragglerConfig())
    hung = call(executor)
    await client.progress.wait_until(lambda: client.attempts == 1, what="the attempt sent")
    clock.advance(7.0)
    assert executor.attempts_in_flight == 1 and executor.oldest_attempt_age() == 7.0
    hung.cancel()
    await asyncio.gather(hung, return_exceptions=True)
    assert executor.attempts_in_flight == 0


async def test_without_enough_samples_or_when_off_only_the_timeout_ends_an_attempt() -> None:
    for policy, warmup in (
        (StragglerConfig(min_samples=50), 10),
        (StragglerConfig(enabled=False), 30),
    ):
        clock, executor, _, _ = setup({warmup + 1}, policy, timeout=20)
        for _ in range(warmup):
            await drive(clock, call(executor))
        took = await drive(clock, call(executor), step=0.5)
        assert executor.stragglers_cancelled == 0
        assert executor.stats.by_outcome is not None
        assert executor.stats.by_outcome["local_timeout"] == 1
        assert 25.0 <= took < 27.0  # the 20 s timeout plus the 5 s local grace, then a retry


async def test_a_model_without_a_timeout_gets_its_generation_kinds_default() -> None:
    clock, executor, client, _ = setup(set(), StragglerConfig())
    await drive(clock, call(executor))
    assert client.timeouts == [120.0]


async def test_an_attempt_sent_before_the_p99_was_known_gets_the_straggler_deadline() -> None:
    policy = StragglerConfig(p99_multiple=4, min_seconds=3, min_samples=5)
    clock, executor, client, _ = setup({1}, policy)
    hung = call(executor)  # first attempt: no p99 yet, so only the 120 s timeout bounds it
    await client.progress.wait_until(lambda: client.attempts == 1, what="the attempt sent")
    for _ in range(5):  # five answers make the p99 known (0.5 s): the hung one now has 3 s
        await drive(clock, call(executor))
    took = await drive(clock, hung, step=0.1)
    assert executor.stragglers_cancelled == 1
    assert hung.result().text == "answer 7"
    assert took < 2.0  # it was already past 3 s when the p99 appeared: cancelled at once
