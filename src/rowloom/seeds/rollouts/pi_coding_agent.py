"""Pi Coding Agent sessions (`~/.pi/agent/sessions`, `*.jsonl`): one row per file.

The first line is the `session` header (id, cwd, version, parent session); the entries after it
form a tree (`id`/`parentId`): the conversation is the path from the last entry back to the
root. Messages (`user`, `assistant` with text/thinking/toolCall blocks, `toolResult`,
`bashExecution` as a `bash` tool call and its result), summaries and displayed custom messages
(as system messages) become chat messages.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any

from rowloom.seeds.rollouts.common import (
    RolloutParseError,
    json_text,
    jsonl_objects,
    message,
    message_content,
    optional_str,
    require_str,
    rollout_row,
)

_log = logging.getLogger(__name__)


def handles(relative_path: str) -> bool:
    """Session files: `.jsonl`."""
    return PurePosixPath(relative_path).suffix == ".jsonl"


def parse(path: Path) -> list[dict[str, Any]]:
    """The session's row (none for an empty file)."""
    records = jsonl_objects(path)
    if not records:
        _log.warning("skipping empty Pi Coding Agent session file %s", path)
        return []
    header, entries = records[0], records[1:]
    if header.get("type") != "session":
        raise RolloutParseError("a Pi session must start with its session header")
    session = require_str(header.get("id"), "the Pi session header's id")
    walk = _Walk()
    for entry in _active_path(entries):
        walk.entry(entry)
    stamps = [s for s in (optional_str(e.get("timestamp")) for e in [header, *entries]) if s]
    meta: dict[str, Any] = {
        "record_count": len(records),
        "entry_types": sorted(walk.entry_types),
        "stop_reasons": walk.stop_reasons,
    }
    if header.get("version") is not None:
        meta["session_version"] = header["version"]
    if walk.models:
        meta["models_used"] = walk.models
    if _branches(entries):
        meta["has_branches"] = True
    if walk.bash_runs:
        meta["bash_execution_count"] = walk.bash_runs
    if parent := optional_str(header.get("parentSession")):
        meta["parent_session"] = parent
    cwd = optional_str(header.get("cwd"))
    return [
        rollout_row(
            trace_id=session,
            source_kind="pi_coding_agent",
            source_path=path,
            root_session_id=session,
            cwd=cwd,
            project_path=cwd,
            started_at=min(stamps) if stamps else None,
            ended_at=max(stamps) if stamps else None,
            messages=walk.messages,
            source_meta=meta,
        )
    ]


def _active_path(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """From the last entry up its parents to the root (a cycle ends the walk), oldest first."""
    by_id = {e["id"]: e for e in entries if isinstance(e.get("id"), str) and e["id"]}
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    current = entries[-1] if entries else None
    while current is not None:
        entry_id = current.get("id")
        if isinstance(entry_id, str):
            if entry_id in seen:
                break
            seen.add(entry_id)
        path.append(current)
        parent = current.get("parentId")
        current = None if parent is None else by_id.get(parent)
    return path[::-1]


def _branches(entries: list[dict[str, Any]]) -> bool:
    parents = [e.get("parentId") for e in entries]
    named = [p for p in parents if isinstance(p, str) and p]
    return len(named) != len(set(named))


class _Walk:
    """The messages and facts of the active path's entries."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.entry_types: set[str] = set()
        self.models: list[str] = []
        self.stop_reasons: list[str] = []
        self.bash_runs = 0

    def _note(self, values: list[str], value: Any) -> None:
        text = optional_str(value)
        if text and text not in values:
            values.append(text)

    def entry(self, entry: dict[str, Any]) -> None:
        kind = optional_str(entry.get("type")) or "unknown"
        self.entry_types.add(kind)
        if kind == "model_change":
            self._note(self.models, entry.get("modelId"))
        elif kind in ("compaction", "branch_summary"):
            if summary := optional_str(entry.get("summary")):
                self.messages.append(message("system", summary))
        elif kind == "custom_message":
            if entry.get("display"):
                self.messages.append(message("system", message_content(entry.get("content"))))
        elif kind == "message" and isinstance(entry.get("message"), dict):
            raw = entry["message"]
            role = optional_str(raw.get("role"))
            if role == "assistant":
                self._note(self.stop_reasons, raw.get("stopReason"))
                self._note(self.models, raw.get("model"))
            self.bash_runs += role == "bashExecution"
            self.messages.extend(_message(raw, optional_str(entry.get("id")) or ""))


def _message(raw: dict[str, Any], entry_id: str) -> list[dict[str, Any]]:
    role = optional_str(raw.get("role"))
    content = message_content(raw.get("content"))
    if role == "user":
        return [message("user", content)]
    if role == "assistant":
        return [_assistant(raw)]
    if role == "toolResult":
        call_id = require_str(raw.get("toolCallId"), "a Pi toolResult's toolCallId")
        return [message("tool", content, tool_call_id=call_id)]
    if role == "bashExecution":
        return _bash(raw, entry_id)
    if role == "custom":
        return [message("system", content)] if raw.get("display") else []
    if role in ("compactionSummary", "branchSummary"):
        summary = optional_str(raw.get("summary"))
        return [message("system", summary)] if summary else []
    return []


def _assistant(raw: dict[str, Any]) -> dict[str, Any]:
    said: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    blocks = raw.get("content")
    if isinstance(blocks, str):
        said.append(blocks)
    for block in blocks if isinstance(blocks, list) else ():
        if isinstance(block, str) and block:
            said.append(block)
        elif not isinstance(block, dict):
            continue
        elif block.get("type") == "text" and (words := optional_str(block.get("text"))):
            said.append(words)
        elif block.get("type") == "thinking" and (thought := optional_str(block.get("thinking"))):
            thoughts.append(thought)
        elif block.get("type") == "toolCall":
            function = {
                "name": block.get("name", ""),
                "arguments": json_text(block.get("arguments")),
            }
            calls.append({"id": block.get("id", ""), "type": "function", "function": function})
    reasoning = "\n\n".join(thoughts) or None
    return message("assistant", "\n\n".join(said), reasoning=reasoning, tool_calls=calls)


def _bash(raw: dict[str, Any], entry_id: str) -> list[dict[str, Any]]:
    if raw.get("excludeFromContext"):
        return []
    call_id = f"bash_{entry_id}" if entry_id else "bash_unknown"
    command = optional_str(raw.get("command")) or ""
    output = optional_str(raw.get("output")) or ""
    parts = [output] if output else []
    if raw.get("exitCode") is not None:
        parts.append(f"[exit code: {raw['exitCode']}]")
    function = {"name": "bash", "arguments": json_text({"command": command})}
    return [
        message(
            "assistant", "", tool_calls=[{"id": call_id, "type": "function", "function": function}]
        ),
        message("tool", "\n".join(parts), tool_call_id=call_id),
    ]
