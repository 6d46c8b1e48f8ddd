"""ATIF trajectories (Agent Trajectory Interchange Format): one standalone `.json` file, one row.

The file holds `schema_version`, `session_id`, an `agent` and numbered `steps` (`source` user,
agent or system; `message`; for agent steps `reasoning_content`, `tool_calls` and an
`observation` whose results answer the calls). Continuations and subagent trajectories are
kept as references in `source_meta`, not stitched in.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from rowloom.seeds.rollouts.common import (
    RolloutParseError,
    json_text,
    message,
    optional_str,
    require_str,
    rollout_row,
    time_bounds,
)

_ROLE = {"agent": "assistant", "user": "user", "system": "system"}


def handles(relative_path: str) -> bool:
    """Trajectory files: `.json`."""
    return PurePosixPath(relative_path).suffix == ".json"


def parse(path: Path) -> list[dict[str, Any]]:
    """The trajectory's row."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RolloutParseError(f"invalid JSON: {exc.msg}") from None
    if not isinstance(payload, dict):
        raise RolloutParseError(f"a JSON {type(payload).__name__}, not an object")
    version = require_str(payload.get("schema_version"), "ATIF schema_version")
    session = require_str(payload.get("session_id"), "ATIF session_id")
    agent = payload.get("agent")
    if not isinstance(agent, dict):
        raise RolloutParseError("no ATIF agent object")
    steps = payload.get("steps")
    if not isinstance(steps, list) or not steps:
        raise RolloutParseError("no ATIF steps (a non-empty list)")
    messages: list[dict[str, Any]] = []
    stamps: list[str] = []
    copied: list[int] = []
    subagents: list[dict[str, Any]] = []
    for number, step in enumerate(steps, start=1):
        step_id = step.get("step_id") if isinstance(step, dict) else None
        if not isinstance(step, dict) or not isinstance(step_id, int) or step_id != number:
            got = step.get("step_id") if isinstance(step, dict) else type(step).__name__
            raise RolloutParseError(
                f"ATIF steps[{number - 1}] must be step_id {number}, got {got!r}"
            )
        if stamp := optional_str(step.get("timestamp")):
            stamps.append(stamp)
        if step.get("is_copied_context") is True:
            copied.append(number)
        messages.extend(_step(step, number, subagents))
    extra: dict[str, Any] = agent["extra"] if isinstance(agent.get("extra"), dict) else {}
    cwd = optional_str(extra.get("cwd"))
    started, ended = time_bounds(stamps)
    return [
        rollout_row(
            trace_id=session,
            source_kind="atif",
            source_path=path,
            root_session_id=session,
            cwd=cwd,
            project_path=optional_str(extra.get("project_path")) or cwd,
            git_branch=optional_str(extra.get("git_branch")),
            started_at=started,
            ended_at=ended,
            messages=messages,
            source_meta=_meta(payload, version, agent, len(steps), copied, subagents),
        )
    ]


def _step(
    step: dict[str, Any], number: int, subagents: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    where = f"ATIF step {number}"
    if "message" not in step:
        raise RolloutParseError(f"{where} has no message")
    source = require_str(step.get("source"), f"the source of {where}")
    role = _ROLE.get(source)
    if role is None:
        raise RolloutParseError(f"{where} has an unsupported source {source!r}")
    if role != "assistant":
        agent_only = [
            f for f in ("reasoning_content", "tool_calls", "observation") if step.get(f) is not None
        ]
        if agent_only:
            raise RolloutParseError(f"{where} ({role}) cannot include {', '.join(agent_only)}")
    calls = _calls(step.get("tool_calls"), where)
    thought = optional_str(step.get("reasoning_content")) if role == "assistant" else None
    out = [message(role, step.get("message"), reasoning=thought, tool_calls=calls)]
    observation = step.get("observation")
    if observation is not None:
        out.extend(_observation(observation, where, {c["id"] for c in calls}, number, subagents))
    return out


def _calls(raw: Any, where: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RolloutParseError(f"the tool_calls of {where} must be a list")
    calls = []
    for i, call in enumerate(raw):
        if not isinstance(call, dict):
            raise RolloutParseError(f"{where} tool_calls[{i}] is not an object")
        at = f"{where} tool_calls[{i}]"
        function = {
            "name": require_str(call.get("function_name"), f"the function_name of {at}"),
            "arguments": json_text(call.get("arguments")),
        }
        call_id = require_str(call.get("tool_call_id"), f"the tool_call_id of {at}")
        calls.append({"id": call_id, "type": "function", "function": function})
    return calls


def _observation(
    observation: Any, where: str, call_ids: set[str], number: int, subagents: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    results = observation.get("results") if isinstance(observation, dict) else None
    if not isinstance(results, list):
        raise RolloutParseError(f"the observation of {where} must be an object with a results list")
    out = []
    for i, result in enumerate(results):
        if not isinstance(result, dict):
            raise RolloutParseError(f"{where} observation result {i} is not an object")
        call_id = optional_str(result.get("source_call_id"))
        if call_id is not None and call_id not in call_ids:
            raise RolloutParseError(
                f"{where}: source_call_id {call_id!r} names no tool call of the step"
            )
        if result.get("content") is not None:
            if call_id is None:
                raise RolloutParseError(
                    f"{where} observation result {i} has content but no source_call_id"
                )
            out.append(message("tool", result.get("content"), tool_call_id=call_id))
        refs = _subagent_refs(result.get("subagent_trajectory_ref"), f"{where} result {i}")
        if refs:
            subagents.append({"step_id": number, "refs": refs})
    return out


def _subagent_refs(raw: Any, where: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RolloutParseError(f"the subagent_trajectory_ref of {where} must be a list")
    refs = []
    for j, ref in enumerate(raw):
        if not isinstance(ref, dict):
            raise RolloutParseError(f"{where} subagent ref {j} is not an object")
        out: dict[str, Any] = {
            "session_id": require_str(ref.get("session_id"), f"{where} ref {j} session_id")
        }
        if trajectory := optional_str(ref.get("trajectory_path")):
            out["trajectory_path"] = trajectory
        if isinstance(ref.get("extra"), dict) and ref["extra"]:
            out["extra"] = ref["extra"]
        refs.append(out)
    return refs


def _meta(
    payload: dict[str, Any],
    version: str,
    agent: dict[str, Any],
    steps: int,
    copied: list[int],
    subagents: list[dict[str, Any]],
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "schema_version": version,
        "step_count": steps,
        "agent_name": require_str(agent.get("name"), "ATIF agent.name"),
    }
    for name in ("version", "model_name"):
        if value := optional_str(agent.get(name)):
            meta[name] = value
    if copied:
        meta["copied_context_step_ids"] = copied
    if subagents:
        meta["subagent_trajectory_refs"] = subagents
    for name in ("notes", "continued_trajectory_ref"):
        if value := optional_str(payload.get(name)):
            meta[name] = value
    for name in ("final_metrics", "extra"):
        if isinstance(payload.get(name), dict) and payload[name]:
            meta[name] = payload[name]
    return meta
