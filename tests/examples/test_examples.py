"""The shipped examples run and do what their docstrings say."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import rowloom as rl

EXAMPLES = Path(__file__).parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_custom_dynamic_makes_zero_one_or_three_calls_per_row() -> None:
    example = load("custom_dynamic")
    config = example.build_config()
    config = config.model_copy(
        update={
            "providers": [
                rl.ModelProvider(
                    name="sim",
                    provider_type="simulated",
                    simulation=rl.SimulationConfig(latency_ms=0),
                )
            ]
        }
    )
    for engine in ("async", "sequential"):
        preview = rl.Designer(engine=engine).preview(config, 40)  # type: ignore[arg-type]
        calls = {"easy": 0, "medium": 1, "hard": 3}
        expected = sum(calls[d] for d in preview.data["difficulty"])
        assert preview.summary.request_attempts == expected
        assert set(preview.data["difficulty"]) == {"easy", "medium", "hard"}
        assert all(preview.data["hint"])


def test_qa_judge_example_validates() -> None:
    config = rl.DatasetConfig.from_yaml(EXAMPLES / "qa_judge.yaml")
    assert config.topological_order[-1] in ("verdict", "question_embedding")
    rl.DatasetConfig.from_yaml(EXAMPLES / "local_llama.yaml").validate_static()


def test_seed_from_folder_writes_questions_from_every_page() -> None:
    config = rl.DatasetConfig.from_yaml(EXAMPLES / "seed_from_folder.yaml")
    preview = rl.Designer().preview(config, 10)
    pages = {
        "returns.md",
        "shipping.md",
        "warranty.md",
        "account/password-reset.md",
        "account/delete-account.md",
    }
    assert list(preview.data) == ["relative_path", "file_name", "persona", "question", "answer"]
    first, second = preview.data["relative_path"][:5], preview.data["relative_path"][5:]
    assert set(first) == set(second) == pages  # each pass over the folder, shuffled
    assert all(preview.data["question"]) and all(preview.data["answer"])


def test_tool_use_example_calls_its_mcp_server() -> None:
    config = rl.DatasetConfig.from_yaml(EXAMPLES / "tool_use.yaml")
    sim = config.providers[0].model_copy(
        update={"simulation": rl.SimulationConfig(latency_ms=0, seed=3)}
    )
    preview = rl.Designer().preview(config.model_copy(update={"providers": [sim]}), 5)
    facts = {"france": "Paris", "japan": "Tokyo", "kenya": "Nairobi", "peru": "Lima",
             "canada": "Ottawa"}  # fmt: skip
    for country, question in zip(preview.data["country"], preview.data["question"], strict=True):
        assert facts[country] in question  # the tool's answer reached the model
    assert preview.summary.request_attempts == 10
