"""`seed_type: agent_rollout`: Claude Code, Codex and ATIF traces become one seed row per
session, with Data Designer's columns and message shape; files that are not sessions or do not
parse are skipped; a folder with nothing to read is a typed error before any model call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.seeds.rollout_fixtures import (
    atif_trajectory,
    write_atif,
    write_claude_code,
    write_codex,
    write_hermes_agent,
    write_pi_coding_agent,
)

from rowloom.config.dataset import DatasetConfig
from rowloom.config.errors import ConfigValidationError
from rowloom.config.seed import AgentRolloutSeedSource
from rowloom.interface.designer import Designer
from rowloom.seeds.rollouts import ROLLOUT_COLUMNS, rollout_blocks, rollout_rows


def _rows(fmt: str, root: Path, **fields: Any) -> list[dict[str, Any]]:
    return rollout_rows(AgentRolloutSeedSource(format=fmt, path=str(root), **fields))  # type: ignore[arg-type]


def test_claude_code_sessions_and_subagents(tmp_path: Path) -> None:
    write_claude_code(tmp_path)
    main, sub = _rows("claude_code", tmp_path)  # history, tool results, broken, empty: skipped
    assert list(main) == list(ROLLOUT_COLUMNS)

    def said(words: str) -> list[dict[str, str]]:
        return [{"type": "text", "text": words}]

    bash = {"name": "Bash", "arguments": '{"command": "pytest -q"}'}
    assert main["messages"] == [
        {"role": "user", "content": said("Fix the failing test in parser.py")},
        {"role": "assistant", "content": said("Let me run the tests."),
         "reasoning_content": "Run the tests first.",
         "tool_calls": [{"id": "toolu_1", "type": "function", "function": bash}]},
        {"role": "tool", "content": said("1 failed"), "tool_call_id": "toolu_1"},
        {"role": "assistant", "content": said("Fixed: the parser strips whitespace.")},
    ]  # fmt: skip
    assert (main["trace_id"], main["root_session_id"], main["agent_id"]) == (
        "sess-1",
        "sess-1",
        None,
    )
    assert (main["message_count"], main["tool_call_count"]) == (4, 1)
    assert main["final_assistant_message"] == "Fixed: the parser strips whitespace."
    # 11:00:09+01:00 is before 10:01:00Z: timestamps are compared as instants
    assert (main["started_at"], main["ended_at"]) == (
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:01:00Z",
    )
    assert (main["cwd"], main["project_path"], main["git_branch"]) == ("/work/parser",) * 2 + (
        "main",
    )
    assert main["source_meta"] == {
        "record_count": 5, "record_types": ["assistant", "summary", "user"],
        "claude_versions": ["2.0.1", "2.0.2"], "summary": "Parser fix",
        "first_prompt": "Fix the failing test",
    }  # fmt: skip
    assert main["source_path"] == str(tmp_path / "-work-parser" / "sess-1.jsonl")
    assert (sub["trace_id"], sub["agent_id"], sub["is_sidechain"]) == ("sess-1:a1", "a1", True)
    assert sub["project_path"] == "/work/parser"  # from the sessions index
    assert sub["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "It is in src/."}],
    }
    only_top = _rows("claude_code", tmp_path / "-work-parser", recursive=False)
    assert [r["trace_id"] for r in only_top] == ["sess-1"]


def test_codex_rollouts(tmp_path: Path) -> None:
    write_codex(tmp_path)
    (row,) = _rows("codex", tmp_path)
    roles = [(m["role"], m.get("reasoning_content")) for m in row["messages"]]
    assert roles == [("system", None), ("user", None), ("assistant", "Use ls."), ("tool", None),
                     ("assistant", "Two files.")]  # fmt: skip
    call = row["messages"][2]["tool_calls"][0]
    assert call == {"id": "call_1", "type": "function",
                    "function": {"name": "shell", "arguments": '{"command": ["ls"]}'}}  # fmt: skip
    output = [{"type": "text", "text": "a.py\nb.py"}]
    assert row["messages"][3] == {"role": "tool", "content": output, "tool_call_id": "call_1"}
    assert (row["trace_id"], row["cwd"], row["git_branch"]) == ("c0de-1", "/work/app", "dev")
    assert (row["started_at"], row["ended_at"]) == ("2026-01-05T09:00:00Z", "2026-01-05T09:00:09Z")
    assert row["source_meta"]["response_item_types"] == [
        "function_call", "function_call_output", "message", "reasoning", "web_search_call",
    ]  # fmt: skip
    assert (row["source_meta"]["originator"], row["source_meta"]["cli_version"]) == (
        "codex_cli_rs",
        "0.50.0",
    )
    assert row["final_assistant_message"] == "a.py and b.py"


def test_atif_trajectories(tmp_path: Path) -> None:
    write_atif(tmp_path)
    (row,) = _rows("atif", tmp_path)  # traj-2's steps are out of order: skipped
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert row["messages"][2] == {
        "role": "tool",
        "content": [{"type": "text", "text": "4"}],
        "tool_call_id": "t1",
    }
    assert row["messages"][1]["tool_calls"][0]["function"] == {
        "name": "calc",
        "arguments": '{"expr": "2+2"}',
    }
    assert row["source_meta"] == {
        "schema_version": "ATIF-v1.4", "step_count": 3, "agent_name": "terminus",
        "version": "2.0", "model_name": "m-1", "final_metrics": {"total_steps": 3},
    }  # fmt: skip
    assert (row["trace_id"], row["cwd"], row["final_assistant_message"]) == (
        "traj-1",
        "/work/atif",
        "4",
    )


def test_hermes_agent_cli_logs_and_gateway_transcripts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_hermes_agent(tmp_path)
    gateway, cli = _rows("hermes_agent", tmp_path)  # config.json: skipped without a warning
    assert "config.json" not in caplog.text
    assert [m["role"] for m in cli["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    call = cli["messages"][2]
    assert (call["content"], call["reasoning_content"]) == (
        [{"type": "text", "text": ""}],
        "Check df.",
    )
    assert call["tool_calls"][0]["function"] == {
        "name": "terminal",
        "arguments": '{"cmd": "df -h"}',
    }
    assert cli["messages"][3]["content"] == [{"type": "text", "text": '{"stdout": "40% used"}'}]
    assert (cli["trace_id"], cli["started_at"]) == ("h-cli-1", "2026-01-05T07:00:00")
    meta = cli["source_meta"]
    assert (meta["available_tool_names"], meta["finish_reasons"]) == (
        ["terminal"],
        ["tool_calls", "stop"],
    )
    assert (meta["system_prompt_chars"], meta["session_format"]) == (15, "cli_session_log")
    assert gateway["trace_id"] == "gw-42"
    assert (gateway["started_at"], gateway["ended_at"]) == (
        "2026-01-05T06:00:00Z",
        "2026-01-05T06:01:00Z",
    )
    assert gateway["source_meta"] == {
        "record_count": 2, "session_format": "gateway_transcript", "finish_reasons": ["stop"],
        "tool_names_used": [], "session_key": "telegram:7", "total_tokens": 12,
        "origin": {"chat": 7},
    }  # fmt: skip
    assert gateway["messages"][1]["tool_calls"][0]["id"] == "g1"


def test_pi_sessions_read_the_active_branch(tmp_path: Path) -> None:
    write_pi_coding_agent(tmp_path)
    (row,) = _rows("pi_coding_agent", tmp_path)
    said = [(m["role"], m["content"][0]["text"]) for m in row["messages"]]
    assert said == [
        ("user", "Build it"),
        ("assistant", "Running make."),
        ("tool", "all: build"),
        ("assistant", ""),
        ("tool", "ok\n[exit code: 0]"),
        ("system", "Built once."),
        ("assistant", "Done."),
    ]  # fmt: skip  (the abandoned answer on the other branch is not read)
    bash = row["messages"][3]["tool_calls"][0]
    assert bash == {"id": "bash_e6", "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "make"}'}}  # fmt: skip
    assert row["messages"][1]["reasoning_content"] == "make"
    assert row["source_meta"] == {
        "record_count": 9, "entry_types": ["compaction", "message", "model_change"],
        "stop_reasons": ["toolUse", "stop"], "session_version": 3,
        "models_used": ["claude-x", "claude-y"], "has_branches": True, "bash_execution_count": 1,
    }  # fmt: skip
    assert (row["trace_id"], row["cwd"], row["tool_call_count"]) == ("pi-1", "/work/pi", 2)
    assert (row["started_at"], row["ended_at"]) == ("2026-01-05T05:00:00Z", "2026-01-05T05:00:08Z")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t["steps"][0].update(tool_calls=[]), "cannot include tool_calls"),
        (lambda t: t["steps"][1]["observation"]["results"][0].update(source_call_id="t9"), "'t9'"),
        (lambda t: t.pop("agent"), "agent"),
        (lambda t: t["steps"][2].update(source="robot"), "'robot'"),
    ],
)
def test_malformed_atif_files_are_skipped_and_named(
    tmp_path: Path, change: Any, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    trajectory = atif_trajectory()
    change(trajectory)
    (tmp_path / "t.json").write_text(json.dumps(trajectory))
    with pytest.raises(ConfigValidationError) as info:
        _rows("atif", tmp_path)
    assert info.value.codes == ("empty_seed",)
    assert problem in caplog.text and "t.json" in caplog.text


def test_nothing_to_read_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as info:
        _rows("codex", tmp_path / "missing")
    assert info.value.codes == ("seed_not_found",)
    write_codex(tmp_path)
    with pytest.raises(ConfigValidationError) as info:
        _rows("codex", tmp_path, file_pattern="*.json")
    assert info.value.codes == ("seed_no_files",) and "'*.json'" in str(info.value)
    (tmp_path / "claude").mkdir()
    (tmp_path / "claude" / "s.jsonl").write_text("{not json\n")
    with pytest.raises(ConfigValidationError) as info:
        _rows("claude_code", tmp_path / "claude")  # its only session does not parse
    assert info.value.codes == ("empty_seed",)
    with pytest.raises(ValueError, match="path is required for format 'atif'"):
        AgentRolloutSeedSource(format="atif")


def test_default_folder_is_the_agents_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_codex(tmp_path / ".codex" / "sessions")
    (row,) = rollout_rows(AgentRolloutSeedSource(format="codex"))
    assert row["trace_id"] == "c0de-1"


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_BLOCK = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, _TEXT),
    st.builds(lambda t: {"type": "thinking", "thinking": t}, _TEXT),
    st.builds(lambda i: {"type": "tool_use", "id": f"u{i}", "name": "Bash", "input": {"n": i}},
              st.integers(0, 9)),
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(turns=st.lists(st.lists(_BLOCK, max_size=4), min_size=1, max_size=6))
def test_counts_follow_the_messages(tmp_path: Path, turns: list[list[dict[str, Any]]]) -> None:
    """Whatever the turns: one tool call per tool_use block, the counts match the messages,
    and the final assistant text is the last assistant turn with text."""
    lines = [
        {"type": "assistant", "sessionId": "s", "message": {"content": blocks}} for blocks in turns
    ]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (row,) = _rows("claude_code", tmp_path)
    said = [b for b in turns if any(x["type"] != "thinking" or x["thinking"] for x in b)]
    assert row["message_count"] == len(row["messages"]) == len(said)
    assert row["tool_call_count"] == sum(
        b["type"] == "tool_use" for blocks in turns for b in blocks
    )
    texts = [
        "\n\n".join(b["text"] for b in blocks if b["type"] == "text" and b["text"])
        for blocks in turns
    ]
    assert row["final_assistant_message"] == next((t for t in reversed(texts) if t), None)


def test_a_config_reads_traces_beside_it(tmp_path: Path) -> None:
    """Through a run: seed columns in templates, `messages` a list the prompt can slice."""
    write_claude_code(tmp_path / "traces")
    config = DatasetConfig.from_dict(
        {
            "seed_config": {"source": {"seed_type": "agent_rollout", "format": "claude_code",
                                       "path": "traces"}},
            "columns": [{"name": "first", "column_type": "expression",
                         "expr": "{{ messages[:1][0].content[0].text }} / "
                                 "{{ source_meta.summary }}"}],
        },
        base_dir=tmp_path,
    )  # fmt: skip
    data = Designer(tmp_path / "out").create(config, 2, "traces").to_pandas()
    assert list(data["first"]) == [
        "Fix the failing test in parser.py / Parser fix",
        "Find parser.py / Parser fix",
    ]
    assert list(data["trace_id"]) == ["sess-1", "sess-1:a1"]


def test_messages_of_different_shapes_are_kept_as_json_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Content blocks whose same key holds different types cannot share one Arrow type: the
    column holds each row's messages as JSON text, equal to what was read."""
    for name, block in (("a", {"type": "image", "source": {"data": "x"}}),
                        ("b", {"type": "document", "source": "plain"})):  # fmt: skip
        line = {"type": "user", "sessionId": name, "message": {"content": [block]}}
        (tmp_path / f"{name}.jsonl").write_text(json.dumps(line) + "\n")
    source = AgentRolloutSeedSource(format="claude_code", path=str(tmp_path))
    table = rollout_blocks(source).read_block(0)
    assert table.schema.field("messages").type == pa.string()
    rows = rollout_rows(source)
    assert [json.loads(v) for v in table.column("messages").to_pylist()] == [
        r["messages"] for r in rows
    ]
    assert pa.types.is_struct(table.schema.field("source_meta").type)  # the other stays nested
    assert "'messages' is kept as JSON text" in caplog.text
