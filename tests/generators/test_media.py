"""Image inputs (content parts from URLs, data URIs, base64, files, lists) and image columns
(files in the run folder), in process and over HTTP against the mock server."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigValidationError
from rowloom.config.media import ImageContext
from rowloom.errors import NonRetryableTaskError
from rowloom.generators.media import MediaStore, image_format, image_parts
from rowloom.interface.designer import Designer
from rowloom.simulation.media import simulated_png
from rowloom.simulation.server import MockProviderServer, MockServerOptions

PNG = simulated_png(0, "m", "a red square")
PNG_B64 = base64.b64encode(PNG).decode()


def test_simulated_pngs_are_valid_and_deterministic() -> None:
    assert image_format(PNG) == "png"
    assert simulated_png(0, "m", "a red square") == PNG
    assert simulated_png(0, "m", "a blue square") != PNG
    assert len(simulated_png(1, "m", "x", size=32)) > len(simulated_png(1, "m", "x", size=4))


def test_image_values_become_content_parts(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(PNG)
    media = MediaStore(tmp_path)
    row = {
        "url": "https://example.com/cat.jpg",
        "uri": f"data:image/png;base64,{PNG_B64}",
        "b64": PNG_B64,
        "file": "images/a.png",
        "many": json.dumps(["https://example.com/1.png", "images/a.png"]),
        "none": None,
    }
    contexts = [ImageContext(column_name=c) for c in row] + [
        ImageContext(column_name="url", detail="low")
    ]
    parts = image_parts(contexts, row, media)
    urls = [p["image_url"]["url"] for p in parts]
    inline = f"data:image/png;base64,{PNG_B64}"
    assert urls == [
        "https://example.com/cat.jpg",
        inline,
        inline,
        inline,
        "https://example.com/1.png",
        inline,
        "https://example.com/cat.jpg",
    ]
    assert all(p["type"] == "image_url" for p in parts)
    assert parts[-1]["image_url"]["detail"] == "low"
    forced = image_parts(
        [ImageContext(column_name="b64", data_type="base64", image_format="jpeg")], row, media
    )
    assert forced[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    for bad in ("not an image at all", base64.b64encode(b"plain text").decode(), "missing.png"):
        with pytest.raises(NonRetryableTaskError) as info:
            image_parts([ImageContext(column_name="x")], {"x": bad}, media)
        assert info.value.reason == "invalid_image"
    with pytest.raises(ValueError, match="image_format is required"):
        ImageContext(column_name="x", data_type="base64")


def vision_config(endpoint: str | None) -> DatasetConfig:
    provider: dict[str, Any] = (
        {"name": "p", "endpoint": endpoint}
        if endpoint
        else {"name": "p", "provider_type": "simulated", "simulation": {"latency_ms": 0}}
    )
    return DatasetConfig.from_dict(
        {
            "providers": [provider],
            "models": [
                {"alias": "artist", "model": "img", "provider": "p", "generation_kind": "image"},
                {"alias": "eye", "model": "vision", "provider": "p"},
            ],
            "columns": [
                {
                    "name": "animal",
                    "column_type": "sampler",
                    "sampler_type": "category",
                    "params": {"values": ["cat", "owl", "fox"]},
                },
                {
                    "name": "picture",
                    "column_type": "image",
                    "model_alias": "artist",
                    "prompt": "A watercolour {{ animal }}",
                },
                {
                    "name": "caption",
                    "column_type": "llm_text",
                    "model_alias": "eye",
                    "prompt": "Describe the picture of a {{ animal }}.",
                    "multi_modal_context": [{"modality": "image", "column_name": "picture"}],
                },
            ],
            "run": {"buffer_size": 3},
        }
    )


class SpyServer(MockProviderServer):
    """Records the content parts of each chat request."""

    contents: list[Any]

    async def _chat(self, request: Any) -> Any:
        body = await request.json()
        self.contents.append(body["messages"][-1]["content"])
        return await super()._chat(request)


async def test_image_column_files_and_vision_inputs_over_http(tmp_path: Path) -> None:
    async with SpyServer(MockServerOptions(latency_ms=0)) as server:
        server.contents = []
        result = await Designer(tmp_path).acreate(vision_config(server.url), 5, "zoo")
    run = tmp_path / "zoo"
    table = pq.read_table(sorted((run / "data").glob("*.parquet"))[0])
    pictures = result.to_pandas()["picture"].tolist()
    assert pictures == [f"images/picture/{i:08d}.png" for i in range(5)]
    for path, animal in zip(pictures, result.to_pandas()["animal"], strict=True):
        data = (run / path).read_bytes()
        assert data == simulated_png(0, "img", f"A watercolour {animal}")
    assert table.num_rows == 3
    assert len(server.contents) == 5
    for content in server.contents:
        image, text = content
        assert text["type"] == "text" and text["text"].startswith("Describe the picture")
        assert image["image_url"]["url"].startswith("data:image/png;base64,")
    sent = {base64.b64decode(c[0]["image_url"]["url"].split(",", 1)[1]) for c in server.contents}
    assert sent == {(run / p).read_bytes() for p in pictures}


async def test_preview_keeps_images_inline_and_kinds_are_checked() -> None:
    result = await Designer().apreview(vision_config(None), 2)
    assert all(v.startswith("data:image/png;base64,") for v in result.data["picture"])
    assert all(isinstance(v, str) and v for v in result.data["caption"])
    data = json.loads(vision_config(None).to_json())
    data["columns"][1]["model_alias"] = "eye"
    with pytest.raises(ConfigValidationError) as info:
        DatasetConfig.from_dict(data)
    assert info.value.codes == ("wrong_generation_kind",)
    data["columns"][1]["model_alias"] = "artist"
    data["columns"][2]["multi_modal_context"] = [{"column_name": "painting"}]
    with pytest.raises(ConfigValidationError) as info:
        DatasetConfig.from_dict(data)
    assert "unknown_reference" in info.value.codes


async def test_image_paths_are_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "photos").mkdir(parents=True)
    (project / "photos" / "owl.png").write_bytes(PNG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # rowloom runs from another folder
    async with SpyServer(MockServerOptions(latency_ms=0)) as server:
        server.contents = []
        data = json.loads(vision_config(server.url).to_json())
        data["columns"][0]["params"]["values"] = ["photos/owl.png"]
        del data["columns"][1]
        data["columns"][1]["multi_modal_context"][0]["column_name"] = "animal"
        (project / "config.yaml").write_text(json.dumps(data))
        result = await Designer().apreview(DatasetConfig.from_file(project / "config.yaml"), 2)
        assert len(result) == 2
        in_python = DatasetConfig.from_dict(data)  # no folder: relative to the working one
        missing = await Designer().apreview(in_python, 1)
    assert len(missing) == 0
    (sample,) = missing.summary.error_samples
    assert sample.reason == "invalid_image" and "photos/owl.png" in sample.message
    assert [c[0]["image_url"]["url"] for c in server.contents] == [
        f"data:image/png;base64,{PNG_B64}"
    ] * 2


def test_data_uris_are_checked_as_data_designer_checks_them() -> None:
    """A base64 data URI must be an image type, and the declared `image_format` (jpg is jpeg)."""
    jpeg = "data:image/jpeg;base64,/9j/4AAQ"
    row = {
        "png": f"data:image/png;base64,{PNG_B64}",
        "jpeg": jpeg,
        "bmp": "data:image/bmp;base64,Qk0=",
    }
    media = MediaStore(None)
    ok = image_parts([ImageContext(column_name="jpeg", image_format="jpg")], row, media)
    assert ok[0]["image_url"]["url"] == jpeg
    for column, fmt, message in (("png", "jpg", "does not match"), ("bmp", None, "unsupported")):
        with pytest.raises(NonRetryableTaskError, match=message) as info:
            image_parts([ImageContext(column_name=column, image_format=fmt)], row, media)
        assert info.value.reason == "invalid_image"
    as_url = ImageContext(column_name="bmp", data_type="url")  # sent as is, like any URL
    assert image_parts([as_url], row, media)[0]["image_url"]["url"] == row["bmp"]
