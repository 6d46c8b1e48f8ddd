"""Result objects as a user meets them in a REPL: short reprs, and a run folder opened later."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.interface.cli_support import failing_every_other_row

from rowloom.config.dataset import DatasetConfig
from rowloom.errors import RunFolderError
from rowloom.interface.designer import Designer
from rowloom.interface.results import DatasetResult


def test_reprs_are_short_and_a_run_folder_opens_later(tmp_path: Path) -> None:
    config = DatasetConfig.from_yaml(failing_every_other_row(tmp_path / "ratio.yaml"))
    designer = Designer(tmp_path)
    preview = designer.preview(config, 4)
    text = repr(preview)
    assert text.startswith("PreviewResult(summary=RunSummary(") and "capacity" not in text
    created = designer.create(config, 12, "ratio")
    assert "capacity_plan" not in repr(created) and len(repr(created)) < 400
    assert "/12 rows, dropped {" in repr(created.summary)  # rows, drops by reason at a glance
    opened = DatasetResult.open(tmp_path / "ratio")
    assert opened.summary.rows_written == created.summary.rows_written
    assert opened.summary.dropped_rows == created.summary.dropped_rows
    assert opened.to_pandas().shape[0] == created.summary.rows_written
    assert opened.capacity_plan == created.capacity_plan
    with pytest.raises(RunFolderError, match="not a run folder"):
        DatasetResult.open(tmp_path)
