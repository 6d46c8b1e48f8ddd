"""Request resource vocabulary, the resolver, the config and Retry-After parsing."""

from __future__ import annotations

import pytest

from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.config.run import RequestAdmissionTuningConfig
from rowloom.models.request_admission import (
    RequestAdmissionConfig,
    RequestAdmissionItem,
    RequestDomain,
    RequestGroupSpec,
    RequestReleaseOutcome,
    RequestReleaseOutcomeKind,
    RequestResourceKey,
    RequestResourceResolver,
)
from rowloom.models.resources import ModelResourceCatalog, ProviderModelKey, UnknownModelAliasError


def catalog() -> ModelResourceCatalog:
    providers = [
        ModelProvider(name="p1", endpoint="http://127.0.0.1:1/v1"),
        ModelProvider(name="p2", endpoint="http://127.0.0.1:2/v1"),
    ]
    models = [
        ModelConfig(alias="fast", model="m-1", provider="p1", max_parallel_requests=8),
        ModelConfig(alias="fast-again", model="m-1", provider="p1", max_parallel_requests=3),
        ModelConfig(alias="embedder", model="e-1", provider="p2", generation_kind="embedding"),
    ]
    return ModelResourceCatalog(models, providers)


def test_resource_key_renders_provider_model_domain() -> None:
    key = RequestResourceKey.of("p1", "m-1", "chat")
    assert key.as_key_str() == "p1/m-1/chat"
    assert key.provider_model == ProviderModelKey("p1", "m-1")
    assert (key.provider_name, key.model_id, key.domain) == ("p1", "m-1", RequestDomain.CHAT)
    assert key.as_json() == {"provider_name": "p1", "model_id": "m-1", "domain": "chat"}
    assert {d.value for d in RequestDomain} == {"chat", "embedding", "image", "healthcheck"}


def test_group_weight_and_item_timeout_are_validated() -> None:
    key = RequestResourceKey.of("p1", "m-1", "chat")
    with pytest.raises(ValueError):
        RequestGroupSpec(key, 0)
    with pytest.raises(ValueError):
        RequestAdmissionItem.for_resource(key, timeout=-1.0)
    item = RequestAdmissionItem.for_resource(key, weight=3)
    assert item.group == RequestGroupSpec(key, 3)


def test_resolver_canonicalizes_aliases_to_one_endpoint() -> None:
    resolver = RequestResourceResolver(catalog())
    assert resolver.resolve("fast") == resolver.resolve("fast-again")
    assert resolver.resolve("fast") == RequestResourceKey.of("p1", "m-1", "chat")
    assert resolver.resolve("embedder").domain is RequestDomain.EMBEDDING
    health = resolver.resolve("fast", RequestDomain.HEALTHCHECK)
    assert health == RequestResourceKey.of("p1", "m-1", "healthcheck")
    # Aliases of one endpoint share the minimum cap.
    assert resolver.static_cap(health).cap == 3
    assert resolver.resources() == (
        RequestResourceKey.of("p1", "m-1", "chat"),
        RequestResourceKey.of("p2", "e-1", "embedding"),
    )
    with pytest.raises(UnknownModelAliasError):
        resolver.resolve("nope")


def test_config_from_catalog_takes_caps_aliases_and_public_tuning() -> None:
    tuning = RequestAdmissionTuningConfig(
        multiplicative_decrease_factor=0.5,
        additive_increase_step=2,
        successes_until_increase=10,
        cooldown_seconds=3.0,
        startup_ramp_seconds=4.0,
    )
    config = RequestAdmissionConfig.from_catalog(catalog(), tuning)
    chat = RequestResourceKey.of("p1", "m-1", "chat")
    assert config.static_caps == {
        ProviderModelKey("p1", "m-1"): 3,
        ProviderModelKey("p2", "e-1"): 4,
    }
    assert config.aliases[ProviderModelKey("p1", "m-1")] == ("fast", "fast-again")
    assert chat in config.resources
    assert (
        config.multiplicative_decrease_factor,
        config.additive_increase_step,
        config.successes_until_increase,
        config.cooldown_seconds,
        config.startup_ramp_seconds,
    ) == (0.5, 2, 10, 3.0, 4.0)
    defaults = RequestAdmissionConfig.from_catalog(catalog(), None)
    assert (
        defaults.multiplicative_decrease_factor,
        defaults.additive_increase_step,
        defaults.successes_until_increase,
        defaults.cooldown_seconds,
        defaults.startup_ramp_seconds,
    ) == (0.75, 1, 25, 2.0, 0.0)
    assert config.as_json()["static_caps"] == {"p1/m-1": 3, "p2/e-1": 4}


def test_effective_max_and_initial_limit_are_clamped() -> None:
    pm = ProviderModelKey("p", "m")
    chat = RequestResourceKey(pm, RequestDomain.CHAT)
    embed = RequestResourceKey(pm, RequestDomain.EMBEDDING)
    image = RequestResourceKey(pm, RequestDomain.IMAGE)
    config = RequestAdmissionConfig(
        static_caps={pm: 10},
        initial_limits={chat: 50, embed: 3},
        max_limit_clamps={chat: 6, embed: 20},
    )
    assert config.effective_max(chat) == 6  # clamp below cap
    assert config.effective_max(embed) == 10  # cap below clamp
    assert config.initial_limit(chat) == 6  # initial above max is clamped down
    assert config.initial_limit(embed) == 3
    assert config.initial_limit(image) == 10  # no initial limit: start at the effective max
    unknown = RequestResourceKey.of("x", "y", "chat")
    assert config.effective_max(unknown) is None and config.initial_limit(unknown) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"multiplicative_decrease_factor": 1.0},
        {"multiplicative_decrease_factor": 0.0},
        {"additive_increase_step": 0},
        {"successes_until_increase": 0},
        {"cooldown_seconds": -1.0},
        {"startup_ramp_seconds": float("inf")},
        {"default_queue_wait_timeout_seconds": -1.0},
        {"static_caps": {ProviderModelKey("p", "m"): 0}},
        {"resources": (RequestResourceKey.of("other", "m", "chat"),)},
    ],
)
def test_config_rejects_invalid_values(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"static_caps": {ProviderModelKey("p", "m"): 2}}
    base.update(kwargs)
    with pytest.raises(ValueError):
        RequestAdmissionConfig(**base)  # type: ignore[arg-type]


def test_release_outcomes_validate_retry_after() -> None:
    assert RequestReleaseOutcome.rate_limited(2.0).kind is RequestReleaseOutcomeKind.RATE_LIMITED
    assert RequestReleaseOutcome.of("local_timeout").kind is RequestReleaseOutcomeKind.LOCAL_TIMEOUT
    with pytest.raises(ValueError):
        RequestReleaseOutcome.rate_limited(-1.0)
    with pytest.raises(ValueError):
        RequestReleaseOutcome.of("boom")
    assert {k.value for k in RequestReleaseOutcomeKind} == {
        "success",
        "rate_limited",
        "provider_failure",
        "provider_timeout",
        "local_cancelled",
        "local_timeout",
        "unexpected_exception",
    }
