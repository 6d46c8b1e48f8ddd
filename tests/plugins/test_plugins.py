"""Plugins from installed packages: the example package in `example_plugin/` is installed for
the test as a dist-info (with its `rowloom.plugins` entry points) on a temporary path, and runs
end to end through the real `rowloom` entry point; in-process registration works too."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from tests.plugins.registered import EXAMPLE, example_plugins_registered

from rowloom import DatasetConfig, Designer
from rowloom.config import ConfigValidationError
from rowloom.config.plugins import REGISTRY, Plugin, PluginLoadError

ROWLOOM = Path(sys.executable).parent / "rowloom"
CONFIG = {
    "columns": [
        {
            "name": "word",
            "column_type": "sampler",
            "sampler_type": "category",
            "params": {"values": ["river", "stone", "glass"]},
        },
        {"name": "rev", "column_type": "reverse_text", "source": "word", "upper": True},
        {"name": "echo", "column_type": "expression", "expr": "{{ rev }}!"},
    ],
    "processors": [{"name": "stats", "processor_type": "row_stats"}],
}


def install(site: Path, entry_points: str) -> dict[str, str]:
    """A dist-info for the example package in `site`; the environment that sees it."""
    info = site / "rowloom_example_plugin-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rowloom-example-plugin\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(entry_points)
    paths = [str(site), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


ENTRY_POINTS = (
    "[rowloom.plugins]\n"
    "reverse_text = rowloom_example_plugin:reverse_text\n"
    "row_stats = rowloom_example_plugin:row_stats\n"
)


def test_installed_plugins_run_end_to_end_through_the_cli(tmp_path: Path) -> None:
    env = install(tmp_path / "site", ENTRY_POINTS)
    config = tmp_path / "plugged.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "art"
    cmd = [
        str(ROWLOOM),
        "create",
        str(config),
        "-n",
        "7",
        "--name",
        "p",
        "--artifact-dir",
        str(out),
        "--quiet",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out / "p" / "data" / "part-00000.parquet").to_pylist()
    for row in table:
        assert row["rev"] == row["word"][::-1].upper() and row["echo"] == row["rev"] + "!"
    stats = pq.read_table(out / "p" / "processors" / "stats" / "part-00000.parquet")
    assert stats.column("filled").to_pylist() == [3] * 7


def test_a_broken_plugin_is_named_when_a_config_uses_its_type(tmp_path: Path) -> None:
    env = install(tmp_path / "site", "[rowloom.plugins]\nreverse_text = no_such_module:thing\n")
    config = tmp_path / "plugged.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    done = subprocess.run(
        [str(ROWLOOM), "validate", str(config)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert "reverse_text" in done.stdout + done.stderr
    assert "no_such_module" in done.stdout + done.stderr


@pytest.fixture
def registered() -> Iterator[None]:
    with example_plugins_registered():
        yield


def test_registered_plugins_validate_round_trip_and_run(registered: None) -> None:
    cfg = DatasetConfig.from_dict(CONFIG)
    assert cfg.dependencies["rev"] == ("word",)
    assert DatasetConfig.from_dict(cfg.to_dict()) == cfg
    result = Designer().preview(cfg, 5)
    assert result.data["rev"] == [w[::-1].upper() for w in result.data["word"]]
    assert result.processor_outputs["stats"] == [{"filled": 3}] * 5
    for extra, fragment in (({"x": 1}, "columns.r.x: unknown field"), ({}, "'ghost'")):
        with pytest.raises(ConfigValidationError) as info:
            DatasetConfig.from_dict(
                {
                    "columns": [
                        {"name": "r", "column_type": "reverse_text", "source": "ghost", **extra}
                    ]
                }
            )
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    "plugin",
    [
        Plugin("column_generator", "json:dumps", "json:loads"),  # not a class
        Plugin("column_generator", "collections:OrderedDict", "json:loads"),  # not pydantic
        Plugin("processor", "rowloom.config.columns:SkipConfig", "json:loads"),  # no discriminator
    ],
)
def test_malformed_plugins_are_refused(plugin: Plugin) -> None:
    with pytest.raises(PluginLoadError):
        REGISTRY.register(plugin)


def test_unknown_plugin_types_are_refused() -> None:
    with pytest.raises(PluginLoadError):
        Plugin("teleporter", "a:b", "c:d")  # type: ignore[arg-type]
