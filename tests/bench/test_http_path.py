"""The harness over real HTTP: mock servers on 127.0.0.1 in child processes, the openai client.

One small run of the scenario with the most moving parts (faults, a cancellation and a resume
against the same servers); its output must equal the in-process sequential oracle.
"""

from __future__ import annotations

from pathlib import Path

from rowloom.bench.runner import RunOptions, run_benchmark_async


async def test_hidden_waiter_over_http_resumes_and_matches_the_oracle(tmp_path: Path) -> None:
    options = RunOptions(
        "hidden_waiter",
        tmp_path,
        records=40,
        iterations=1,
        warmups=0,
        seed=3,
        http=True,
        knobs={"latency_ms": "2", "timeout_rate": "0", "buffer_size": "10"},
        timeline_cap=500,
    )
    report = await run_benchmark_async(options)
    assert report.passed, report.result["checks"]["problems"]
    it = report.result["iterations"][0]
    assert it["details"]["cancelled_segment"]["status"] == "cancelled"
    assert it["output_hashes"]["matches_oracle"]
    assert it["metrics"]["request_lease_attempt_mismatch"] == 0  # server counts this run only
    assert it["details"]["provider_stats"]["flaky"]["http_requests"] > 0
