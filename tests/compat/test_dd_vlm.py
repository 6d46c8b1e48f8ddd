"""Data Designer's long-document VLM recipes (02-09, configs as DD writes them): page images
from a seed column reach the model as DD sends them (`image_url` content parts before the
prompt text), over HTTP and on the simulated provider; the two recipes with custom columns run
once their function is named by its module."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.compat.test_dd_cli import BARE_FUNCTIONS, CONFIGS, _in_process
from tests.compat.vlm_seeds import seeds, write_seeds

from rowloom.config.errors import ConfigValidationError
from rowloom.interface.designer import Designer
from rowloom.interface.loading import load_config
from rowloom.models.clients.base import ChatRequest
from rowloom.models.clients.simulated import SimulatedModelClient
from rowloom.simulation.server import MockProviderServer, MockServerOptions


class SpyServer(MockProviderServer):
    """Records the user message content of each chat request."""

    contents: list[Any]

    async def _chat(self, request: Any) -> Any:
        body = await request.json()
        self.contents.append(body["messages"][-1]["content"])
        return await super()._chat(request)


def _project(tmp_path: Path) -> Path:
    work = tmp_path / "configs"
    shutil.copytree(CONFIGS, work)
    write_seeds(work)
    return work


def _pages(content: Any) -> tuple[list[str], str]:
    """The base64 PNGs of a request's image parts, in order, and its text (the last part)."""
    *images, text = content
    assert text["type"] == "text"
    urls = [part["image_url"]["url"] for part in images if part["type"] == "image_url"]
    assert len(urls) == len(images)
    prefix = "data:image/png;base64,"
    assert all(url.startswith(prefix) for url in urls)
    return [url.removeprefix(prefix) for url in urls], text["text"]


def _windows(stem: str) -> set[tuple[str, ...]]:
    return {tuple(json.loads(row["png_images_base64"])) for row in seeds()[stem]}


async def test_seed_page_images_go_to_the_model_as_data_designer_sends_them(
    tmp_path: Path,
) -> None:
    work = _project(tmp_path)
    async with SpyServer(MockServerOptions(latency_ms=0)) as server:
        server.contents = []
        providers = tmp_path / "providers.yaml"
        providers.write_text(f"providers:\n- {{name: vllm, endpoint: '{server.url}'}}\n")
        config = load_config(work / "07-multi-page-windowed-qa-sdg.yaml", providers=providers)
        result = await Designer(tmp_path / "out").acreate(config, 4, "windowed")
    assert len(result) == 4
    assert len(server.contents) == 4 * 3  # question, answer, quality_score per row
    sent = [_pages(content) for content in server.contents]
    windows = _windows("seed_windowed")
    assert {tuple(pages) for pages, _ in sent} <= windows
    assert all(len(pages) == 2 for pages, _ in sent)  # both pages of each window, in order
    assert all(text.strip() for _, text in sent)


async def test_an_empty_prompt_sends_only_the_page_on_the_simulated_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recipe 02 (OCR): `prompt: ''` with the page image, as DD sends it: [image, text '']."""
    work = _project(tmp_path)
    path = work / "02-nemotron-parse-ocr-sdg.yaml"
    path.write_text(
        path.read_text().replace(": parse_ocr_output", ": recipe_functions:parse_ocr_output")
    )
    seen: list[ChatRequest] = []
    chat = SimulatedModelClient.chat

    async def spy(self: SimulatedModelClient, request: ChatRequest) -> Any:
        seen.append(request)
        return await chat(self, request)

    monkeypatch.setattr(SimulatedModelClient, "chat", spy)
    result = await Designer(tmp_path / "out", simulate=True).acreate(path, 6, "ocr")
    assert len(result) == 6
    assert [m["role"] for m in seen[0].messages] == ["user"]
    sent = [_pages(request.messages[0]["content"]) for request in seen]
    assert all(text == "" for _, text in sent)
    pages = [json.loads(row["png_images_base64"]) for row in seeds()["seed_per_page"][:6]]
    assert sorted(p for p, _ in sent) == sorted(pages)  # ordered seed: the first six pages


@pytest.mark.parametrize("name", sorted(BARE_FUNCTIONS))
def test_bare_function_recipes_run_once_the_function_is_named(tmp_path: Path, name: str) -> None:
    work = _project(tmp_path)
    function = BARE_FUNCTIONS[name]
    path = work / f"{name}.yaml"
    with pytest.raises(ConfigValidationError, match="bare function name"):
        load_config(path)
    path.write_text(path.read_text().replace(f": {function}\n", f": recipe_functions:{function}\n"))
    home = tmp_path / "home"
    home.mkdir()
    args = ["create", path.name, "--simulate", "-n", "50", "--artifact-dir", str(tmp_path / "out")]
    done = _in_process(args, work, home, False)
    assert done.returncode == 0, done.stdout + done.stderr
    data = pd.read_parquet(tmp_path / "out" / name / "data")
    assert len(data) == 50 and not data.isna().any().any()
    if name.startswith("09"):
        weights = {"Answer Correctness": 0.35, "Training Signal Strength": 0.30,
                   "Question Quality": 0.15, "Visual Grounding": 0.10,
                   "Format Compliance": 0.10}  # fmt: skip
        for judge, score in zip(
            data["qa_quality_judge"], data["weighted_quality_score"], strict=True
        ):
            raw = sum(float(judge[k]["score"]) * w for k, w in weights.items())
            assert score == round(raw / 5.0, 2) and 0 <= score <= 1
    else:
        assert "raw_ocr_output" not in data.columns  # `drop: true`
        assert data["transcribed_texts"].map(type).eq(str).all()


def test_recipe_02_parses_nemotron_parse_markup() -> None:
    """The function the 02 config names: text and boxes from the model's markup."""
    from tests.compat.configs.recipe_functions import parse_ocr_output

    raw = (
        "<x_0.1><y_0.2>Revenue<x_0.5><y_0.3><class_Title>"
        "<x_0.1><y_0.4>Q1 12<x_0.9><y_0.5><class_Table>"
    )
    row = parse_ocr_output({"raw_ocr_output": raw})
    assert row["transcribed_texts"] == "Revenue\nQ1 12"
    assert [m["class_label"] for m in row["transcribed_texts__metadata"]] == ["Title", "Table"]
    assert row["transcribed_texts__metadata"][1]["bbox"] == {
        "x1": 0.1,
        "y1": 0.4,
        "x2": 0.9,
        "y2": 0.5,
    }


def test_a_relative_image_path_in_a_seed_is_read_beside_the_seed(tmp_path: Path) -> None:
    """Image paths relative to a seed in another folder than the config resolve there."""
    data = tmp_path / "data"
    (data / "pages").mkdir(parents=True)
    png = base64.b64decode(json.loads(seeds()["seed_per_page"][0]["png_images_base64"])[0])
    (data / "pages" / "p0.png").write_bytes(png)
    pd.DataFrame({"page": ["pages/p0.png"]}).to_parquet(data / "seed.parquet")
    config = tmp_path / "config.yaml"
    config.write_text(
        "seed_config: {source: {seed_type: local, path: data/seed.parquet}}\n"
        "columns:\n- {name: caption, column_type: llm_text, model_alias: nvidia-text, prompt: '',\n"
        "   multi_modal_context: [{column_name: page}]}\n"
    )
    result = Designer(tmp_path / "out", simulate=True).create(config, 2, "paths")
    assert len(result) == 2, result.summary.error_samples
    assert re.fullmatch(r"\S.*", result.to_pandas()["caption"][0])


def test_what_stays_refused(tmp_path: Path) -> None:
    """An empty prompt without images, an image context reading its own column, and (without
    --simulate) a provider nobody declares are typed errors naming the field."""
    work = _project(tmp_path)
    path = work / "09-frontier-judge-sdg.yaml"
    fixed = path.read_text().replace(
        ": compute_weighted_score\n", ": recipe_functions:compute_weighted_score\n"
    )
    path.write_text(fixed)
    with pytest.raises(ConfigValidationError) as info:
        load_config(path)
    assert info.value.codes == ("unknown_provider",) and "'frontier'" in str(info.value)
    page = "    multi_modal_context:\n    - column_name: png_images_base64\n"
    broken = fixed.replace(page, "    multi_modal_context:\n    - column_name: qa_quality_judge\n")
    path.write_text(broken)
    with pytest.raises(ConfigValidationError) as info:
        load_config(path, simulate=True)
    assert "self_reference" in info.value.codes
    text = work / "text.yaml"
    text.write_text("columns:\n- {name: a, column_type: llm_text, model_alias: x, prompt: ''}\n")
    with pytest.raises(ConfigValidationError, match="nothing to send"):
        load_config(text, simulate=True)


def test_recipe_03_reads_recipe_02s_output(tmp_path: Path) -> None:
    """The chain as the recipes document it: 02's dataset is 03's seed (a parquet glob)."""
    work = _project(tmp_path)
    ocr = work / "02-nemotron-parse-ocr-sdg.yaml"
    ocr.write_text(
        ocr.read_text().replace(": parse_ocr_output", ": recipe_functions:parse_ocr_output")
    )
    Designer(work / "artifacts", simulate=True).create(ocr, 6, "nemotron_parse_ocr")
    qa = work / "03-text-qa-sdg.yaml"
    qa.write_text(
        qa.read_text().replace(
            "path: nemotron_parse_ocr.parquet", "path: artifacts/nemotron_parse_ocr/data/*.parquet"
        )
    )
    data = Designer(tmp_path / "out", simulate=True).create(qa, 6, "text_qa").to_pandas()
    assert len(data) == 6 and not data["question_and_answer"].isna().any()
    assert {"transcribed_texts", "png_images_base64"} <= set(data.columns)
