"""Small agent traces in each format's on-disk layout, written by the tests (`write_*(root)`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def write_claude_code(root: Path) -> None:
    """A project with a main session, a subagent (sidechain) session, a sessions index, and
    files a reader must skip: history, tool results, malformed JSON, an empty file."""
    project = root / "-work-parser"
    common = {"sessionId": "sess-1", "cwd": "/work/parser", "gitBranch": "main"}
    _jsonl(project / "sess-1.jsonl", [
        {**common, "type": "user", "version": "2.0.1", "timestamp": "2026-01-05T10:00:00Z",
         "message": {"role": "user", "content": "Fix the failing test in parser.py"}},
        {**common, "type": "assistant", "version": "2.0.2", "timestamp": "2026-01-05T10:00:05Z",
         "message": {"role": "assistant", "content": [
             {"type": "thinking", "thinking": "Run the tests first."},
             {"type": "text", "text": "Let me run the tests."},
             {"type": "tool_use", "id": "toolu_1", "name": "Bash",
              "input": {"command": "pytest -q"}}]}},
        {**common, "type": "user", "timestamp": "2026-01-05T11:00:09+01:00",
         "message": {"role": "user", "content": [
             {"type": "tool_result", "tool_use_id": "toolu_1", "content": "1 failed"}]}},
        {**common, "type": "summary", "summary": "parser fix"},
        {**common, "type": "assistant", "timestamp": "2026-01-05T10:01:00Z",
         "message": {"role": "assistant", "content": [
             {"type": "text", "text": "Fixed: the parser strips whitespace."}]}},
    ])  # fmt: skip
    _jsonl(project / "sess-1" / "subagents" / "agent-a1.jsonl", [
        {"type": "user", "sessionId": "sess-1", "agentId": "a1", "isSidechain": True,
         "timestamp": "2026-01-05T10:00:30Z",
         "message": {"role": "user", "content": [{"type": "text", "text": "Find parser.py"}]}},
        {"type": "assistant", "sessionId": "sess-1", "agentId": "a1", "isSidechain": True,
         "timestamp": "2026-01-05T10:00:40Z",
         "message": {"role": "assistant", "content": "It is in src/."}},
    ])  # fmt: skip
    (project / "sessions-index.json").write_text(json.dumps({"entries": [
        {"sessionId": "sess-1", "projectPath": "/work/parser", "summary": "Parser fix",
         "firstPrompt": "Fix the failing test"}]}))  # fmt: skip
    _jsonl(root / "history.jsonl", [{"display": "fix it"}])
    _jsonl(project / "tool-results" / "toolu_1.jsonl", [{"output": "1 failed"}])
    (project / "broken.jsonl").write_text('{"type": "user", "message": \n')
    (project / "empty.jsonl").write_text("\n")


def write_codex(root: Path) -> None:
    """One Codex rollout (reasoning, a tool call and its output) and a file that is not one."""
    day = root / "2026" / "01" / "05"
    meta = {"id": "c0de-1", "timestamp": "2026-01-05T09:00:00Z", "cwd": "/work/app",
            "git_branch": "dev", "originator": "codex_cli_rs", "cli_version": "0.50.0"}  # fmt: skip
    _jsonl(day / "rollout-2026-01-05T09-00-00-c0de-1.jsonl", [
        {"type": "session_meta", "timestamp": "2026-01-05T09:00:01Z", "payload": meta},
        {"type": "response_item", "timestamp": "2026-01-05T09:00:02Z", "payload": {
            "type": "message", "role": "developer",
            "content": [{"type": "input_text", "text": "Be careful."}]}},
        {"type": "response_item", "timestamp": "2026-01-05T09:00:03Z", "payload": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "List the files"}]}},
        {"type": "response_item", "payload": {
            "type": "reasoning", "summary": [{"type": "summary_text", "text": "Use ls."}]}},
        {"type": "response_item", "payload": {
            "type": "function_call", "name": "shell", "call_id": "call_1",
            "arguments": "{\"command\": [\"ls\"]}"}},
        {"type": "response_item", "payload": {
            "type": "function_call_output", "call_id": "call_1", "output": "a.py\nb.py"}},
        {"type": "event_msg", "payload": {"type": "agent_reasoning", "text": "Two files."}},
        {"type": "response_item", "timestamp": "2026-01-05T09:00:09Z", "payload": {
            "type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": "a.py and b.py"}]}},
        {"type": "response_item", "payload": {"type": "web_search_call"}},
    ])  # fmt: skip
    _jsonl(day / "notes.jsonl", [{"type": "note"}])


def atif_trajectory(session: str = "traj-1") -> dict[str, Any]:
    """An ATIF trajectory: a user step, an agent step with a tool call and its observation,
    and a final agent answer."""
    return {
        "schema_version": "ATIF-v1.4",
        "session_id": session,
        "agent": {"name": "terminus", "version": "2.0", "model_name": "m-1",
                  "extra": {"cwd": "/work/atif", "git_branch": "main"}},
        "steps": [
            {"step_id": 1, "source": "user", "message": "What is 2+2?",
             "timestamp": "2026-01-05T08:00:00Z"},
            {"step_id": 2, "source": "agent", "message": "Computing.",
             "reasoning_content": "Use the calculator.",
             "tool_calls": [{"tool_call_id": "t1", "function_name": "calc",
                             "arguments": {"expr": "2+2"}}],
             "observation": {"results": [{"source_call_id": "t1", "content": "4"}]},
             "timestamp": "2026-01-05T08:00:02Z"},
            {"step_id": 3, "source": "agent", "message": "4",
             "timestamp": "2026-01-05T08:00:03Z"},
        ],
        "final_metrics": {"total_steps": 3},
    }  # fmt: skip


def write_atif(root: Path) -> None:
    """A good trajectory and one whose steps are out of order (skipped)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "traj-1.json").write_text(json.dumps(atif_trajectory()))
    bad = atif_trajectory("traj-2")
    bad["steps"][1]["step_id"] = 5
    (root / "traj-2.json").write_text(json.dumps(bad))


def write_hermes_agent(root: Path) -> None:
    """A CLI session log, a gateway transcript listed in `sessions.json`, and a JSON file that
    is not a session (skipped quietly)."""
    root.mkdir(parents=True, exist_ok=True)
    tools = [{"type": "function", "function": {"name": "terminal"}},
             {"type": "function", "function": {"name": "terminal"}}]  # fmt: skip
    (root / "session_20260105_1.json").write_text(json.dumps({
        "session_id": "h-cli-1", "model": "hermes-4", "platform": "cli",
        "session_start": "2026-01-05T07:00:00", "last_updated": "2026-01-05T07:05:00",
        "system_prompt": "You are Hermes.", "tools": tools,
        "messages": [
            {"role": "user", "content": "Disk usage?"},
            {"role": "assistant", "content": None, "reasoning": "Check df.",
             "finish_reason": "tool_calls",
             "tool_calls": [{"id": "c1", "function": {"name": "terminal",
                                                      "arguments": "{\"cmd\": \"df -h\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": {"stdout": "40% used"}},
            {"role": "assistant", "content": "40% of the disk is used.", "finish_reason": "stop"},
        ],
    }))  # fmt: skip
    _jsonl(root / "gw-42.jsonl", [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi", "finish_reason": "stop",
         "tool_calls": [{"call_id": "g1", "name": "lookup", "arguments": {"q": "x"}}]},
    ])  # fmt: skip
    (root / "sessions.json").write_text(json.dumps({
        "telegram:7": {"session_id": "gw-42", "created_at": "2026-01-05T06:00:00Z",
                       "updated_at": "2026-01-05T06:01:00Z", "total_tokens": 12,
                       "origin": {"chat": 7}},
        "cli:default": "h-cli-1",
    }))  # fmt: skip
    (root / "config.json").write_text("{}")


def write_pi_coding_agent(root: Path) -> None:
    """A Pi session whose tree has an abandoned branch: only the active path is read."""
    root.mkdir(parents=True, exist_ok=True)
    _jsonl(root / "2026-01-05_pi-1.jsonl", [
        {"type": "session", "id": "pi-1", "version": 3, "cwd": "/work/pi",
         "timestamp": "2026-01-05T05:00:00Z"},
        {"type": "model_change", "id": "e1", "parentId": None, "modelId": "claude-x",
         "timestamp": "2026-01-05T05:00:01Z"},
        {"type": "message", "id": "e2", "parentId": "e1", "timestamp": "2026-01-05T05:00:02Z",
         "message": {"role": "user", "content": [{"type": "text", "text": "Build it"}]}},
        {"type": "message", "id": "e3", "parentId": "e2", "timestamp": "2026-01-05T05:00:03Z",
         "message": {"role": "assistant", "content": "abandoned answer"}},
        {"type": "message", "id": "e4", "parentId": "e2", "timestamp": "2026-01-05T05:00:04Z",
         "message": {"role": "assistant", "stopReason": "toolUse", "model": "claude-y",
                     "content": [{"type": "thinking", "thinking": "make"},
                                 {"type": "text", "text": "Running make."},
                                 {"type": "toolCall", "id": "tc1", "name": "read",
                                  "arguments": {"path": "Makefile"}}]}},
        {"type": "message", "id": "e5", "parentId": "e4", "timestamp": "2026-01-05T05:00:05Z",
         "message": {"role": "toolResult", "toolCallId": "tc1", "content": "all: build"}},
        {"type": "message", "id": "e6", "parentId": "e5", "timestamp": "2026-01-05T05:00:06Z",
         "message": {"role": "bashExecution", "command": "make", "output": "ok", "exitCode": 0}},
        {"type": "compaction", "id": "e7", "parentId": "e6", "summary": "Built once."},
        {"type": "message", "id": "e8", "parentId": "e7", "timestamp": "2026-01-05T05:00:08Z",
         "message": {"role": "assistant", "stopReason": "stop",
                     "content": [{"type": "text", "text": "Done."}]}},
    ])  # fmt: skip
