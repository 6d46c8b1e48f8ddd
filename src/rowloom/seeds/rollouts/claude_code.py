"""Claude Code sessions (`~/.claude/projects/<project>/<session>.jsonl`): one row per file.

Each line is a record; `user` and `assistant` records carry a `message` whose content blocks
become chat messages (`thinking` -> reasoning, `tool_use` -> tool calls, `tool_result` -> tool
messages). `sessions-index.json` files under the folder add the project path, summary and
first prompt of the sessions they list.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any

from rowloom.seeds.rollouts.common import (
    RolloutParseError,
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


def handles(relative_path: str) -> bool:
    """Session logs: `.jsonl`, not `history.jsonl`, not under a `tool-results` folder."""
    path = PurePosixPath(relative_path)
    return (
        path.suffix == ".jsonl"
        and "tool-results" not in path.parts
        and path.name != "history.jsonl"
    )


def session_index(root: Path, recursive: bool) -> dict[str, dict[str, Any]]:
    """The entries of every `sessions-index.json` by session id (malformed ones skipped)."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(
        root.rglob("sessions-index.json") if recursive else root.glob("sessions-index.json")
    ):
        try:
            listed = json.loads(path.read_text(encoding="utf-8")).get("entries", [])
            if not isinstance(listed, list):
                raise RolloutParseError("no 'entries' list")
        except (RolloutParseError, ValueError, AttributeError, OSError) as exc:
            _log.warning("skipping malformed Claude sessions index %s: %s", path, exc)
            continue
        for entry in listed:
            if isinstance(entry, dict) and (sid := optional_str(entry.get("sessionId"))):
                entries[sid] = entry
    return entries


def parse(path: Path, index: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The session's row (none for an empty file)."""
    records = jsonl_objects(path)
    if not records:
        _log.warning("skipping empty Claude Code trace file %s", path)
        return []
    messages: list[dict[str, Any]] = []
    stamps: list[str] = []
    versions: set[str] = set()
    kinds: set[str] = set()
    first: dict[str, str | None] = dict.fromkeys(("sessionId", "agentId", "cwd", "gitBranch"))
    sidechain = False
    for record in records:
        kinds.add(str(record.get("type", "unknown")))
        if stamp := optional_str(record.get("timestamp")):
            stamps.append(stamp)
        for key, seen in first.items():
            first[key] = seen or optional_str(record.get(key))
        if version := optional_str(record.get("version")):
            versions.add(version)
        sidechain = sidechain or bool(record.get("isSidechain"))
        if record.get("type") == "assistant":
            messages.extend(_assistant(record))
        elif record.get("type") == "user":
            messages.extend(_user(record))
    session = first["sessionId"] or path.stem
    entry = index.get(session, {})
    agent = first["agentId"]
    meta: dict[str, Any] = {"record_count": len(records), "record_types": sorted(kinds)}
    if versions:
        meta["claude_versions"] = sorted(versions)
    for source, target in (("summary", "summary"), ("firstPrompt", "first_prompt")):
        if value := optional_str(entry.get(source)):
            meta[target] = value
    started, ended = time_bounds(stamps)
    return [
        rollout_row(
            trace_id=f"{session}:{agent}" if agent else session,
            source_kind="claude_code",
            source_path=path,
            root_session_id=session,
            agent_id=agent,
            is_sidechain=sidechain,
            cwd=first["cwd"],
            project_path=optional_str(entry.get("projectPath")) or first["cwd"],
            git_branch=first["gitBranch"],
            started_at=started,
            ended_at=ended,
            messages=messages,
            source_meta=meta,
        )
    ]


def _payload(record: dict[str, Any]) -> dict[str, Any]:
    payload = record.get("message")
    if not isinstance(payload, dict):
        raise RolloutParseError(f"a Claude {record.get('type')} record has no message payload")
    return payload


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, list):
        return [b if isinstance(b, dict) else {"type": "text", "text": text(b)} for b in content]
    return [content] if isinstance(content, dict) else [{"type": "text", "text": text(content)}]


def _content_block(block: dict[str, Any]) -> dict[str, Any]:
    kind = optional_str(block.get("type"))
    if kind in ("text", "input_text", "output_text") and "text" in block:
        return {"type": "text", "text": text(block.get("text"))}
    if kind is not None:
        return block
    return {"type": "text", "text": text(block.get("text", block))}


def _tool_result(block: dict[str, Any]) -> dict[str, Any]:
    call = require_str(block.get("tool_use_id"), "a Claude tool_result's tool_use_id")
    return message("tool", block.get("content"), tool_call_id=call)


def _assistant(record: dict[str, Any]) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in _blocks(_payload(record).get("content")):
        kind = optional_str(block.get("type"))
        if kind == "thinking":
            thought = optional_str(block.get("thinking")) or optional_str(block.get("text"))
            if thought:
                reasoning.append(thought)
        elif kind == "tool_use":
            name = require_str(block.get("name"), "a Claude tool_use's name")
            call = {"name": name, "arguments": json_text(block.get("input"))}
            call_id = require_str(block.get("id"), "a Claude tool_use's id")
            calls.append({"id": call_id, "type": "function", "function": call})
        elif kind == "tool_result":  # Claude Code nests some tool results in assistant records
            results.append(_tool_result(block))
        else:
            content.append(_content_block(block))
    out = []
    if content or reasoning or calls:
        thought = "\n\n".join(reasoning) or None
        out.append(message("assistant", content, reasoning=thought, tool_calls=calls))
    return out + results


def _user(record: dict[str, Any]) -> list[dict[str, Any]]:
    content = _payload(record).get("content")
    if isinstance(content, dict) and optional_str(content.get("type")) == "tool_result":
        return [_tool_result(content)]
    if not isinstance(content, list):
        return [message("user", content)]
    said: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in _blocks(content):
        if optional_str(block.get("type")) == "tool_result":
            results.append(_tool_result(block))
        else:
            said.append(_content_block(block))
    return ([message("user", said)] if said else []) + results
