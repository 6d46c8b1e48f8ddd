"""Codex sessions (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`): one row per file.

`session_meta` gives the session id, cwd, branch and start; `response_item` records are the
conversation (messages, tool calls and their outputs; `reasoning` summaries and `agent_reasoning`
events become the next assistant message's reasoning).
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any

from rowloom.seeds.rollouts.common import (
    json_text,
    jsonl_objects,
    message,
    optional_str,
    require_str,
    rollout_row,
    text,
    time_bounds,
)

_log = logging.getLogger(__name__)
_CALLS = ("function_call", "custom_tool_call", "apply_patch_call")
_OUTPUTS = ("function_call_output", "custom_tool_call_output", "apply_patch_call_output")


def handles(relative_path: str) -> bool:
    """Rollout files: `rollout-*.jsonl`."""
    path = PurePosixPath(relative_path)
    return path.suffix == ".jsonl" and path.name.startswith("rollout-")


class _Session:
    """The messages of one rollout file as its records are read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[dict[str, Any]] = []
        self.pending: list[str] = []  # reasoning not yet attached to a message
        self.item_types: set[str] = set()

    def reasoning(self) -> str | None:
        joined = "\n\n".join(self.pending) or None
        self.pending.clear()
        return joined

    def item(self, payload: dict[str, Any]) -> None:
        kind = optional_str(payload.get("type")) or "unknown"
        self.item_types.add(kind)
        where = f"a Codex {kind} in {self.path}"
        if kind == "message":
            role = require_str(payload.get("role"), f"the role of {where}")
            thought = self.reasoning() if role == "assistant" else None
            if role != "assistant":
                self.pending.clear()
            self.messages.append(message(role, payload.get("content"), reasoning=thought))
        elif kind in _CALLS:
            arguments = (
                json_text(payload.get("arguments"))
                if "arguments" in payload
                else text(payload.get("input"))
            )
            call = {
                "id": require_str(payload.get("call_id"), f"the call_id of {where}"),
                "type": "function",
                "function": {
                    "name": require_str(payload.get("name"), f"the name of {where}"),
                    "arguments": arguments,
                },
            }
            thought = self.reasoning()
            self.messages.append(message("assistant", "", reasoning=thought, tool_calls=[call]))
        elif kind in _OUTPUTS:
            call_id = require_str(payload.get("call_id"), f"the call_id of {where}")
            self.messages.append(message("tool", payload.get("output"), tool_call_id=call_id))
        elif kind == "reasoning":
            summaries = payload.get("summary")
            for summary in summaries if isinstance(summaries, list) else ():
                if isinstance(summary, dict) and (said := optional_str(summary.get("text"))):
                    self.pending.append(said)
        else:
            _log.warning("skipping unrecognized Codex response_item type %r in %s", kind, self.path)


def parse(path: Path) -> list[dict[str, Any]]:
    """The session's row (none for an empty file)."""
    records = jsonl_objects(path)
    if not records:
        _log.warning("skipping empty Codex rollout file %s", path)
        return []
    session = _Session(path)
    stamps: list[str] = []
    kinds: set[str] = set()
    meta_record: dict[str, Any] = {}
    for record in records:
        kind = optional_str(record.get("type")) or "unknown"
        kinds.add(kind)
        if stamp := optional_str(record.get("timestamp")):
            stamps.append(stamp)
        payload = record.get("payload")
        if not isinstance(payload, dict):
            continue
        if kind == "session_meta":
            meta_record = payload
            if stamp := optional_str(payload.get("timestamp")):
                stamps.append(stamp)
        elif kind == "event_msg":
            said = optional_str(payload.get("text"))
            if optional_str(payload.get("type")) == "agent_reasoning" and said:
                session.pending.append(said)
        elif kind == "response_item":
            session.item(payload)
    session_id = optional_str(meta_record.get("id")) or path.stem
    meta: dict[str, Any] = {
        "record_count": len(records),
        "record_types": sorted(kinds),
        "response_item_types": sorted(session.item_types),
    }
    for name in ("originator", "cli_version", "model_provider", "source"):
        if value := optional_str(meta_record.get(name)):
            meta[name] = value
    if session.pending:
        meta["unattached_reasoning"] = list(session.pending)
    earliest, latest = time_bounds(stamps)
    cwd = optional_str(meta_record.get("cwd"))
    return [
        rollout_row(
            trace_id=session_id,
            source_kind="codex",
            source_path=path,
            root_session_id=session_id,
            cwd=cwd,
            project_path=cwd,
            git_branch=optional_str(meta_record.get("git_branch")),
            started_at=optional_str(meta_record.get("timestamp")) or earliest,
            ended_at=latest,
            messages=session.messages,
            source_meta=meta,
        )
    ]
