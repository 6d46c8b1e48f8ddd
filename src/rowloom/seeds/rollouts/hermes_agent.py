"""Hermes Agent sessions (`~/.hermes/sessions`): one row per CLI session log (`session_*.json`:
`messages`, `system_prompt`, `tools`, `session_start`, `last_updated`) or gateway transcript
(`*.jsonl`, one message per line; `sessions.json` files map session keys to session ids and may
carry their token counts, cost and origin)."""

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
    message_content,
    optional_str,
    require_str,
    rollout_row,
)

_log = logging.getLogger(__name__)
_GATEWAY_FIELDS = (
    "session_key", "display_name", "platform", "chat_type", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "total_tokens", "last_prompt_tokens",
    "estimated_cost_usd", "cost_status", "memory_flushed",
)  # fmt: skip


def handles(relative_path: str) -> bool:
    """CLI logs (`session_*.json`) and gateway transcripts (`*.jsonl`)."""
    path = PurePosixPath(relative_path)
    if path.suffix == ".json":
        return path.name.startswith("session_") and path.name != "sessions.json"
    return path.suffix == ".jsonl"


def warns(relative_path: str) -> bool:
    """Hermes writes other JSON files beside its sessions: skipping them is no news."""
    path = PurePosixPath(relative_path)
    return path.suffix != ".json" or path.name.startswith("session_")


def session_index(root: Path, recursive: bool) -> dict[str, dict[str, Any]]:
    """`sessions.json` entries by session id (a string entry is `{session_key: id}`)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("sessions.json") if recursive else root.glob("sessions.json")):
        try:
            listed = _json_object(path)
        except (RolloutParseError, OSError) as exc:
            _log.warning("skipping malformed Hermes sessions index %s: %s", path, exc)
            continue
        for key, entry in listed.items():
            if isinstance(entry, str):
                if entry:
                    out[entry] = {"session_key": key}
            elif isinstance(entry, dict) and (sid := optional_str(entry.get("session_id"))):
                out[sid] = {"session_key": key, **entry}
    return out


def _json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RolloutParseError(f"invalid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise RolloutParseError(f"a JSON {type(value).__name__}, not an object")
    return value


def parse(path: Path, index: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The session's row (none for an empty transcript)."""
    if path.suffix == ".json":
        return [_cli_log(path)]
    raw = jsonl_objects(path)
    if not raw:
        _log.warning("skipping empty Hermes Agent transcript file %s", path)
        return []
    entry = index.get(path.stem, {})
    meta: dict[str, Any] = {
        "record_count": len(raw),
        "session_format": "gateway_transcript",
        "finish_reasons": _finish_reasons(raw),
        "tool_names_used": _unique(_call_names(raw)),
    }
    meta.update({k: entry[k] for k in _GATEWAY_FIELDS if k in entry})
    if isinstance(entry.get("origin"), dict) and entry["origin"]:
        meta["origin"] = entry["origin"]
    return [
        rollout_row(
            trace_id=path.stem,
            source_kind="hermes_agent",
            source_path=path,
            root_session_id=path.stem,
            started_at=optional_str(entry.get("created_at")),
            ended_at=optional_str(entry.get("updated_at")),
            messages=_messages(raw),
            source_meta=meta,
        )
    ]


def _cli_log(path: Path) -> dict[str, Any]:
    payload = _json_object(path)
    raw = payload.get("messages")
    if not isinstance(raw, list):
        raise RolloutParseError("a Hermes CLI session without a 'messages' list")
    system = optional_str(payload.get("system_prompt"))
    session = optional_str(payload.get("session_id")) or path.stem.removeprefix("session_")
    tools = payload.get("tools")
    names = _unique(_function_names(tools if isinstance(tools, list) else []))
    meta: dict[str, Any] = {
        "record_count": len(raw),
        "session_format": "cli_session_log",
        "available_tool_count": len(names),
        "available_tool_names": names,
        "finish_reasons": _finish_reasons(raw),
    }
    for name in ("model", "base_url", "platform"):
        if value := optional_str(payload.get(name)):
            meta[name] = value
    if isinstance(payload.get("system_prompt"), str) and payload["system_prompt"]:
        meta["has_system_prompt"] = True
        meta["system_prompt_chars"] = len(payload["system_prompt"])
    if isinstance(tools, list) and tools:
        meta["tools"] = json_text(tools)
    return rollout_row(
        trace_id=session,
        source_kind="hermes_agent",
        source_path=path,
        root_session_id=session,
        started_at=optional_str(payload.get("session_start")),
        ended_at=optional_str(payload.get("last_updated")),
        messages=_messages(raw, system),
        source_meta=meta,
    )


def _messages(raw: list[Any], system: str | None = None) -> list[dict[str, Any]]:
    out = [message("system", system)] if system else []
    for number, item in enumerate(raw, start=1):
        where = f"Hermes message #{number}"
        if not isinstance(item, dict):
            raise RolloutParseError(f"{where} is a {type(item).__name__}, not an object")
        content = message_content(item.get("content"))
        role = item.get("role")
        if optional_str(role) == "tool":
            call_id = require_str(item.get("tool_call_id"), f"the tool_call_id of {where}")
            out.append(message("tool", content, tool_call_id=call_id))
            continue
        calls = _calls(item.get("tool_calls"), where)
        out.append(
            message(role, content, reasoning=optional_str(item.get("reasoning")), tool_calls=calls)
        )
    return out


def _calls(raw: Any, where: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RolloutParseError(f"the tool_calls of {where} must be a list")
    calls = []
    for number, call in enumerate(raw, start=1):
        at = f"tool call #{number} of {where}"
        if not isinstance(call, dict):
            raise RolloutParseError(f"{at} is a {type(call).__name__}, not an object")
        function = call["function"] if isinstance(call.get("function"), dict) else {}
        call_id = require_str(call.get("id") or call.get("call_id"), f"the id of {at}")
        name = require_str(function.get("name") or call.get("name"), f"the name of {at}")
        arguments = json_text(function.get("arguments", call.get("arguments")))
        calls.append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )
    return calls


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _function_names(items: list[Any]) -> list[str]:
    return [
        optional_str(item["function"].get("name")) or ""
        for item in items
        if isinstance(item, dict) and isinstance(item.get("function"), dict)
    ]


def _call_names(raw: list[Any]) -> list[str]:
    names: list[str] = []
    for item in raw:
        calls = item.get("tool_calls") if isinstance(item, dict) else None
        names.extend(_function_names(calls if isinstance(calls, list) else []))
    return names


def _finish_reasons(raw: list[Any]) -> list[str]:
    return _unique([
        optional_str(item.get("finish_reason")) or ""
        for item in raw
        if isinstance(item, dict) and item.get("role") == "assistant"
    ])  # fmt: skip
