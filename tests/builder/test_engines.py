"""The async engine matches the sequential oracle hash for hash, on the examples and on random
column DAGs, for any buffer_size and max_concurrent_row_groups; resume and reruns are exact."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rowloom import DatasetConfig, Designer, RunConfig
from rowloom.errors import RunFolderError

EXAMPLES = Path(__file__).parents[2] / "examples"
FAST_SIM = {"capacity": 64, "latency_ms": 0, "seed": 5}


def fast(config: DatasetConfig) -> DatasetConfig:
    """The same config on a zero-latency simulated provider (values do not depend on timing)."""
    data = config.to_dict()
    for p in data["providers"]:
        if p["provider_type"] == "simulated":
            p["simulation"] = {**p.get("simulation", {}), "latency_ms": 0}
    return DatasetConfig.from_dict(data)


def preview_hash(config: DatasetConfig, n: int, engine: str, **run: Any) -> tuple[str, Any]:
    rc = config.run_config.model_copy(update=run) if run else config.run_config
    cfg = config.model_copy(update={"run": rc})
    result = Designer(engine=engine).preview(cfg, n)  # type: ignore[arg-type]
    assert result.summary.status == "complete", result.summary
    return result.output_hash(), result


@pytest.mark.parametrize("buffer_size,groups", [(7, 1), (10, 3), (64, 2)])
def test_qa_judge_async_equals_sequential(buffer_size: int, groups: int) -> None:
    config = fast(DatasetConfig.from_yaml(EXAMPLES / "qa_judge.yaml"))
    a, result = preview_hash(
        config, 23, "async", buffer_size=buffer_size, max_concurrent_row_groups=groups
    )
    s, _ = preview_hash(
        config, 23, "sequential", buffer_size=buffer_size, max_concurrent_row_groups=groups
    )
    assert a == s
    assert len(result) == 23
    for name, values in result.data.items():
        assert all(v is not None for v in values), name


def test_values_do_not_depend_on_buffer_size() -> None:
    config = fast(DatasetConfig.from_yaml(EXAMPLES / "qa_judge.yaml"))
    assert (
        preview_hash(config, 12, "async", buffer_size=5)[0]
        == preview_hash(config, 12, "async", buffer_size=12)[0]
    )


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 7))
    columns: list[dict[str, Any]] = [
        {
            "name": "c0",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": ["x", "y", "z"]},
        }
    ]
    for i in range(1, n):
        name = f"c{i}"
        deps = draw(
            st.lists(
                st.sampled_from([c["name"] for c in columns]), min_size=0, max_size=3, unique=True
            )
        )
        ref = " ".join(f"{{{{ {d} }}}}" for d in deps)
        kind = draw(st.sampled_from(["sampler", "expression", "llm_text", "llm_text", "custom"]))
        if kind == "sampler" or (not deps and kind != "llm_text"):
            columns.append(
                {
                    "name": name,
                    "column_type": "sampler",
                    "sampler_type": "uniform",
                    "params": {"low": 0, "high": 100, "integer": True},
                }
            )
        elif kind == "expression":
            columns.append({"name": name, "column_type": "expression", "expr": f"{ref}|{i}"})
        elif kind == "custom":
            columns.append(
                {
                    "name": name,
                    "column_type": "custom",
                    "function": "tests.builder.dag_functions:join_with_model",
                    "required_columns": deps,
                    "model_aliases": ["m"],
                }
            )
        else:
            columns.append(
                {
                    "name": name,
                    "column_type": "llm_text",
                    "model_alias": "m",
                    "prompt": f"Say {ref or 'hi'}.",
                }
            )
    return {
        "providers": [{"name": "sim", "provider_type": "simulated", "simulation": FAST_SIM}],
        "models": [{"alias": "m", "model": "sim-m", "provider": "sim", "max_parallel_requests": 8}],
        "columns": columns,
        "seed": draw(st.integers(0, 100)),
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=dags(), rows=st.integers(1, 14), buffer_size=st.integers(1, 6), groups=st.integers(1, 3)
)
def test_random_dags_async_equals_sequential(
    data: dict[str, Any], rows: int, buffer_size: int, groups: int
) -> None:
    config = DatasetConfig.from_dict(data)
    a, _ = preview_hash(
        config, rows, "async", buffer_size=buffer_size, max_concurrent_row_groups=groups
    )
    s, _ = preview_hash(
        config, rows, "sequential", buffer_size=buffer_size, max_concurrent_row_groups=groups
    )
    assert a == s


def test_rerun_is_identical_and_resume_redoes_exactly_the_missing_part(tmp_path: Path) -> None:
    config = fast(DatasetConfig.from_yaml(EXAMPLES / "qa_judge.yaml"))
    config = config.model_copy(update={"run": RunConfig(buffer_size=10)})
    designer = Designer(tmp_path)
    first = designer.create(config, 40, "run")
    second = Designer(tmp_path / "again").create(config, 40, "run")
    assert first.output_hash() == second.output_hash()
    parts = first.part_paths()
    assert len(parts) == 4
    before = {p.name: p.stat().st_mtime_ns for p in parts}
    original = pq.read_table(parts[2])
    parts[2].unlink()
    resumed = designer.create(config, 40, "run", resume=True)
    assert resumed.summary.resumed_row_groups == 3
    assert resumed.summary.request_attempts == 10 * 4  # only the missing row group's cells
    after = {p.name: p.stat().st_mtime_ns for p in resumed.part_paths()}
    assert {k for k in after if after[k] != before[k]} == {parts[2].name}
    assert pq.read_table(parts[2]).equals(original)
    assert resumed.output_hash() == first.output_hash()
    assert resumed.to_pandas().shape == (40, 6)


def test_acreate_runs_inside_an_event_loop(tmp_path: Path) -> None:
    config = fast(DatasetConfig.from_yaml(EXAMPLES / "qa_judge.yaml"))

    async def main() -> int:
        with pytest.raises(RuntimeError, match="acreate"):
            Designer(tmp_path).create(config, 2, "x")
        result = await Designer(tmp_path).acreate(config, 3, "x")
        return len(result)

    assert asyncio.run(main()) == 3


@pytest.mark.parametrize("engine", ["async", "sequential"])
def test_a_bad_row_in_a_whole_row_group_task_drops_only_that_row(engine: str) -> None:
    config = DatasetConfig.from_dict(
        {
            "columns": [
                {
                    "name": "n",
                    "column_type": "sampler",
                    "sampler_type": "uniform",
                    "params": {"low": 0, "high": 4, "integer": True},
                },
                # a vectorised (per row group) expression that fails for n == 0
                {
                    "name": "inv",
                    "column_type": "expression",
                    "expr": "{{ 12 // n }}",
                    "dtype": "int",
                },
                {
                    "name": "twice",
                    "column_type": "expression",
                    "expr": "{{ inv * 2 }}",
                    "dtype": "int",
                },
            ],
            "run": {"buffer_size": 10},
        }
    )
    result = Designer(engine=engine).preview(config, 30)  # type: ignore[arg-type]
    zeros = 30 - len(result)
    assert 0 < zeros < 30
    assert result.summary.dropped_rows == {"template_error": zeros}
    assert all(n != 0 for n in result.data["n"])
    assert result.data["twice"] == [2 * (12 // n) for n in result.data["n"]]


@pytest.mark.parametrize("engine", ["async", "sequential"])
def test_a_run_folder_that_cannot_be_saved_stops_create_with_a_run_folder_error(
    tmp_path: Path, engine: str
) -> None:
    """The run folder's first files are saved while the first requests go out; when they
    cannot be, `create` still ends in a `RunFolderError` naming the folder, and no part is
    recorded without its manifest."""
    config = fast(DatasetConfig.from_yaml(EXAMPLES / "qa_judge.yaml"))
    (tmp_path / "run" / "config.yaml").mkdir(parents=True)  # a folder where the file goes
    with pytest.raises(RunFolderError, match="cannot write the run folder"):
        Designer(tmp_path, engine=engine).create(config, 20, "run")  # type: ignore[arg-type]
    assert not (tmp_path / "run" / "manifest.json").exists()
    assert not list((tmp_path / "run" / "data").glob("part-*"))
