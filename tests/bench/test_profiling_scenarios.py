"""`profile_scale` on a small synthetic run folder: every column profiled, exports streamed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rowloom.bench.profiling import PROFILE_COLUMNS, ProfileScale
from rowloom.bench.scenario import IterationContext


def test_profile_scale_profiles_every_column_and_exports(tmp_path: Path) -> None:
    scenario = ProfileScale()
    knobs = scenario.resolve_knobs({"parts": "3"})
    work = tmp_path / "iter"
    work.mkdir()
    result = asyncio.run(scenario.run_iteration(IterationContext(3000, 7, knobs, False, work, 0)))
    assert result.status == "complete"
    assert result.metrics["profile_rows_per_second"] > 0
    for phase in ("profile", "export_jsonl", "export_parquet"):
        assert (
            result.metrics[f"{phase}_peak_rss_bytes"] >= result.metrics[f"{phase}_base_rss_bytes"]
        )
    run_dir = tmp_path / "profile-run-3000-3"
    assert len(list((run_dir / "data").glob("*.parquet"))) == 3
    assert len(PROFILE_COLUMNS) == 10
