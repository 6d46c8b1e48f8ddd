"""A `seed_reader` plugin adds a `seed_type`: its config loads, its rows seed a run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest
from pydantic import BaseModel

import rowloom as rl
from rowloom.config.plugins import REGISTRY, Plugin


class LinesSeedSource(BaseModel):
    seed_type: Literal["lines"] = "lines"
    path: str


class LinesReader:
    def read(self, source: LinesSeedSource, base_dir: Path | None) -> pd.DataFrame:
        path = Path(source.path) if base_dir is None else base_dir / source.path
        lines = path.read_text().splitlines()
        return pd.DataFrame(
            {"line": lines, "number": range(1, len(lines) + 1)}, index=[7] * len(lines)
        )


@pytest.fixture
def lines_plugin() -> Iterator[None]:
    REGISTRY.register(Plugin("seed_reader", LinesSeedSource, LinesReader))
    try:
        yield
    finally:
        REGISTRY.unregister("seed_reader", "lines")


def test_a_plugin_seed_type_seeds_a_run(lines_plugin: None, tmp_path: Path) -> None:
    (tmp_path / "poem.txt").write_text("roses\nviolets\n")
    (tmp_path / "c.yaml").write_text(
        "seed_config: {source: {seed_type: lines, path: poem.txt}}\n"
        "columns: [{name: shout, column_type: expression, expr: '{{ line | upper }}'}]\n"
    )
    config = rl.DatasetConfig.from_file(tmp_path / "c.yaml")
    assert isinstance(config.seed_config.source, LinesSeedSource)  # type: ignore[union-attr]
    assert config.to_dict()["seed_config"]["source"] == {"seed_type": "lines", "path": "poem.txt"}
    data = rl.Designer().preview(config, 3).data
    assert data == {
        "line": ["roses", "violets", "roses"],
        "number": [1, 2, 1],
        "shout": ["ROSES", "VIOLETS", "ROSES"],
    }


def test_an_unknown_seed_type_is_a_typed_error() -> None:
    with pytest.raises(rl.ConfigValidationError) as info:
        rl.DatasetConfig.from_dict({"seed_config": {"source": {"seed_type": "lines", "path": "x"}}})
    assert info.value.issues[0].location == "seed_config"
