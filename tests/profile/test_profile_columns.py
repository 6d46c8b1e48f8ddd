"""Each column type's profile on known data: exact expected numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.profile.run_folder import make_run

from rowloom.generators.code_checks import validate_sql
from rowloom.profile import profile_run


def _profile(tmp_path: Path, data: dict[str, list[Any]], columns: list[dict[str, Any]]) -> Any:
    return profile_run(make_run(tmp_path / "run", data, columns))["columns"]


def test_category_sampler_compares_observed_with_configured_shares(tmp_path: Path) -> None:
    col = {
        "name": "c",
        "column_type": "sampler",
        "sampler_type": "category",
        "params": {"values": ["a", "b", "z"], "weights": [2, 1, 1]},
    }
    got = _profile(tmp_path, {"c": ["a", "a", "a", "b"]}, [col])["c"]
    rows = {r["value"]: r for r in got["configured"]["values"]}
    assert rows["a"] == {"value": "a", "count": 3, "share": 0.75, "expected_share": 0.5}
    assert rows["b"]["share"] == 0.25 and rows["b"]["expected_share"] == 0.25
    assert rows["z"]["count"] == 0 and rows["z"]["expected_share"] == 0.25
    assert got["configured"]["max_share_deviation"] == 0.25
    assert got["nulls"] == 0


def test_numeric_sampler_summary_and_integer_histogram(tmp_path: Path) -> None:
    col = {"name": "n", "column_type": "sampler", "sampler_type": "poisson", "params": {"mean": 2}}
    got = _profile(tmp_path, {"n": [1, 2, 3, 4, None]}, [col])["n"]
    assert got["kind"] == "number"
    assert (got["min"], got["median"], got["max"], got["mean"]) == (1, 2.5, 4, 2.5)
    assert got["nulls"] == 1
    assert got["histogram"] == {"edges": [0.5, 1.5, 2.5, 3.5, 4.5], "counts": [1, 1, 1, 1]}


def test_text_lengths_empty_refusals_and_exact_duplicates(tmp_path: Path) -> None:
    texts = ["hello world", "", "I'm sorry, I can't help with that.", "hello world", "   "]
    got = _profile(tmp_path, {"t": texts}, [{"name": "t", "column_type": "llm_text"}])["t"]
    assert got["chars"]["min"] == 0 and got["chars"]["max"] == 34
    assert got["chars"]["median"] == 11
    assert got["tokens_estimated"]["max"] == 9  # 34 bytes / 4, rounded up
    assert got["empty"] == 2
    assert got["refusal_like"] == 1
    assert got["exact_duplicates"] == 1


def test_near_duplicates_found_exact_copies_not_counted(tmp_path: Path) -> None:
    words = [f"word{i}" for i in range(30)]
    a = " ".join(words)
    a_changed = " ".join([*words[:-1], "different"])
    other = " ".join(f"other{i}" for i in range(30))
    got = _profile(
        tmp_path, {"t": [a, a_changed, other, other]}, [{"name": "t", "column_type": "llm_text"}]
    )["t"]
    near = got["near_duplicates"]
    assert near["sampled"] == 4
    assert near["rows_with_near_duplicate"] == 2  # a and a_changed; the two `other` are exact
    assert got["exact_duplicates"] == 1


def test_structured_field_coverage_and_schema_violations(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string", "enum": ["x", "y"]}},
        "required": ["a"],
    }
    values = [{"a": 1, "b": "x"}, {"a": 2, "b": "z"}, {"a": None, "b": "y"}, {"a": 3, "b": "x"}]
    col = {"name": "s", "column_type": "llm_structured", "output_format": schema}
    got = _profile(tmp_path, {"s": values}, [col])["s"]
    assert got["fields"]["a"]["coverage"] == 0.75
    assert got["fields"]["b"]["coverage"] == 1.0
    assert got["fields"]["a"]["kind"] == "number" and got["fields"]["a"]["max"] == 3
    shares = {v["value"]: v["count"] for v in got["fields"]["b"]["top_values"]}
    assert shares == {"x": 2, "y": 1, "z": 1}
    violations = got["schema_violations"]
    assert (violations["checked"], violations["invalid"]) == (4, 2)
    assert len(violations["top_messages"]) == 2


def test_judge_scores_with_spaces_and_integer_options(tmp_path: Path) -> None:
    col = {
        "name": "j",
        "column_type": "llm_judge",
        "scores": [{"name": "Helpfulness Score", "options": {1: "bad", 3: "good"}}],
    }
    values = [
        {"Helpfulness Score": {"score": 1, "reasoning": "meh"}},
        {"Helpfulness Score": {"score": 3, "reasoning": "fine"}},
        {"Helpfulness Score": {"score": 3, "reasoning": ""}},
    ]
    got = _profile(tmp_path, {"j": values}, [col])["j"]
    score = got["scores"]["Helpfulness Score"]
    assert {v["value"]: v["count"] for v in score["top_values"]} == {"3": 2, "1": 1}
    assert score["mean"] == pytest.approx(7 / 3, abs=1e-6)
    assert score["reasoning_present"] == pytest.approx(2 / 3, abs=1e-6)


def test_validation_pass_rate_and_top_messages(tmp_path: Path) -> None:
    values = [
        {"is_valid": True, "error_messages": ""},
        {"is_valid": False, "error_messages": "syntax error near FROM"},
        {"is_valid": False, "error_messages": "syntax error near FROM"},
        {"is_valid": False, "error_messages": "unknown table"},
    ]
    col = {"name": "v", "column_type": "validation"}
    got = _profile(tmp_path, {"v": values}, [col])["v"]
    assert got["pass_rate"] == 0.25 and got["checked"] == 4
    assert got["top_messages"][0] == {"message": "syntax error near FROM", "count": 2}


def test_code_parse_rate_python(tmp_path: Path) -> None:
    code = ["x = 1\n", "def f(:\n", "print('hi')\n", "return return"]
    col = {"name": "c", "column_type": "llm_code", "code_lang": "python"}
    got = _profile(tmp_path, {"c": code}, [col])["c"]
    assert got["language"] == "python"
    assert got["parses"]["checked"] == 4 and got["parses"]["ok"] == 2
    assert got["parses"]["rate"] == 0.5
    assert all(e["message"].startswith("SyntaxError") for e in got["parses"]["top_errors"])


def test_code_parse_rate_sql_dialect(tmp_path: Path) -> None:
    pytest.importorskip("sqlglot")
    code = ["SELECT a FROM t WHERE b = 1", "SELECT FROM WHERE ((", "SELECT 1"]
    col = {"name": "q", "column_type": "llm_code", "code_lang": "sql:postgres"}
    got = _profile(tmp_path, {"q": code}, [col])["q"]
    assert got["parses"]["checked"] == 3 and got["parses"]["ok"] == 2
    # the profile and the SQL validation column share one parser: same verdict per query
    verdicts = [validate_sql(q, "sql:postgres")["is_valid"] for q in code]
    assert sum(verdicts) == got["parses"]["ok"]


def test_embedding_dimension_norms_and_projection(tmp_path: Path) -> None:
    vectors = [[3.0, 4.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    col = {"name": "e", "column_type": "embedding"}
    got = _profile(tmp_path, {"e": vectors}, [col])["e"]
    assert got["dimension"] == 2
    assert got["norm"]["min"] == 0 and got["norm"]["max"] == 5
    assert got["projection"]["sample"] == 4 and len(got["projection"]["points"]) == 4


def test_struct_sampler_profiles_each_field(tmp_path: Path) -> None:
    people = [
        {"first_name": "Ann", "age": 30, "state": "CA"},
        {"first_name": "Bob", "age": 40, "state": "CA"},
        {"first_name": "Cy", "age": 50, "state": "NY"},
    ]
    col = {"name": "p", "column_type": "sampler", "sampler_type": "person", "params": {}}
    got = _profile(tmp_path, {"p": people}, [col])["p"]
    assert got["kind"] == "struct"
    assert got["fields"]["age"]["median"] == 40
    assert {v["value"]: v["count"] for v in got["fields"]["state"]["top_values"]} == {
        "CA": 2,
        "NY": 1,
    }


def test_dropped_rows_nulls_and_rows_from_the_manifest(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        {"t": ["a", None, "b"]},
        [{"name": "t", "column_type": "llm_text"}],
        dropped={"template_error": 2},
    )
    profile = profile_run(run)
    assert profile["rows"] == 3 and profile["num_records"] == 5
    assert profile["dropped_rows"] == {"template_error": 2}
    assert profile["columns"]["t"]["nulls"] == 1


def test_without_config_types_come_from_the_data(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", {"n": [1.5, 2.5], "s": ["x", "y"]}, None)
    columns = profile_run(run)["columns"]
    assert columns["n"]["kind"] == "number" and columns["n"]["max"] == 2.5
    assert columns["s"]["kind"] == "category"


def test_near_duplicate_lsh_uses_the_bands_datasketch_picks_for_the_threshold() -> None:
    """The bands x rows found once per process are the ones datasketch integrates for the
    threshold on every `MinHashLSH` it builds without them (the answers cannot differ)."""
    from datasketch import MinHashLSH

    from rowloom.profile.text import NEAR_DUP_THRESHOLD, NUM_PERM, _lsh_params

    picked = MinHashLSH(threshold=NEAR_DUP_THRESHOLD, num_perm=NUM_PERM)
    assert _lsh_params() == (picked.b, picked.r)
