"""A custom column that decides at run time how many model calls a row needs (0, 1 or 3).

    .venv/bin/python examples/custom_dynamic.py [NUM_RECORDS]

Easy rows are answered without a model, medium rows with one call, hard rows with a draft,
a critique and a final answer. Every call is admitted and counted on its own; the scheduler
never reserves request capacity for a task up front.
"""

from __future__ import annotations

import sys
from typing import Any

import rowloom as rl
from rowloom.models.facade import ModelFacade


async def hint(row: dict[str, Any], models: ModelFacade) -> str:
    """0 calls for easy, 1 for medium, 3 for hard questions."""
    if row["difficulty"] == "easy":
        return f"Think about {row['topic']}."
    if row["difficulty"] == "medium":
        return await models.chat("writer", f"Give a one-line hint about {row['topic']}.")
    draft = await models.chat("writer", f"Draft a hint about {row['topic']}.")
    critique = await models.chat("writer", f"Critique this hint: {draft}")
    return await models.chat("writer", f"Rewrite the hint using the critique: {critique}")


def build_config() -> rl.DatasetConfig:
    return rl.DatasetConfig(
        providers=[
            rl.ModelProvider(
                name="sim", provider_type="simulated", simulation=rl.SimulationConfig(latency_ms=50)
            )
        ],
        models=[
            rl.ModelConfig(
                alias="writer", model="sim-writer", provider="sim", max_parallel_requests=16
            )
        ],
        columns=[
            rl.SamplerColumnConfig(
                name="topic",
                sampler_type="category",
                params={"values": ["tides", "glaciers", "dunes"]},
            ),
            rl.SamplerColumnConfig(
                name="difficulty",
                sampler_type="category",
                params={"values": ["easy", "medium", "hard"]},
            ),
            rl.CustomColumnConfig(
                name="hint",
                function=hint,
                required_columns=["topic", "difficulty"],
                model_aliases=["writer"],
            ),
        ],
        seed=3,
    )


def main() -> None:
    num_records = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    config = build_config()
    config.validate_static()
    result = rl.Designer("artifacts").create(config, num_records, name="custom_dynamic")
    df = result.to_pandas()
    calls = {"easy": 0, "medium": 1, "hard": 3}
    expected = sum(calls[d] for d in df["difficulty"])
    print(df.head().to_string())
    print(
        f"{len(df)} rows, {result.summary.request_attempts} model requests "
        f"(expected {expected} by difficulty); dataset in {result.data_dir}"
    )


if __name__ == "__main__":
    main()
