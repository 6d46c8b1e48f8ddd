"""Every generator family: values, determinism, skips, metadata, and error classes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rowloom.config import DatasetConfig, SchedulingMetadata
from rowloom.config.columns import (
    CustomColumnConfig,
    ExpressionColumnConfig,
    SamplerColumnConfig,
)
from rowloom.errors import NonRetryableTaskError
from rowloom.generators import BatchInput, CellContext, build_generators
from rowloom.generators.base import compile_template, render
from rowloom.generators.custom import CustomColumnError, CustomGenerator
from rowloom.generators.expression import ExpressionGenerator
from rowloom.generators.samplers import SamplerGenerator
from rowloom.models.clients.base import ChatResponse, EmbeddingResponse
from rowloom.models.facade import ModelFacade
from rowloom.models.resources import ModelResourceCatalog
from rowloom.seeds import compile_seed


class FakeExecutor:
    """Answers chat with a scripted text (or JSON) and embeddings with fixed vectors."""

    def __init__(self, replies: Sequence[str] = ()) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[str, list[Mapping[str, str]], Any]] = []

    async def execute_chat(
        self,
        alias: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        response_format: Any = None,
        **_: Any,
    ) -> ChatResponse:
        self.calls.append((alias, list(messages), response_format))
        text = self.replies.pop(0) if self.replies else f"reply:{messages[-1]['content']}"
        return ChatResponse(text=text)

    async def execute_embedding(
        self, alias: str, inputs: Sequence[str], **_: Any
    ) -> EmbeddingResponse:
        self.calls.append((alias, [{"content": t} for t in inputs], None))
        return EmbeddingResponse(vectors=tuple((float(len(t)), 1.0) for t in inputs))


def batch(rows: Sequence[int], columns: Mapping[str, Sequence[Any]] | None = None) -> BatchInput:
    return BatchInput(seed=3, row_group=0, global_rows=list(rows), columns=dict(columns or {}))


SAMPLERS: list[tuple[str, dict[str, Any]]] = [
    ("category", {"values": ["a", "b", "c"], "weights": [0, 1, 1]}),
    ("uniform", {"low": 1, "high": 3, "integer": True}),
    ("uniform", {"low": 0.5, "high": 0.75, "decimal_places": 3}),
    ("gaussian", {"mean": 10, "stddev": 0.5}),
    ("bernoulli", {"p": 0.5}),
    ("poisson", {"mean": 4}),
    ("uuid", {"prefix": "id-", "short_form": True}),
    ("datetime", {"start": "2024-01-01T00:00:00", "end": "2024-01-03T00:00:00", "unit": "h"}),
    ("person", {"locale": "en_US", "min_age": 30, "max_age": 40}),
]


@pytest.mark.parametrize(("sampler_type", "params"), SAMPLERS)
def test_samplers_are_deterministic_per_global_row(
    sampler_type: str, params: dict[str, Any]
) -> None:
    gen = SamplerGenerator(SamplerColumnConfig(name="s", sampler_type=sampler_type, params=params))  # type: ignore[arg-type]
    whole = gen.generate_batch(batch(range(40)))
    # split differently (another buffer_size) -> same values for the same global rows
    parts = gen.generate_batch(batch(range(0, 17))) + gen.generate_batch(batch(range(17, 40)))
    assert parts == whole
    assert gen.generate_batch(batch([5, 6])) == whole[5:7]
    assert len(set(map(json.dumps, whole))) > 1  # not constant


def test_sampler_values_respect_params() -> None:
    def values(sampler_type: str, params: dict[str, Any]) -> list[Any]:
        cfg = SamplerColumnConfig(
            name="s",
            sampler_type=sampler_type,  # type: ignore[arg-type]
            params=params,
        )
        return SamplerGenerator(cfg).generate_batch(batch(range(500)))

    assert set(values(*SAMPLERS[0])) == {"b", "c"}  # zero weight never drawn
    assert set(values(*SAMPLERS[1])) == {1, 2, 3}
    assert all(0.5 <= v <= 0.75 and round(v, 3) == v for v in values(*SAMPLERS[2]))
    assert set(values(*SAMPLERS[4])) == {0, 1}
    assert all(v.startswith("id-") and len(v) == 11 for v in values(*SAMPLERS[6]))  # 8 hex
    assert all(30 <= p["age"] <= 40 for p in values(*SAMPLERS[8]))
    gauss = values(*SAMPLERS[3])
    assert 9.8 < sum(gauss) / len(gauss) < 10.2


def test_subcategory_follows_its_category() -> None:
    cfg = SamplerColumnConfig(
        name="sub",
        sampler_type="subcategory",
        params={"category": "cat", "values": {"fruit": ["apple", "pear"], "veg": ["leek"]}},
    )
    out = SamplerGenerator(cfg).generate_batch(
        batch(range(4), {"cat": ["fruit", "veg", "fruit", "veg"]})
    )
    assert out[1] == out[3] == "leek"
    assert {out[0], out[2]} <= {"apple", "pear"}


async def test_expression_casts_and_skips() -> None:
    gen = ExpressionGenerator(
        ExpressionColumnConfig(name="e", expr="{{ n * 2 }}", dtype="int", skip_when="{{ n > 2 }}")
    )
    ctx = CellContext(seed=0, row_group=0, global_row=0, facade=None)
    assert await gen.generate_cell({"n": 2}, ctx) == 4
    assert not gen.skip_decision({"n": 2}, set())
    assert gen.skip_decision({"n": 3}, set())
    as_json = ExpressionGenerator(
        ExpressionColumnConfig(name="j", expr='{"a": {{ n }}}', dtype="json")
    )
    assert await as_json.generate_cell({"n": 1}, ctx) == {"a": 1}
    bad = ExpressionGenerator(ExpressionColumnConfig(name="b", expr="{{ n }}", dtype="float"))
    with pytest.raises(NonRetryableTaskError) as info:
        await bad.generate_cell({"n": "not a number"}, ctx)
    assert info.value.reason == "expression_cast_error"


@pytest.mark.parametrize(
    "expr",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ n.__class__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% include '/etc/passwd' %}",
        "{{ lst.append(1) }}",
    ],
)
async def test_templates_are_sandboxed(expr: str) -> None:
    gen = ExpressionGenerator(ExpressionColumnConfig(name="e", expr=expr))
    ctx = CellContext(seed=0, row_group=0, global_row=0, facade=None)
    with pytest.raises(NonRetryableTaskError) as info:
        await gen.generate_cell({"n": 1, "lst": [1]}, ctx)
    assert info.value.reason == "template_error"


CONFIG = {
    "providers": [{"name": "sim", "provider_type": "simulated"}],
    "models": [
        {"alias": "w", "model": "m-w", "provider": "sim", "max_parallel_requests": 8},
        {"alias": "w2", "model": "m-w", "provider": "sim", "max_parallel_requests": 3},
        {"alias": "other", "model": "m-o", "provider": "sim"},
        {"alias": "e", "model": "m-e", "provider": "sim", "generation_kind": "embedding"},
    ],
    "columns": [
        {
            "name": "topic",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": ["x"]},
        },
        {"name": "up", "column_type": "expression", "expr": "{{ topic | upper }}"},
        {
            "name": "text",
            "column_type": "llm_text",
            "model_alias": "w",
            "prompt": "About {{ up }}",
            "system_prompt": "Be brief.",
        },
        {"name": "late", "column_type": "expression", "expr": "{{ text }}!"},
        {
            "name": "data",
            "column_type": "llm_structured",
            "model_alias": "w",
            "prompt": "Give {{ topic }}",
            "output_format": {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "required": ["n"],
            },
        },
        {
            "name": "verdict",
            "column_type": "llm_judge",
            "model_alias": "other",
            "prompt": "Judge {{ text }}",
            "scores": [
                {"name": "q", "description": "quality", "options": {"1": "bad", "2": "good"}}
            ],
        },
        {"name": "vec", "column_type": "embedding", "model_alias": "e", "target_column": "text"},
    ],
}


def generators() -> dict[str, Any]:
    config = DatasetConfig.from_dict(CONFIG)
    return build_generators(config, ModelResourceCatalog(config.models, config.providers))


def test_task_granularity_and_model_metadata() -> None:
    gens = generators()
    assert gens["topic"].task_type == "batch"
    assert gens["up"].task_type == "batch"  # all inputs are per row group
    assert gens["late"].task_type == "cell"  # pipelines behind a model column
    meta = gens["text"].get_scheduling_metadata()
    # aliases w and w2 hit the same endpoint: min cap 3
    assert meta == SchedulingMetadata("model", ("model", "sim", "m-w", "chat"), 3)
    assert gens["vec"].get_scheduling_metadata().identity == ("model", "sim", "m-e", "embedding")
    assert gens["topic"].get_scheduling_metadata() == SchedulingMetadata.local()


async def test_llm_generators_call_through_the_facade() -> None:
    gens = generators()
    fake = FakeExecutor(
        replies=["plain", "not json", '{"n": 4}', '{"q": {"score": "2", "reasoning": "ok"}}']
    )
    ctx = CellContext(seed=0, row_group=0, global_row=0, facade=ModelFacade(fake))
    assert await gens["text"].generate_cell({"up": "X"}, ctx) == "plain"
    assert fake.calls[0][1][0] == {"role": "system", "content": "Be brief."}
    # invalid JSON first: one corrective follow-up, a separate call
    assert await gens["data"].generate_cell({"topic": "x"}, ctx) == {"n": 4}
    assert len(fake.calls) == 3 and "not valid" in fake.calls[2][1][-1]["content"]
    assert fake.calls[2][2]["json_schema"]["schema"]["required"] == ["n"]
    verdict = await gens["verdict"].generate_cell({"text": "t"}, ctx)
    assert verdict == {"q": {"score": "2", "reasoning": "ok"}}
    assert await gens["vec"].generate_cell({"text": "abc"}, ctx) == [3.0, 1.0]


async def test_structured_gives_up_after_corrections() -> None:
    gens = generators()
    fake = FakeExecutor(replies=['{"n": "x"}'] * 3)
    ctx = CellContext(seed=0, row_group=0, global_row=0, facade=ModelFacade(fake))
    with pytest.raises(NonRetryableTaskError) as info:
        await gens["data"].generate_cell({"topic": "x"}, ctx)
    assert info.value.reason == "invalid_structured_output"
    assert len(fake.calls) == 3


async def _async_fn(row: dict[str, Any], facade: ModelFacade) -> Any:
    calls = row["n"]
    return [await facade.chat("w", f"q{i}") for i in range(calls)]


def _sync_fn(row: dict[str, Any], facade: Any) -> Any:
    return facade.chat("w", "sync") + str(row["n"])


def _broken(row: dict[str, Any], facade: Any) -> Any:
    return row["missing"]


async def test_custom_columns_sync_async_and_programming_errors() -> None:
    config = DatasetConfig.from_dict(CONFIG)
    catalog = ModelResourceCatalog(config.models, config.providers)
    fake = FakeExecutor()
    ctx = CellContext(
        seed=0, row_group=0, global_row=7, facade=ModelFacade(fake, allowed_aliases=["w"])
    )
    gen_async = CustomGenerator(
        CustomColumnConfig(name="c", function=_async_fn, model_aliases=["w"]), catalog
    )
    assert await gen_async.generate_cell({"n": 3}, ctx) == ["reply:q0", "reply:q1", "reply:q2"]
    assert await gen_async.generate_cell({"n": 0}, ctx) == []
    gen_sync = CustomGenerator(
        CustomColumnConfig(name="c", function=_sync_fn, model_aliases=["w"]), catalog
    )
    assert await gen_sync.generate_cell({"n": 1}, ctx) == "reply:sync1"
    assert gen_sync.get_scheduling_metadata().kind == "model"
    broken = CustomGenerator(CustomColumnConfig(name="c", function=_broken), catalog)
    with pytest.raises(CustomColumnError, match="row 7") as info:
        await broken.generate_cell({}, ctx)
    assert isinstance(info.value.__cause__, KeyError)
    # an alias the column did not declare is refused
    facade = ModelFacade(fake, allowed_aliases=["w"])
    with pytest.raises(NonRetryableTaskError):
        await facade.chat("other", "x")


def test_custom_metadata_across_endpoints_is_custom_model() -> None:
    config = DatasetConfig.from_dict(CONFIG)
    catalog = ModelResourceCatalog(config.models, config.providers)
    gen = CustomGenerator(
        CustomColumnConfig(name="c", function=_sync_fn, model_aliases=["w", "other"]), catalog
    )
    meta = gen.get_scheduling_metadata()
    assert meta.kind == "custom_model"
    assert meta == gen.get_scheduling_metadata()  # deterministic
    explicit = SchedulingMetadata.custom_model("ns", "gpu")
    gen2 = CustomGenerator(
        CustomColumnConfig(name="c", function=_sync_fn, scheduling_metadata=explicit), catalog
    )
    assert gen2.get_scheduling_metadata() == explicit


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize("sampling", ["ordered", "shuffle"])
def test_seed_dataset_columns(tmp_path: Path, fmt: str, sampling: str) -> None:
    table = pa.table({"city": ["a", "b", "c"], "pop": [1, 2, 3]})
    path = tmp_path / f"seed.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        path.write_text("city,pop\na,1\nb,2\nc,3\n")
    else:
        path.write_text("\n".join(json.dumps(r) for r in table.to_pylist()) + "\n")
    config = DatasetConfig.from_dict(
        {
            "seed_dataset": {"path": str(path), "sampling": sampling},
            "columns": [
                {"name": "city", "column_type": "seed_dataset"},
                {"name": "size", "column_type": "seed_dataset", "source_column": "pop"},
            ],
            "seed": 1,
        }
    )
    config, seed_data = compile_seed(config)
    gens = build_generators(config, ModelResourceCatalog([], []), seed_data)
    cities = gens["city"].generate_batch(batch(range(6)))
    sizes = gens["size"].generate_batch(batch(range(6)))
    assert sorted(cities[:3]) == ["a", "b", "c"] and sorted(cities[3:]) == ["a", "b", "c"]
    assert [{"a": 1, "b": 2, "c": 3}[c] for c in cities] == sizes  # rows stay aligned
    if sampling == "ordered":
        assert cities == ["a", "b", "c", "a", "b", "c"]
    assert gens["city"].generate_batch(batch(range(2, 5))) == cities[2:5]


def test_custom_runs_sync_functions_off_the_event_loop() -> None:
    seen: list[bool] = []

    def where(row: dict[str, Any], facade: Any) -> int:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return 1

    config = DatasetConfig.from_dict(CONFIG)
    catalog = ModelResourceCatalog(config.models, config.providers)
    gen = CustomGenerator(
        CustomColumnConfig(name="c", generator_function=where),
        catalog,
    )
    ctx = CellContext(seed=0, row_group=0, global_row=0, facade=None)
    assert asyncio.run(gen.generate_cell({}, ctx)) == 1
    assert seen == [False]


def test_templates_read_into_text_holding_an_object() -> None:
    """An expression writes `{{ person.openness }}` as text; later templates read its fields
    (as Data Designer parses JSON text in records), and plain text keeps its own rules."""
    trait = {"description": "Curious", "label": "high", "t_score": 61}
    lifted = ExpressionGenerator(
        ExpressionColumnConfig(name="openness", expr="{{ person.openness }}")
    ).value_for({"person": {"openness": trait}})
    prompt = compile_template("{{ o.description }}|{{ o['label'] }}|{{ j.t_score }}|{{ s[0] }}")
    text = render(prompt, {"o": lifted, "j": json.dumps(trait), "s": "[x]"})
    assert text == "Curious|high|61|["
    with pytest.raises(NonRetryableTaskError, match="no attribute"):
        render(compile_template("{{ s.description }}"), {"s": "plain text"})
    with pytest.raises(NonRetryableTaskError):
        render(compile_template("{{ s.nope }}"), {"s": str(trait)})


def test_a_text_expression_of_one_value_is_still_stored_as_text() -> None:
    gen = ExpressionGenerator(ExpressionColumnConfig(name="o", expr="{{ p.openness }}"))
    assert gen.config.output_shape() is None  # templates may read into it
    assert gen.output_shape() == {"type": "string"}  # every part: a string column
