"""The benchmark harness behind `rowloom bench` (see docs/benchmarks.md).

Entry points: `rowloom.bench.runner.run_benchmark(RunOptions)` (one scenario: `result.json`,
`timeline.csv`, `summary.md`), `rowloom.bench.compare.run_compare(CompareOptions)` (two git
refs, paired A B A B, gates), `rowloom.bench.smoke.run_smoke(out)`; the scenarios are in
`rowloom.bench.registry.SCENARIOS`.
"""
