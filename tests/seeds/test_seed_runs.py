"""Runs with a seed: undeclared seed columns in templates, drop, the same dataset on any engine
and buffer size, resume, the older `seed_dataset` form, and the CLI's typed errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rowloom as rl
from rowloom.config.errors import ConfigFileError

ROWLOOM = str(Path(sys.executable).with_name("rowloom"))


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "cities.parquet"
    table = pa.table({"city": [f"city{i}" for i in range(23)], "pop": list(range(23))})
    pq.write_table(table, path, row_group_size=5)
    return path


def config(seed_file: Path, sampling: str = "shuffle", **seed_extra: Any) -> rl.DatasetConfig:
    return rl.DatasetConfig.from_dict(
        {
            "seed_config": {
                "source": {"seed_type": "local", "path": str(seed_file)},
                "sampling_strategy": sampling,
                **seed_extra,
            },
            "columns": [
                {"name": "line", "column_type": "expression", "expr": "{{ city }} has {{ pop }}"},
                {"name": "pop", "column_type": "seed_dataset", "drop": True},
            ],
            "seed": 11,
        }
    )


def test_seed_columns_feed_templates_without_being_declared(seed_file: Path) -> None:
    result = rl.Designer().preview(config(seed_file, "ordered"), 25)
    assert list(result.data) == ["city", "line"]  # pop dropped, city undeclared but present
    assert result.data["city"][:3] == ["city0", "city1", "city2"]
    assert result.data["line"][24] == "city1 has 1"  # cycles after 23 rows


@pytest.mark.parametrize(
    "extra", [{}, {"with_replacement": True}, {"selection_strategy": {"start": 3, "end": 17}}]
)
def test_same_dataset_on_either_engine_and_any_buffer_size(
    seed_file: Path, extra: dict[str, Any]
) -> None:
    base = config(seed_file, "shuffle", **extra)
    outputs = set()
    for engine in ("async", "sequential"):
        for buffer_size in (1, 4, 50):
            cfg = base.model_copy(update={"run": rl.RunConfig(buffer_size=buffer_size)})
            outputs.add(rl.Designer(engine=engine).preview(cfg, 50).output_hash())  # type: ignore[arg-type]
    assert len(outputs) == 1


def test_resume_regenerates_missing_row_groups_identically(seed_file: Path, tmp_path: Path) -> None:
    cfg = config(seed_file).model_copy(update={"run": rl.RunConfig(buffer_size=6)})
    designer = rl.Designer(tmp_path / "artifacts")
    first = designer.create(cfg, 40, "run")
    for part in ("part-00001.parquet", "part-00004.parquet"):
        (first.data_dir / part).unlink()
    again = designer.create(cfg, 40, "run", resume=True)
    assert again.summary.resumed_row_groups == 5
    assert again.output_hash() == first.output_hash()


def test_older_seed_dataset_section_still_runs(seed_file: Path) -> None:
    legacy = rl.DatasetConfig.from_dict(
        {
            "seed_dataset": {"path": str(seed_file), "sampling": "ordered"},
            "columns": [{"name": "size", "column_type": "seed_dataset", "source_column": "pop"}],
        }
    )
    assert legacy.seed_config is not None and legacy.seed_config.sampling_strategy == "ordered"
    data = rl.Designer().preview(legacy, 4).data
    assert data == {"city": ["city0", "city1", "city2", "city3"], "size": [0, 1, 2, 3]}
    assert "seed_config" in legacy.to_dict() and "seed_dataset" not in legacy.to_dict()


def test_dataframe_seed_runs_and_its_content_is_part_of_the_fingerprint() -> None:
    df = pd.DataFrame({"topic": ["a", "b", "c"]})
    cfg = rl.DatasetConfig(
        seed_config=rl.SeedConfig(source=rl.DataFrameSeedSource(df=df)),
        columns=[rl.ExpressionColumnConfig(name="t", expr="about {{ topic }}")],
    )
    assert rl.Designer().preview(cfg, 3).data["t"] == ["about a", "about b", "about c"]
    other = cfg.model_copy(
        update={
            "seed_config": rl.SeedConfig(
                source=rl.DataFrameSeedSource(df=pd.DataFrame({"topic": ["a", "b", "x"]}))
            )
        }
    )
    assert cfg.fingerprint() != other.fingerprint()
    with pytest.raises(ConfigFileError, match="parquet"):
        cfg.to_yaml()


def test_a_seed_alone_is_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("alpha")
    cfg = rl.DatasetConfig.from_dict(
        {"seed_config": {"source": {"seed_type": "file_contents", "path": str(tmp_path / "notes")}}}
    )
    data = rl.Designer().preview(cfg, 2).data
    assert data["content"] == ["alpha", "alpha"] and data["relative_path"] == ["a.md", "a.md"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROWLOOM, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def test_cli_validate_lists_seed_columns_and_rejects_bad_seeds(
    seed_file: Path, tmp_path: Path
) -> None:
    good = tmp_path / "good.yaml"
    config(seed_file).to_yaml(good)
    ok = run_cli("validate", str(good), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "city" in ok.stdout and "pop" in ok.stdout
    bad = tmp_path / "missing.yaml"
    missing = {"source": {"seed_type": "local", "path": str(tmp_path / "nope.csv")}}
    bad.write_text(json.dumps({"seed_config": missing}))
    done = run_cli("validate", str(bad), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "seed_config" in done.stderr and "nope.csv" in done.stderr
    assert "Traceback" not in done.stderr


def test_relative_seed_paths_resolve_against_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    source = rl.LocalFileSeedSource.from_dataframe(
        pd.DataFrame({"x": [1, 2]}), project / "data" / "s.parquet"
    )
    relative = {"seed_config": {"source": {"seed_type": "local", "path": "data/s.parquet"}}}
    (project / "c.json").write_text(json.dumps(relative))
    monkeypatch.chdir(tmp_path)  # not the config's folder
    config = rl.DatasetConfig.from_file(project / "c.json")
    assert config.base_dir == project.resolve()
    assert config.resolve_path("data/s.parquet") == project.resolve() / "data" / "s.parquet"
    assert config.resolve_path(source.path) == Path(source.path)  # absolute stays
    assert rl.Designer().preview(config, 3).data == {"x": [1, 2, 1]}
    from_python = rl.DatasetConfig.from_dict(relative)  # no file: the working folder
    with pytest.raises(rl.ConfigValidationError) as info:
        rl.Designer().preview(from_python, 1)
    assert info.value.codes == ("seed_not_found",)
