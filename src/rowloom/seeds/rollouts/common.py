"""What every agent-rollout format shares: the row (Data Designer's normalized rollout record),
chat messages in its shape, and the lenient value coercions its parsers use."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "ROLLOUT_COLUMNS",
    "RolloutParseError",
    "json_text",
    "jsonl_objects",
    "message",
    "message_content",
    "optional_str",
    "require_str",
    "rollout_row",
    "text",
    "time_bounds",
]

ROLLOUT_COLUMNS = (
    "trace_id", "source_kind", "source_path", "root_session_id", "agent_id", "is_sidechain",
    "cwd", "project_path", "git_branch", "started_at", "ended_at", "messages", "source_meta",
    "message_count", "tool_call_count", "final_assistant_message",
)  # fmt: skip
"""The seed's columns, in Data Designer's order."""

_ROLES = {"user", "assistant", "system", "tool"}


class RolloutParseError(ValueError):
    """A trace file that does not have its format's shape (the file is skipped)."""


def optional_str(value: Any) -> str | None:
    """None stays None; anything else becomes its text."""
    return None if value is None else value if isinstance(value, str) else str(value)


def require_str(value: Any, what: str) -> str:
    """`value` when it is a non-empty string, else a `RolloutParseError` naming `what`."""
    if not isinstance(value, str) or not value:
        raise RolloutParseError(f"expected a non-empty string for {what}, got {value!r}")
    return value


def json_text(value: Any) -> str:
    """A string as is, anything else as sorted JSON (None as `{}`): tool-call arguments."""
    if isinstance(value, str):
        return value
    return json.dumps(value if value is not None else {}, sort_keys=True)


def text(value: Any) -> str:
    """None as "", a string as is, anything else as `str()`."""
    return "" if value is None else value if isinstance(value, str) else str(value)


def message_content(value: Any) -> Any:
    """A raw message's content as a message takes it: None as "", text and lists as they are,
    anything else as JSON text."""
    if value is None:
        return ""
    return value if isinstance(value, str | list) else json_text(value)


def _block(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and "type" in value:
        return value
    if isinstance(value, dict) and "text" in value:
        return {"type": "text", "text": text(value["text"])}
    return {"type": "text", "text": text(value)}


def message(
    role: Any,
    content: Any,
    *,
    reasoning: str | None = None,
    tool_calls: Sequence[dict[str, Any]] = (),
    tool_call_id: str | None = None,
) -> dict[str, Any]:
    """A chat message: content as a list of typed blocks, optional fields only when set
    (`developer` is a system message)."""
    name = optional_str(role)
    name = "system" if name == "developer" else name
    if name not in _ROLES:
        raise RolloutParseError(f"unsupported message role {role!r}")
    blocks = [_block(b) for b in content] if isinstance(content, list) else []
    if content is not None and not isinstance(content, list):
        blocks = [_block(content)]
    out: dict[str, Any] = {"role": name, "content": blocks}
    if reasoning:
        out["reasoning_content"] = reasoning
    if tool_calls:
        out["tool_calls"] = list(tool_calls)
    if tool_call_id:
        out["tool_call_id"] = tool_call_id
    return out


def jsonl_objects(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (blank lines skipped)."""
    out: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RolloutParseError(f"invalid JSON on line {number}: {exc.msg}") from None
            if not isinstance(value, dict):
                kind = type(value).__name__
                raise RolloutParseError(f"line {number} is a JSON {kind}, not an object")
            out.append(value)
    return out


def _instant(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def time_bounds(timestamps: Iterable[str]) -> tuple[str | None, str | None]:
    """The earliest and latest ISO 8601 timestamps (as written; naive ones are UTC,
    unparseable ones ignored), or (None, None)."""
    parsed = [(t, s) for s in timestamps if (t := _instant(s)) is not None]
    if not parsed:
        return None, None
    return min(parsed, key=lambda p: p[0])[1], max(parsed, key=lambda p: p[0])[1]


def _final_assistant_text(messages: Sequence[dict[str, Any]]) -> str | None:
    for m in reversed(messages):
        if m["role"] != "assistant":
            continue
        parts = [b["text"] for b in m["content"] if isinstance(b.get("text"), str) and b["text"]]
        if parts:
            return "\n\n".join(parts)
    return None


def rollout_row(
    *,
    trace_id: str,
    source_kind: str,
    source_path: Path,
    root_session_id: str,
    messages: list[dict[str, Any]],
    source_meta: dict[str, Any],
    agent_id: str | None = None,
    is_sidechain: bool = False,
    cwd: str | None = None,
    project_path: str | None = None,
    git_branch: str | None = None,
    started_at: str | None = None,
    ended_at: str | None = None,
) -> dict[str, Any]:
    """One seed row, with the derived counts and the final assistant text."""
    return {
        "trace_id": trace_id,
        "source_kind": source_kind,
        "source_path": str(source_path),
        "root_session_id": root_session_id,
        "agent_id": agent_id,
        "is_sidechain": is_sidechain,
        "cwd": cwd,
        "project_path": project_path,
        "git_branch": git_branch,
        "started_at": started_at,
        "ended_at": ended_at,
        "messages": messages,
        "source_meta": source_meta,
        "message_count": len(messages),
        "tool_call_count": sum(len(m.get("tool_calls", ())) for m in messages),
        "final_assistant_message": _final_assistant_text(messages),
    }
