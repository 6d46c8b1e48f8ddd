"""The controller's overload control: cooldown modes, header pacing, limit-rule choice.

Every timed behaviour runs on a ManualClock; tests wait for the state they need (ra_support).
"""

from __future__ import annotations

import pytest
from ra_support import (
    CHAT,
    EMBED,
    OK,
    OTHER_CHAT,
    Harness,
    MakeHarness,
    denial_of,
    item,
    lease_of,
)

from rowloom.bench.baselines import admission_adjustment, no_header_pacing, v1
from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.models.request_admission import (
    AdaptiveRequestAdmissionController,
    RequestAdmissionConfig,
    RequestAdmissionDenied,
    RequestAdmissionLease,
    RequestDenialReason,
    RequestDomain,
    RequestReleaseOutcome,
    RequestResourceKey,
)
from rowloom.models.resources import ModelResourceCatalog
from rowloom.provider_wire import RateLimitHeaders

# -- cooldown modes ------------------------------------------------------------------------------


async def test_by_default_a_429_cuts_at_once_and_admissions_continue_up_to_the_cut(
    make: MakeHarness,
) -> None:
    h = make(cap=8, initial={CHAT: 8})
    c = h.controller
    held = [lease_of(c.try_acquire(item())) for _ in range(8)]
    c.release(held.pop(), RequestReleaseOutcome.rate_limited(1.0))  # 8 -> 6, 7 in flight
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.in_cooldown and not snap.admission_blocked
    assert snap.current_limit == 6
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.NO_CAPACITY
    c.release(held.pop(), OK)  # in-flight work goes on during the cooldown
    c.release(held.pop(), OK)
    held.append(lease_of(c.try_acquire(item())))  # 6 in flight again, inside the cooldown
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.in_cooldown and snap.in_flight == 6
    assert c.runtime_snapshot().blocked_until[CHAT] is None
    for lease in held:
        c.release(lease, OK)
    assert c.pressure.snapshot(CHAT).current_limit == 6  # type: ignore[union-attr]


async def test_a_429_from_a_lease_granted_during_the_cooldown_blocks_every_admission(
    make: MakeHarness,
) -> None:
    h = make(cap=8, initial={CHAT: 4})
    c = h.controller
    old = [lease_of(c.try_acquire(item())) for _ in range(4)]
    c.release(old.pop(), RequestReleaseOutcome.rate_limited(2.0))  # 4 -> 3, soft cooldown
    c.release(old.pop(), OK)
    fresh = lease_of(c.try_acquire(item()))  # granted inside the cooldown
    c.release(fresh, RequestReleaseOutcome.rate_limited(1.0))  # the cut did not help
    denied = denial_of(c.try_acquire(item()))
    assert denied.reason is RequestDenialReason.COOLDOWN
    assert denied.available_after_monotonic == pytest.approx(h.clock.monotonic() + 2.0)
    waiter = await h.start_waiter(item())
    c.release(old.pop(), OK)  # in-flight work still completes while admission is blocked
    assert c.waiters_total() == 1 and not waiter.done()
    h.clock.advance(2.0)  # the block ends with the cooldown; no release needed
    c.release(await h.granted(waiter), OK)
    for lease in old:
        c.release(lease, OK)
    assert c.in_flight_total() == 0 and c.waiters_total() == 0
    assert h.clock.pending_timers == 0


async def test_a_repeat_refusal_at_a_higher_concurrency_cuts_again_without_blocking(
    make: MakeHarness,
) -> None:
    h = make(cap=8, initial={CHAT: 8}, default_limit_rule="aimd_v1")
    c = h.controller
    held = [lease_of(c.try_acquire(item())) for _ in range(8)]
    c.release(held.pop(0), RequestReleaseOutcome.rate_limited(1.0))  # refused at 1 in flight
    c.release(held.pop(), OK)
    c.release(held.pop(), OK)
    fresh = lease_of(c.try_acquire(item()))  # granted in the cooldown with 6 in flight
    c.release(fresh, RequestReleaseOutcome.rate_limited(1.0))
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and not snap.admission_blocked and snap.current_limit == 4
    for lease in held:
        c.release(lease, OK)


async def test_429s_from_leases_granted_before_the_cooldown_never_block(
    make: MakeHarness,
) -> None:
    h = make(cap=8, initial={CHAT: 8})
    c = h.controller
    held = [lease_of(c.try_acquire(item())) for _ in range(8)]
    for lease in reversed(held[3:]):  # a burst of 429s from one cascade
        c.release(lease, RequestReleaseOutcome.rate_limited(1.0))
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and not snap.admission_blocked and snap.current_limit == 6
    assert [e.diagnostics["admission_blocked"] for e in h.of_kind("request_rate_limited")] == [
        False
    ] * 5
    for lease in held[:3]:
        c.release(lease, OK)


async def test_an_overshoot_from_twice_the_capacity_lands_on_the_capacity_at_once(
    make: MakeHarness,
) -> None:
    h = make(cap=16, initial={CHAT: 16})  # configured at 2C against a capacity C = 8
    c = h.controller
    accepted = [lease_of(c.try_acquire(item())) for _ in range(8)]
    refused = lease_of(c.try_acquire(item()))  # the ninth in flight is refused at once
    c.release(refused, RequestReleaseOutcome.rate_limited(1.0))
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.current_limit == 8 and snap.rate_limit_ceiling == 16
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.NO_CAPACITY
    for lease in accepted:
        c.release(lease, OK)


async def test_block_all_is_the_v1_cooldown(make: MakeHarness) -> None:
    h = make(cap=8, initial={CHAT: 8}, cooldown_mode="block_all")
    c = h.controller
    held = [lease_of(c.try_acquire(item())) for _ in range(2)]
    c.release(held.pop(), RequestReleaseOutcome.rate_limited(1.0))
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.COOLDOWN
    c.release(held.pop(), OK)
    h.clock.advance(1.0)
    c.release(lease_of(c.try_acquire(item())), OK)


async def test_successes_inside_a_cooldown_do_not_raise_the_limit(make: MakeHarness) -> None:
    h = make(cap=8, initial={CHAT: 4}, successes_until_increase=1)
    c = h.controller
    c.release(lease_of(c.try_acquire(item())), RequestReleaseOutcome.rate_limited(5.0))
    cut = c.pressure.snapshot(CHAT).current_limit  # type: ignore[union-attr]
    assert cut < 4
    for _ in range(6):
        c.release(lease_of(c.try_acquire(item())), OK)
    assert c.pressure.snapshot(CHAT).current_limit == cut  # type: ignore[union-attr]
    h.clock.advance(5.0)
    for _ in range(8):  # after the cooldown they count again (here: toward the probe)
        c.release(lease_of(c.try_acquire(item())), OK)
    assert c.pressure.snapshot(CHAT).current_limit > cut  # type: ignore[union-attr]


def limit_of(h: Harness) -> int:
    snap = h.controller.pressure.snapshot(CHAT)
    assert snap is not None
    return snap.current_limit


async def test_a_burst_of_refusals_at_one_in_flight_costs_one_cut_and_a_block(
    make: MakeHarness,
) -> None:
    # Other models saturate the shared provider: each request of this one is refused at once.
    h = make(cap=32, initial={CHAT: 32})
    c = h.controller
    c.release(lease_of(c.try_acquire(item())), RequestReleaseOutcome.rate_limited(1.0))
    assert limit_of(h) == 24  # refused far below the limit: V1's cut, not a cut to 1
    c.release(lease_of(c.try_acquire(item())), RequestReleaseOutcome.rate_limited(1.0))
    assert limit_of(h) == 24  # the same refusal again: the cut did not help, so no second cut
    denied = denial_of(c.try_acquire(item()))
    assert denied.reason is RequestDenialReason.COOLDOWN  # ... but a block until Retry-After
    h.clock.advance(1.0)
    c.release(lease_of(c.try_acquire(item())), OK)
    assert h.clock.pending_timers == 0


def run_saturated(h: Harness, successes: int, latency: float) -> None:
    """Keep the resource at its limit; each step one request succeeds after `latency / limit`."""
    c = h.controller
    held: list[RequestAdmissionLease] = []
    for _ in range(successes):
        while not isinstance(decision := c.try_acquire(item()), RequestAdmissionDenied):
            held.append(decision)
        h.clock.advance(latency / max(1, len(held)))
        c.release(held.pop(0), OK)
    for lease in held:
        c.release(lease, OK)


async def test_a_resource_refused_at_low_concurrency_climbs_back_to_its_max(
    make: MakeHarness,
) -> None:
    """The qa_judge regression: refusals at 1-2 in flight pinned the embedder at limit 1 for
    the whole run. Whatever such a history, successes alone bring the limit back to the max
    within a bounded number of successes and time."""
    h = make(cap=32, initial={CHAT: 32})
    c = h.controller
    for _ in range(4):  # one refusal at one in flight per Retry-After, four times
        c.release(lease_of(c.try_acquire(item())), RequestReleaseOutcome.rate_limited(1.0))
        h.clock.advance(1.0)
    low = limit_of(h)
    assert low >= 9  # 32 -> 24 -> 18 -> 13 -> 9, as V1; the old rule fell to 1
    two = [lease_of(c.try_acquire(item())) for _ in range(2)]  # refused at 2 in flight
    c.release(two.pop(), RequestReleaseOutcome.rate_limited(1.0))
    c.release(two.pop(), OK)
    h.clock.advance(1.0)
    held = [lease_of(c.try_acquire(item())) for _ in range(limit_of(h))]
    c.release(held.pop(2), RequestReleaseOutcome.rate_limited(1.0))  # refused at 3 in flight
    for lease in held:
        c.release(lease, OK)
    h.clock.advance(1.0)
    assert limit_of(h) == 2  # a low ceiling (3) learnt from an overshoot: hold at 2
    start = h.clock.monotonic()
    successes = 0
    while limit_of(h) < 32:
        run_saturated(h, 25, latency=0.2)
        successes += 25
        assert successes <= 33 * 25, f"pinned at {limit_of(h)}"
    assert h.clock.monotonic() - start < 30.0
    assert c.in_flight_total() == 0


# -- header pacing -------------------------------------------------------------------------------


def spent(reset: float) -> RequestReleaseOutcome:
    return RequestReleaseOutcome.success(
        rate_limit=RateLimitHeaders(
            limit_requests=600, remaining_requests=0, reset_requests_seconds=reset
        )
    )


async def test_an_exhausted_header_budget_paces_new_admissions_until_the_reset(
    make: MakeHarness,
) -> None:
    h = make(cap=8)
    c = h.controller
    c.release(lease_of(c.try_acquire(item())), spent(reset=3.0))
    denied = denial_of(c.try_acquire(item()))
    assert denied.reason is RequestDenialReason.PACED
    assert denied.available_after_monotonic == pytest.approx(h.clock.monotonic() + 3.0)
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.available == 0 and snap.paced_until_monotonic is not None
    first, second = await h.start_waiter(item()), await h.start_waiter(item())
    h.clock.advance(3.0)  # the reset: one admission, then the provider's rate (0.1 s)
    assert c.waiters_total() == 1
    await h.granted(first)
    assert not second.done()
    h.clock.advance(0.1)
    await h.granted(second)
    c.release(first.result(), OK)  # an answer without headers leaves the estimate alone
    c.release(second.result(), RequestReleaseOutcome.success(rate_limit=RateLimitHeaders(600, 50)))
    c.release(lease_of(c.try_acquire(item())), OK)  # budget again: no pacing
    assert c.in_flight_total() == 0 and h.clock.pending_timers == 0


async def test_headers_count_the_leases_granted_after_the_reporting_one(
    make: MakeHarness,
) -> None:
    h = make(cap=8)
    c = h.controller
    reporting = lease_of(c.try_acquire(item()))
    later = [lease_of(c.try_acquire(item())) for _ in range(2)]
    budget = RateLimitHeaders(600, remaining_requests=2, reset_requests_seconds=5.0)
    c.release(reporting, RequestReleaseOutcome.success(rate_limit=budget))
    assert denial_of(c.try_acquire(item())).reason is RequestDenialReason.PACED
    for lease in later:
        c.release(lease, OK)


async def test_pacing_off_ignores_the_headers(make: MakeHarness) -> None:
    h = make(cap=8, header_pacing=False)
    c = h.controller
    c.release(lease_of(c.try_acquire(item())), spent(reset=3.0))
    c.release(lease_of(c.try_acquire(item())), OK)


# -- limit rules per resource --------------------------------------------------------------------


def catalog(*models: ModelConfig) -> ModelResourceCatalog:
    return ModelResourceCatalog(models, [ModelProvider(name="p", provider_type="simulated")])


def test_from_catalog_takes_each_models_limit_rule_and_latency_wins_a_disagreement() -> None:
    config = RequestAdmissionConfig.from_catalog(
        catalog(
            ModelConfig(alias="fast", model="a", provider="p", limit_rule="aimd"),
            ModelConfig(alias="same", model="a", provider="p", limit_rule="latency"),
            ModelConfig(alias="plain", model="b", provider="p"),
            ModelConfig(
                alias="vec",
                model="b",
                provider="p",
                generation_kind="embedding",
                limit_rule="latency",
            ),
        )
    )
    assert config.limit_rule(RequestResourceKey.of("p", "a", "chat")) == "latency"
    assert config.limit_rule(RequestResourceKey.of("p", "b", "chat")) == "aimd"
    assert config.limit_rule(RequestResourceKey.of("p", "b", "embedding")) == "latency"
    assert (config.cooldown_mode, config.header_pacing) == ("reduced_limit", True)
    controller = AdaptiveRequestAdmissionController(config)
    assert {k.as_key_str(): v for k, v in controller.limit_rules().items()} == {
        "p/a/chat": "latency",
        "p/b/chat": "aimd",
        "p/b/embedding": "latency",
    }
    assert config.as_json()["limit_rules"]["p/a/chat"] == "latency"


def test_the_v1_baseline_restores_the_reference_behaviour() -> None:
    config = v1(
        RequestAdmissionConfig.from_catalog(
            catalog(
                ModelConfig(alias="x", model="a", provider="p"),
                ModelConfig(alias="q", model="c", provider="p", limit_rule="latency"),
            )
        )
    )
    assert config.limit_rule(RequestResourceKey.of("p", "a", "chat")) == "aimd_v1"
    assert config.limit_rule(RequestResourceKey.of("p", "c", "chat")) == "latency"
    assert (config.cooldown_mode, config.header_pacing) == ("block_all", False)
    assert not config.provider_limits
    config = no_header_pacing(
        RequestAdmissionConfig.from_catalog(
            catalog(ModelConfig(alias="x", model="a", provider="p"))
        )
    )
    assert (config.cooldown_mode, config.header_pacing) == ("reduced_limit", False)
    assert admission_adjustment("default") is None
    with pytest.raises(ValueError, match="unknown request admission profile"):
        admission_adjustment("fastest")  # type: ignore[arg-type]


def test_an_unknown_rule_name_is_refused(make: MakeHarness) -> None:
    with pytest.raises(ValueError, match="unknown limit rule"):
        make(limit_rules={CHAT: "vegas"})


async def test_each_resource_runs_its_own_rule_and_snapshots_name_it(make: MakeHarness) -> None:
    h = make(limit_rules={CHAT: "latency", EMBED: "aimd_v1"})
    c = h.controller
    assert dict(c.limit_rules()) == {CHAT: "latency", EMBED: "aimd_v1", OTHER_CHAT: "aimd"}
    snap = c.pressure.snapshot(CHAT)
    assert snap is not None and snap.limit_rule == "latency"
    assert snap.as_json()["limit_rule"] == "latency"
    image = RequestResourceKey(CHAT.provider_model, RequestDomain.IMAGE)
    c.release(lease_of(c.try_acquire(item(image))), OK)  # registered on first use
    assert c.limit_rules()[image] == "aimd"
    data = c.capacity_view().as_json()["runtime_snapshot"]["request_domain_limit_rules"]
    assert data["prov/model-a/chat"] == "latency"
