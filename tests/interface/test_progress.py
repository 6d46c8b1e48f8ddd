"""Live progress counts rows as they finish (not only when their row group is written), so
the rate and ETA show up long before the first checkpoint; dropped rows count as finished."""

from __future__ import annotations

from pathlib import Path

from tests.interface.cli_support import failing_every_other_row

from rowloom.builder.builder import RunMonitor
from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer
from rowloom.interface.progress import ProgressDisplay


class Recorder(RunMonitor):
    """Keeps (finished, written) at every report of finished rows."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []
        self.headlines: list[str] = []

    def on_rows_finished(self, rows: int) -> None:
        super().on_rows_finished(rows)
        self.seen.append((self.rows_finished, self.rows_written))
        if len(self.seen) == 10:
            self.headlines.append(ProgressDisplay(self, mode="quiet").headline())


def test_rows_count_as_they_finish_before_their_row_group_is_written(tmp_path: Path) -> None:
    config = DatasetConfig.from_yaml(failing_every_other_row(tmp_path / "ratio.yaml"))
    monitor = Recorder()
    result = Designer(tmp_path).create(
        config.model_copy(update={"run": config.run_config.model_copy(update={"buffer_size": 60})}),
        60,
        "progress",
        monitor=monitor,
    )
    assert result.summary.rows_written < 60  # some rows were dropped: they count as finished
    assert monitor.rows_finished == 60 and monitor.rows_written == result.summary.rows_written
    before_checkpoint = [finished for finished, written in monitor.seen if written == 0]
    assert before_checkpoint and max(before_checkpoint) == 60  # all counted before the write
    headline = monitor.headlines[0]
    assert headline.startswith("rows ") and "(0 written)" in headline
    assert "ETA --" not in headline
