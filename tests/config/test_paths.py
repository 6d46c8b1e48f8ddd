"""Paths in a config resolve against the config file's folder, wherever `rowloom` runs from:
a custom function's module beside the YAML needs no PYTHONPATH, and a seed file beside it is
found (through the real entry point, run from another folder)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.interface.cli_support import run_cli

from rowloom.config.dataset import DatasetConfig
from rowloom.interface.results import DatasetResult

FUNCS = """
def shout(row, facade):
    return row["topic"].upper() + "!"
"""


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """Run from a folder that is not the config's; forget modules the test imports."""
    cwd = Path.cwd()
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.chdir(other)
    try:
        yield other
    finally:
        os.chdir(cwd)
        for name in [m for m in sys.modules if m.startswith("paths_test_funcs")]:
            del sys.modules[name]


def _config(folder: Path, **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "paths_test_funcs.py").write_text(FUNCS)
    data = {
        "columns": [
            {
                "name": "topic",
                "column_type": "sampler",
                "sampler_type": "category",
                "params": {"values": ["rivers"]},
            },
            {
                "name": "loud",
                "column_type": "custom",
                "function": "paths_test_funcs:shout",
                "required_columns": ["topic"],
            },
        ],
        **extra,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_custom_functions_module_beside_the_config_is_found(
    tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = _config(tmp_path / "project")
    config = DatasetConfig.from_yaml(config_path)
    assert config.base_dir == (tmp_path / "project").resolve()
    assert config.resolve_path("data/seed.csv") == config.base_dir / "data/seed.csv"
    result = run_cli(capsys, "create", config_path, "-n", "3", "--artifact-dir", elsewhere)
    assert result.code == 0, result.err
    assert DatasetResult.open(elsewhere / "config").columns()["loud"] == ["RIVERS!"] * 3


def test_a_config_from_text_resolves_against_the_current_folder(elsewhere: Path) -> None:
    config = DatasetConfig.from_yaml("columns: [{name: a, column_type: expression, expr: x}]")
    assert config.base_dir is None and config.resolve_path("x.csv") == Path("x.csv")
    placed = DatasetConfig.from_dict(config.to_dict(), base_dir=elsewhere)
    assert placed.resolve_path("/abs/x.csv") == Path("/abs/x.csv")
    assert placed.resolve_path("x.csv") == elsewhere.resolve() / "x.csv"


def test_a_seed_file_beside_the_config_is_read(
    tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "seeded"
    project.mkdir()
    (project / "cities.csv").write_text("city\nLyon\nOslo\n")
    config_path = project / "seeded.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "seed_config": {"source": {"seed_type": "local", "path": "cities.csv"}},
                "columns": [{"name": "line", "column_type": "expression", "expr": "{{ city }}!"}],
            }
        )
    )
    assert run_cli(capsys, "validate", config_path).code == 0
    result = run_cli(capsys, "create", config_path, "-n", "4", "--artifact-dir", elsewhere)
    assert result.code == 0, result.err
    assert DatasetResult.open(elsewhere / "seeded").columns()["line"] == ["Lyon!", "Oslo!"] * 2
