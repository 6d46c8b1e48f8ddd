"""Agent rollout seeds (`seed_type: agent_rollout`, Data Designer's definition): the session
files of a coding agent (Claude Code, Codex, Hermes Agent, Pi Coding Agent) or ATIF
trajectories under a folder, one row per session with the conversation as chat messages.

The files are those under the folder (recursively unless `recursive: false`; hidden ones
skipped) whose name matches `file_pattern`, then those the format reads (e.g. not Claude's
`history.jsonl`; others are skipped with a warning). A file that does not have its format's
shape is skipped with a warning, as Data Designer does; no file matching, or no row from any
file, is a typed error before any model call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from rowloom.config.seed import AgentRolloutSeedSource
from rowloom.seeds.blocks import TableBlocks
from rowloom.seeds.errors import seed_error
from rowloom.seeds.files import match_files
from rowloom.seeds.folders import list_files
from rowloom.seeds.rollouts import atif, claude_code, codex, hermes_agent, pi_coding_agent
from rowloom.seeds.rollouts.common import ROLLOUT_COLUMNS, RolloutParseError

__all__ = ["ROLLOUT_COLUMNS", "rollout_blocks", "rollout_rows"]

_log = logging.getLogger(__name__)

Parser = Callable[[Path], list[dict[str, Any]]]
Predicate = Callable[[str], bool]
_TYPES = {"is_sidechain": pa.bool_(), "message_count": pa.int64(), "tool_call_count": pa.int64()}
_NESTED = ("messages", "source_meta")


def _parser(source: AgentRolloutSeedSource, root: Path) -> tuple[Predicate, Parser, Predicate]:
    """Which files the format reads, how, and which of the others deserve a warning."""
    if source.format == "claude_code":
        claude = claude_code.session_index(root, source.recursive)
        return claude_code.handles, lambda path: claude_code.parse(path, claude), _always
    if source.format == "hermes_agent":
        hermes = hermes_agent.session_index(root, source.recursive)
        return (
            hermes_agent.handles,
            lambda path: hermes_agent.parse(path, hermes),
            hermes_agent.warns,
        )
    module = {"codex": codex, "atif": atif, "pi_coding_agent": pi_coding_agent}[source.format]
    return module.handles, module.parse, _always


def _always(relative_path: str) -> bool:
    return True


def _root(source: AgentRolloutSeedSource, base_dir: Path | None) -> Path:
    root = Path(os.path.expanduser(source.folder))
    if base_dir is not None and not root.is_absolute():
        root = base_dir / root
    root = root.resolve()
    if not root.is_dir():
        raise seed_error("seed_not_found", "source.path", f"folder {str(root)!r} does not exist")
    return root


def rollout_rows(
    source: AgentRolloutSeedSource, base_dir: Path | None = None
) -> list[dict[str, Any]]:
    """One row per session file (a relative `path` is read from `base_dir`)."""
    root = _root(source, base_dir)
    handles, parse, warns = _parser(source, root)
    matched = match_files(
        list_files(root, source.recursive, source.pattern.startswith(".")), source.pattern
    )
    if not matched:
        where = "under" if source.recursive else "directly in"
        raise seed_error(
            "seed_no_files",
            "source.file_pattern",
            f"no file matches {source.pattern!r} {where} {str(root)!r}",
        )
    rows: list[dict[str, Any]] = []
    for relative in matched:
        if not handles(relative):
            if warns(relative):
                _log.warning("skipping %s: not a %s session file", relative, source.format)
            continue
        try:
            rows.extend(parse(root / relative))
        except (RolloutParseError, UnicodeDecodeError) as exc:
            _log.warning("skipping malformed %s file %s: %s", source.format, relative, exc)
        except OSError as exc:
            raise seed_error(
                "unreadable_seed",
                "source.path",
                f"cannot read {str(root / relative)!r}: {exc.strerror}",
            ) from None
    if not rows:
        raise seed_error(
            "empty_seed",
            "source",
            f"no {source.format} session in {str(root)!r} could be read (see the warnings)",
        )
    return rows


def _column(name: str, values: list[Any]) -> pa.Array:
    """Nested columns keep their structure when one Arrow type holds every row's value (as
    Data Designer's are lists and dicts), else they hold each value as JSON text."""
    if name not in _NESTED:
        return pa.array(values, _TYPES.get(name, pa.string()))
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _log.warning(
            "agent rollout column %r is kept as JSON text: its values differ in shape (%s)",
            name,
            exc,
        )
        return pa.array(
            [orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode() for v in values], pa.string()
        )


def rollout_blocks(source: AgentRolloutSeedSource, base_dir: Path | None = None) -> TableBlocks:
    """The rollout rows as a seed."""
    rows = rollout_rows(source, base_dir)
    columns = {name: _column(name, [row[name] for row in rows]) for name in ROLLOUT_COLUMNS}
    return TableBlocks(pa.table(columns))
