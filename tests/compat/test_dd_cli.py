"""Data Designer configs through the real `rowloom` entry point: validate, create --simulate
(no key, no network), convert and its round trip, and hostile files (exit 2, no traceback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.compat.vlm_seeds import write_seeds
from tests.seeds.rollout_fixtures import write_claude_code
from tests.support.personas import write_persona_dataset
from typer.testing import CliRunner

from rowloom.interface.cli import app
from rowloom.interface.designer import Designer
from rowloom.interface.loading import load_config
from rowloom.seeds import compile_seed

CONFIGS = Path(__file__).parent / "configs"
ALL = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
MUST_RUN = {
    "product_info_qa",
    "multi_turn_chat",
    "tutorial_1_the_basics",
    "seeding",
    "text_to_sql",
    "text_to_python",
    "structured_outputs",
    "sft_chat_format",
    "writer_editor_sft",
    "tutorial_2_structured_outputs",
    "tutorial_3_seeding",
    "enterprise_text_to_sql",
    "tutorial_5_generating_images",
    "tutorial_6_editing_images",
    "funny_pet_image_edits",
    "03-text-qa-sdg",
    "04-page-classification-sdg",
    "05-visual-qa-sdg",
    "06-single-page-qa-sdg",
    "07-multi-page-windowed-qa-sdg",
    "08-whole-document-qa-sdg",
    "agent_rollout_distillation",
    "tutorial_7_nemotron_personas",
}
"""Configs whose every feature rowloom has today; the others run once the native features
they use land (until then they must fail with typed "not supported yet" errors only)."""
BARE_FUNCTIONS = {
    "02-nemotron-parse-ocr-sdg": "parse_ocr_output",
    "09-frontier-judge-sdg": "compute_weighted_score",
}
"""Configs naming a custom function by its bare name (all Data Designer writes): refused by
name; with `recipe_functions:<name>` (the one edit a user makes) they run."""
ROWLOOM = Path(sys.executable).parent / "rowloom"
KEY_VARS = ("OPENAI_API_KEY", "NVIDIA_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY")


def _env(home: Path, keys: bool = False) -> dict[str, str]:
    dd_vars = ("DATA_DESIGNER_HOME", "DATA_DESIGNER_MANAGED_ASSETS_PATH")
    env = {k: v for k, v in os.environ.items() if k not in (*KEY_VARS, *dd_vars)}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), COLUMNS="200")
    if keys:
        env.update(dict.fromkeys(KEY_VARS, "sk-test-not-a-key"))
    return env


def rowloom(
    *args: str, cwd: Path, home: Path, keys: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROWLOOM), *args],
        cwd=cwd,
        env=_env(home, keys),
        capture_output=True,
        text=True,
        timeout=300,
    )


SHARED = ("product_info_qa", "tutorial_1_the_basics")
"""The two configs exactly as Data Designer 0.9.7 wrote them (../shared/compat/dd/)."""


def _sweep(root: Path, names: Any, run: Any) -> dict[str, Any]:
    work = root / "configs"
    shutil.copytree(CONFIGS, work, dirs_exist_ok=True)
    write_seeds(work)  # the VLM recipes' page-image seeds
    write_claude_code(work / "traces")  # the agent rollout recipe's Claude Code sessions
    home = root / "home"
    home.mkdir(exist_ok=True)
    # tutorial 7's person sampler reads the en_US Nemotron-Personas dataset where Data
    # Designer's download leaves it (a small stand-in in the dataset's schema)
    write_persona_dataset(home / ".data-designer" / "managed-assets")

    def one(name: str) -> tuple[str, Any, Any]:
        valid = run(["validate", f"{name}.yaml"], work, home, True)
        created = run(
            ["create", f"{name}.yaml", "--simulate", "-n", "50", "--quiet",
             "--artifact-dir", str(root / "out")], work, home, False,
        )  # fmt: skip
        return name, valid, created

    if run is not _real:  # in process: the CLI needs the main thread (signal handlers)
        return {n: (v, c) for n, v, c in map(one, names)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        return {n: (v, c) for n, v, c in pool.map(one, names)}


def _real(args: list[str], cwd: Path, home: Path, keys: bool) -> Any:
    return rowloom(*args, cwd=cwd, home=home, keys=keys)


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two shared configs through the real entry point."""
    root = tmp_path_factory.mktemp("dd_shared")
    return {"root": root, "results": _sweep(root, SHARED, _real)}


def _check(root: Path, name: str, valid: Any, created: Any) -> None:
    for proc in (valid, created):
        assert "Traceback" not in proc.stderr + proc.stdout
    if name in BARE_FUNCTIONS:
        for proc in (valid, created):
            assert proc.returncode == 2, proc.stdout
            assert f"{BARE_FUNCTIONS[name]!r} is a bare function name" in proc.stderr
            assert f"'module:{BARE_FUNCTIONS[name]}'" in proc.stderr
        return
    if valid.returncode != 0 and name not in MUST_RUN:
        # a feature this config uses has not landed natively: typed errors only
        assert valid.returncode == 2
        assert "not supported yet" in valid.stderr, valid.stderr
        assert created.returncode == 2
        return
    assert valid.returncode == 0, valid.stderr
    assert created.returncode == 0, created.stderr + created.stdout
    data = pd.read_parquet(root / "out" / name / "data")
    assert len(data) == 50
    config = load_config(CONFIGS / f"{name}.yaml")
    if config.seed_config is not None:  # the seed's columns are columns too
        config, seed = compile_seed(config, base_dir=root / "configs")
        assert seed is not None
        seed.close()
    assert list(data.columns) == config.output_columns()
    # skipped cells are null (their skip.value), and so are those of dependants propagating it
    skippable = {c.name for c in config.columns if c.skip is not None}
    skippable |= {
        c.name
        for c in config.columns
        if c.propagate_skip and set(config.dependencies[c.name]) & skippable
    }
    from_seed = {c.name for c in config.columns if c.column_type == "seed_dataset"}  # as read
    filled = data[[c for c in data.columns if c not in skippable | from_seed]]
    assert not filled.isna().any().any(), filled.isna().sum()
    _check_processors(root / "out" / name, config, data)


def _check_processors(run: Path, config: Any, data: pd.DataFrame) -> None:
    """Dropped columns are gone; each schema_transform wrote one full record per row."""
    for proc in config.processors:
        if proc.processor_type == "drop_columns":
            assert not set(proc.column_names) & set(data.columns)
        else:
            table = pd.read_parquet(run / "processors" / proc.name)
            assert len(table) == len(data) and list(table.columns) == list(proc.template)
            assert not table.isna().any().any()


@pytest.mark.parametrize("name", SHARED)
def test_shared_dd_configs_validate_and_create_50_simulated_rows(
    shared_runs: dict[str, Any], name: str
) -> None:
    _check(shared_runs["root"], name, *shared_runs["results"][name])


@pytest.mark.slow
def test_every_dd_config_through_the_real_entry_point(tmp_path: Path) -> None:
    results = _sweep(tmp_path, ALL, _real)
    for name, (valid, created) in results.items():
        _check(tmp_path, name, valid, created)


class _Done:
    def __init__(self, result: Any) -> None:
        self.returncode = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr


def _in_process(args: list[str], cwd: Path, home: Path, keys: bool) -> Any:
    env = _env(home, keys)
    removed = {k: None for k in KEY_VARS} if not keys else {}
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return _Done(CliRunner().invoke(app, args, env={**env, **removed}))
    finally:
        os.chdir(old)


@pytest.mark.parametrize("name", sorted(set(ALL) - set(SHARED)))
def test_recipe_dd_configs_validate_and_create_50_simulated_rows(tmp_path: Path, name: str) -> None:
    (valid, created) = _sweep(tmp_path, [name], _in_process)[name]
    _check(tmp_path, name, valid, created)


def test_convert_round_trip_gives_the_same_config_and_dataset(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    source = CONFIGS / "product_info_qa.yaml"
    native = tmp_path / "native.yaml"
    done = rowloom("convert", str(source), "-o", str(native), cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stderr
    assert "data_designer" not in native.read_text()
    assert load_config(native) == load_config(source)  # DD -> native -> load: the same DTO
    designer = Designer(tmp_path / "out", simulate=True)
    for path, name in ((source, "dd"), (native, "native")):
        designer.create(path, 12, name)
    dd = pd.read_parquet(tmp_path / "out" / "dd" / "data")
    nat = pd.read_parquet(tmp_path / "out" / "native" / "data")
    pd.testing.assert_frame_equal(dd, nat)
    assert dd["question"].nunique() > 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data_designer: [unclosed\n", "not valid YAML"),
        ("data_designer:\n  columns:\n  - name: a\n    column_type: llm-poem\n", "llm-poem"),
        (
            "data_designer:\n  columns:\n  - {name: a, column_type: sampler, sampler_type: "
            "category, params: {values: [x], sampler_type: category}, drop: maybe}\n",
            "columns.a.drop",
        ),
        ("library_version: 0.9.7\ndata_designer: {columns: [], tool_configs: [{x: 1}]}\n", ""),
    ],
)
def test_hostile_dd_files_exit_2_without_traceback(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for command in (["validate"], ["preview", "--simulate"]):
        proc = _in_process([*command, str(path)], tmp_path, tmp_path, False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert expected in proc.stderr.replace("\n", " ")


def test_a_hostile_dd_file_through_the_real_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"data_designer": {"columns": [{"name": "x", "column_type": "image"}]}}')
    proc = rowloom("create", str(path), "--simulate", "-n", "2", cwd=tmp_path, home=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "columns.x" in proc.stderr


def test_tutorial_7_without_the_dataset_stops_before_any_model_call(tmp_path: Path) -> None:
    """No Nemotron-Personas file: validate and create exit 2 naming where it was looked for
    and how Data Designer users download it; no run starts."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(CONFIGS / "tutorial_7_nemotron_personas.yaml", tmp_path / "t7.yaml")
    expected = home / ".data-designer" / "managed-assets" / "datasets" / "en_US.parquet"
    out = str(tmp_path / "out")
    for args in (["validate"], ["create", "--simulate", "-n", "5", "--artifact-dir", out]):
        done = rowloom(*args, "t7.yaml", cwd=tmp_path, home=home)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert "missing_person_dataset" in done.stderr and str(expected) in done.stderr
        assert "data-designer download personas --locale en_US" in done.stderr
    assert not (tmp_path / "out" / "t7" / "data").exists()
