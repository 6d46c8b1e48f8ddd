"""Publish a run's dataset to the Hugging Face Hub (`rowloom push`).

The dataset goes up as parquet shards with one unified schema (an export, so parts written
with differing types still load as one table), with a generated dataset card as `README.md`
and the run's `profile.json` and secret-free `config.yaml` beside it, in one commit through
`huggingface_hub`. The token comes from `--token` or `HF_TOKEN` (as `huggingface_hub` reads
it) and never appears in output; `HF_ENDPOINT` points the client at another Hub.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rowloom.builder.storage import RunStorage
from rowloom.profile.card import dataset_card
from rowloom.profile.dataset import PROFILE_FILE, read_profile
from rowloom.profile.export import ExportSpec, export_run

SHARD_ROWS = 500_000


class PushError(RuntimeError):
    """The Hub refused the upload, or `huggingface_hub` is missing."""


@dataclass(frozen=True)
class PushResult:
    """Where the dataset went."""

    repo_id: str
    url: str
    files: list[str]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rowloom")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    license_id: str = "other",
    commit_message: str | None = None,
) -> PushResult:
    """Upload the run's dataset, card, profile and config to dataset repo `repo_id`."""
    try:
        from huggingface_hub import CommitOperationAdd, HfApi
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise PushError("publishing needs huggingface_hub: pip install huggingface_hub") from exc
    run_dir = Path(run_dir)
    storage = RunStorage(run_dir)
    manifest: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text("utf-8"))
    card = dataset_card(
        name=repo_id.split("/")[-1],
        manifest=manifest,
        config=storage.read_saved_config(),
        profile=read_profile(run_dir),
        license_id=license_id,
        rowloom_version=_version(),
    )
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    with tempfile.TemporaryDirectory(prefix="rowloom-push-") as tmp:
        shards = export_run(
            ExportSpec(
                run_dir, Path(tmp) / "train.parquet", "parquet", max_rows_per_file=SHARD_ROWS
            )
        )
        operations = [
            CommitOperationAdd(f"data/train-{i:05d}-of-{len(shards):05d}.parquet", str(p))
            for i, p in enumerate(shards)
        ]
        operations.append(CommitOperationAdd("README.md", card.encode("utf-8")))
        for extra in (run_dir / PROFILE_FILE, storage.config_path):
            if extra.is_file():
                operations.append(CommitOperationAdd(f"rowloom/{extra.name}", str(extra)))
        try:
            # private=None keeps the namespace's default visibility
            url = api.create_repo(
                repo_id, repo_type="dataset", private=True if private else None, exist_ok=True
            )
            api.create_commit(
                repo_id,
                operations,
                repo_type="dataset",
                commit_message=commit_message or f"rowloom: {manifest.get('rows_written')} rows",
            )
        except HfHubHTTPError as exc:
            raise PushError(f"the Hub refused the upload to {repo_id}: {exc}") from None
    return PushResult(repo_id, str(url), [op.path_in_repo for op in operations])
