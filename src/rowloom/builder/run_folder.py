"""What `create` does with the run folder it is pointed at: never delete without a flag.

- An empty folder, a missing one, or one left before its manifest existed: a new run.
- A folder holding a run (finished or stopped), without a flag: `RunFolderError` naming
  `--resume` and `--overwrite`; nothing is touched.
- `overwrite`: the old run folder is moved aside to `NAME.replaced-<UTC timestamp>` (kept
  whole), then a new run starts.
- `resume`: with nothing to resume, a new run starts (and says so). Otherwise the run
  continues with its own `buffer_size`, regenerating only missing row groups; a larger
  `num_records` extends it (every finished row group is kept as written, a short last one
  too: the new rows start new row groups); a smaller one is refused; a config that changed
  in fields that determine generated values (columns, models' ids and parameters, seeds) is
  refused naming those fields, while changes that do not (provider endpoints and keys,
  concurrency, timeouts, run settings) are accepted.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rowloom.builder.storage import Manifest, ResumeMode, RunStorage
from rowloom.config.diff import config_differences
from rowloom.errors import ResumeError, RunFolderError

OPERATIONAL_FIELDS = (
    "providers",
    "providers.*",
    "models.*.provider",
    "models.*.max_parallel_requests",
    "models.*.limit_rule",
    "models.*.skip_health_check",
    "models.*.price",
    "models.*.price.*",
    "models.*.inference_parameters.timeout",
    "models.*.inference_parameters.extra_headers",
    "models.*.inference_parameters.extra_headers.*",
    "models.*.extra_headers",
    "models.*.extra_headers.*",
    "run",
    "run.*",
)
"""Config fields a resumed run may change: they do not change the values generated."""


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What one `create` call asks of its run folder."""

    fingerprint: str
    num_records: int
    buffer_size: int
    output_columns: list[str]
    config: Mapping[str, Any]
    resume: ResumeMode = False
    overwrite: bool = False


@dataclass(slots=True)
class OpenedRun:
    """The run as opened: finished row groups, its row-group size, and what happened."""

    done: set[int]
    buffer_size: int
    notes: list[str] = field(default_factory=list)
    replaced: Path | None = None
    breaks: tuple[int, ...] = ()
    """The run's `RowGroupPlan.breaks` (sizes it had when extended with a short last group)."""


def open_run(storage: RunStorage, request: RunRequest, *, settle: bool = True) -> OpenedRun:
    """Prepare `storage.run_dir` for `request` (see the module docstring); raises
    `RunFolderError` (or its `ResumeError`) before anything is changed when it must refuse.
    With `settle=False` a new run's config and manifest may still be being saved when this
    returns (see `RunStorage.start`)."""
    try:
        existing = storage.load_manifest()
    except ResumeError:
        if not request.overwrite:
            raise
        replaced = storage.move_aside(_stamp())
        notes = [f"moved the unreadable run aside to {replaced}"]
        opened = _fresh(storage, request, notes, settle)
        opened.replaced = replaced
        return opened
    if existing is None:
        notes = [f"nothing to resume in {storage.run_dir}; started a new run"]
        return _fresh(storage, request, notes if request.resume else [], settle)
    if request.overwrite:
        replaced = storage.move_aside(_stamp())
        opened = _fresh(storage, request, [f"moved the previous run to {replaced}"], settle)
        opened.replaced = replaced
        return opened
    if not request.resume:
        raise RunFolderError(
            f"{storage.run_dir} holds {_describe(existing)}; add --resume to continue it, or "
            f"--overwrite to start over (the old run is kept as "
            f"{storage.run_dir.name}.replaced-<time>)"
        )
    return _continue(storage, request, existing)


def _fresh(storage: RunStorage, request: RunRequest, notes: list[str], settle: bool) -> OpenedRun:
    storage.start(
        Manifest(
            request.fingerprint, request.num_records, request.buffer_size, request.output_columns
        ),
        request.config,
        settle=settle,
    )
    return OpenedRun(set(), request.buffer_size, notes)


def _continue(storage: RunStorage, request: RunRequest, existing: Manifest) -> OpenedRun:
    notes: list[str] = []
    if existing.config_fingerprint != request.fingerprint:
        notes.append(_check_config(storage, request))
        existing.config_fingerprint = request.fingerprint
    if request.num_records < existing.num_records:
        raise ResumeError(
            f"cannot resume {storage.run_dir}: it is a run of {existing.num_records} rows; "
            f"-n {request.num_records} is smaller (give -n {existing.num_records} or more)"
        )
    buffer = existing.buffer_size
    if buffer != request.buffer_size:
        notes.append(f"resumed with the run's own buffer_size {buffer}")
    if request.num_records > existing.num_records:
        plan = existing.plan().extended(request.num_records)
        notes.append(f"extended the run from {existing.num_records} to {request.num_records} rows")
        existing.num_records = request.num_records
        existing.row_group_breaks = list(plan.breaks)
    done = storage.resume(existing, request.config)
    saved = sum(existing.row_groups[rg].rows for rg in done)
    notes.append(f"resumed: {len(done)} row groups ({saved} rows) kept")
    return OpenedRun(done, buffer, notes, breaks=tuple(existing.row_group_breaks))


def _check_config(storage: RunStorage, request: RunRequest) -> str:
    """Refuse a config change that alters generated values; describe an accepted one."""
    saved = storage.read_saved_config()
    if saved is None:
        raise ResumeError(
            f"cannot resume {storage.run_dir}: the config changed since the run started (its "
            "folder keeps no config.yaml to compare); use --overwrite to start over, or another "
            "--name"
        )
    changed = config_differences(saved, request.config)
    values = [path for path in changed if not _operational(path)]
    if values:
        shown = ", ".join(values[:8]) + (f" and {len(values) - 8} more" if len(values) > 8 else "")
        raise ResumeError(
            f"cannot resume {storage.run_dir}: the config changed in fields that change the "
            f"generated values ({shown}); its finished rows were made with the old ones. Use "
            "--overwrite to start over (the old run is kept aside), or another --name"
        )
    return "the config changed only in " + ", ".join(changed[:8]) + "; resumed"


def _operational(path: str) -> bool:
    bare = path.split(" (")[0]
    return any(fnmatch.fnmatchcase(bare, pattern) for pattern in OPERATIONAL_FIELDS)


def _describe(manifest: Manifest) -> str:
    rows = sum(r.rows for r in manifest.row_groups.values())
    if manifest.status == "complete":
        return f"a finished run ({rows} of {manifest.num_records} rows)"
    if len(manifest.row_groups) == manifest.plan().count:  # finished, some rows dropped
        return f"a finished run ({rows} of {manifest.num_records} rows; the rest were dropped)"
    return f"a stopped run ({rows} of {manifest.num_records} rows saved)"


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
