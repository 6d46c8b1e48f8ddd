from __future__ import annotations

import pytest

from rowloom.config.models import ModelConfig, ModelProvider
from rowloom.config.scheduling import SchedulingMetadata, SchedulingMetadataError
from rowloom.models.resources import ModelResourceCatalog
from rowloom.scheduling.resolver import (
    TaskSchedulingResolutionError,
    TaskSchedulingResolver,
)
from rowloom.scheduling.resources import LOCAL, SUBMISSION, TaskGroupKey, task_id_of
from rowloom.scheduling.task_model import Task


class Gen:
    """A generator stub: returns (or raises) what it is given and counts calls."""

    def __init__(self, result: SchedulingMetadata | Exception | object) -> None:
        self.result = result
        self.calls = 0

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[return-value]


def catalog() -> ModelResourceCatalog:
    providers = [
        ModelProvider(name="p1", provider_type="simulated"),
        ModelProvider(name="p2", provider_type="simulated"),
    ]
    models = [
        ModelConfig(alias="fast", model="m1", provider="p1", max_parallel_requests=16),
        ModelConfig(alias="fast-low", model="m1", provider="p1", max_parallel_requests=4),
        ModelConfig(alias="judge", model="m2", provider="p2", max_parallel_requests=8),
    ]
    return ModelResourceCatalog(models, providers)


def test_local_metadata_needs_submission_and_local() -> None:
    resolver = TaskSchedulingResolver()
    resolved = resolver.resolve("a", Gen(SchedulingMetadata.local("cpu", weight=3)))
    assert resolved.group.key == TaskGroupKey(("local", "cpu"), ("a",))
    assert resolved.group.weight == 3
    assert dict(resolved.resource_request.amounts) == {SUBMISSION: 1, LOCAL: 1}


def test_model_metadata_needs_only_submission() -> None:
    meta = SchedulingMetadata("model", ("model", "p1", "m1", "chat"), 16)
    resolved = TaskSchedulingResolver().resolve("answer", Gen(meta), ["answer", "answer__trace"])
    assert dict(resolved.resource_request.amounts) == {SUBMISSION: 1}
    assert resolved.group.key.output_columns == ("answer", "answer__trace")
    assert resolved.group.weight == 16


def test_each_column_is_its_own_group_even_on_one_endpoint() -> None:
    meta = SchedulingMetadata("model", ("model", "p1", "m1", "chat"), 16)
    resolver = TaskSchedulingResolver()
    assert resolver.resolve("a", Gen(meta)).group != resolver.resolve("b", Gen(meta)).group


def test_resolution_happens_once_per_column_per_run() -> None:
    gen = Gen(SchedulingMetadata.local())
    resolver = TaskSchedulingResolver()
    first = resolver.resolve("a", gen)
    assert resolver.resolve("a", gen) is first
    assert gen.calls == 1
    assert resolver.resolutions()["a"] is first


def test_fallback_is_used_and_reported() -> None:
    fallback = SchedulingMetadata.local("fallback")
    error = SchedulingMetadataError("invalid_weight", "weight 0", fallback, {"weight": 0})
    resolver = TaskSchedulingResolver()
    resolved = resolver.resolve("a", Gen(error))
    assert resolved.group.key.identity == ("local", "fallback")
    (diag,) = resolver.diagnostics
    assert (diag.column, diag.code, diag.fallback) == ("a", "invalid_weight", fallback)
    assert diag.diagnostics == {"weight": 0}


def test_no_fallback_is_fatal_before_any_task() -> None:
    resolver = TaskSchedulingResolver()
    with pytest.raises(TaskSchedulingResolutionError) as info:
        resolver.resolve("a", Gen(SchedulingMetadataError("invalid_kind", "bad")))
    assert (info.value.column, info.value.code) == ("a", "invalid_kind")
    assert "a" not in resolver.resolutions()
    with pytest.raises(KeyError):
        resolver.schedulable(Task.cell("a", 0, 0))


@pytest.mark.parametrize("result", [RuntimeError("boom"), "not metadata"])
def test_broken_generators_are_fatal(result: object) -> None:
    with pytest.raises(TaskSchedulingResolutionError):
        TaskSchedulingResolver().resolve("a", Gen(result))


def test_resolve_all_and_schedulable() -> None:
    resolver = TaskSchedulingResolver()
    resolver.resolve_all(
        [("a", Gen(SchedulingMetadata.local())), ("b", Gen(SchedulingMetadata.local()))]
    )
    task = Task.cell("b", 1, 4)
    item = resolver.schedulable(task)
    assert item.task is task and item.task_id == task_id_of(task)
    assert item.group is resolver.resolved("b").group


def test_aliases_on_one_endpoint_merge_with_the_minimum_cap() -> None:
    meta = catalog().scheduling_metadata(["fast", "fast-low", "fast"], "chat")
    assert meta.kind == "model"
    assert meta.identity == ("model", "p1", "m1", "chat")
    assert meta.weight == 4
    assert meta.diagnostics["raw_caps"] == {"fast": 16, "fast-low": 4}
    assert catalog().scheduling_metadata(["fast"], "chat").weight == 4


def test_aliases_on_different_endpoints_give_deterministic_custom_model() -> None:
    a = catalog().scheduling_metadata(["judge", "fast"], "chat")
    b = catalog().scheduling_metadata(["fast", "judge"], "chat")
    assert a == b
    assert a.kind == "custom_model"
    assert a.identity == ("custom_model", "rowloom", "p1/m1+p2/m2", "1")
    assert a.weight == 4
    assert a.diagnostics["reason"] == "aliases_resolve_to_different_endpoints"
    resolver = TaskSchedulingResolver()
    resolved = resolver.resolve("x", Gen(a))
    assert dict(resolved.resource_request.amounts) == {SUBMISSION: 1}
    assert resolver.diagnostics[0].code == "metadata_diagnostics"


def test_one_alias_takes_its_models_generation_kind_by_default() -> None:
    meta = catalog().scheduling_metadata(["fast"])
    assert meta.identity == ("model", "p1", "m1", "chat") and meta.diagnostics == {}


@pytest.mark.parametrize("aliases", [[], ["nope"]])
def test_unresolvable_aliases_are_fatal_metadata_errors(aliases: list[str]) -> None:
    with pytest.raises(SchedulingMetadataError) as info:
        catalog().scheduling_metadata(aliases, "chat")
    assert info.value.fallback is None
