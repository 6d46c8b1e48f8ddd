"""The Ray engine on a local runtime: same dataset as the async engine, a worker killed
mid-group, the fleet record, and the message when the extra is missing.

Not collected on its own: `test_ray_engine.py` runs this file in a private network namespace
(only loopback), so no Ray traffic can leave the machine. One Ray runtime serves the module
(starting one costs seconds on a loaded 2-core machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rowloom.builder.storage import RunStorage
from rowloom.config.dataset import DatasetConfig
from rowloom.interface.designer import Designer

ray = pytest.importorskip(
    "ray", reason="the ray extra is not installed (pip install 'rowloom[ray]')"
)

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def ray_runtime(tmp_path_factory: pytest.TempPathFactory) -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    marker = tmp_path_factory.mktemp("crash") / "marker"
    os.environ["ROWLOOM_TEST_CRASH_MARKER"] = str(marker)  # inherited by Ray's workers
    ray.init(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=80 * 2**20,
    )
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


def _config(columns: list[dict[str, Any]] | None = None) -> DatasetConfig:
    return DatasetConfig.from_dict(_config_dict(columns))


def _config_dict(columns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    cols = columns or []
    return {
        "providers": [
            {
                "name": "sim",
                "provider_type": "simulated",
                "simulation": {"capacity": 16, "latency_ms": 2, "seed": 3},
            }
        ],
        "models": [
            {
                "alias": "writer",
                "model": "sim-writer-8b",
                "provider": "sim",
                "max_parallel_requests": 8,
            }
        ],
        "columns": [
            {
                "name": "topic",
                "column_type": "sampler",
                "sampler_type": "category",
                "params": {"values": ["rivers", "glaciers", "dunes"]},
            },
            {
                "name": "text",
                "column_type": "llm_text",
                "model_alias": "writer",
                "prompt": "Write about {{ topic }}.",
            },
            *cols,
        ],
        "seed": 5,
        "run": {"buffer_size": 5, "max_concurrent_row_groups": 1},
    }


def _parts(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "data").glob("part-*.parquet"))}


def test_a_killed_driver_resumes_from_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver (the `rowloom create` process) is SIGKILLed mid-run, as if its machine died;
    `rowloom create --resume` with a new driver finishes the run from its folder: committed
    row groups are kept byte for byte, uncommitted attempts are removed, and the dataset
    equals an uninterrupted run's. First in the module: no other Ray runtime is up yet."""
    kill = {
        "name": "loud",
        "column_type": "custom",
        "generator_function": "driver_kill:kill_driver_once",
        "required_columns": ["topic"],
    }
    config = tmp_path / "fleet.yaml"
    config.write_text(yaml.safe_dump(_config_dict([kill])), encoding="utf-8")
    runs, marker = tmp_path / "runs", tmp_path / "killed"
    run_dir = runs / "fleet"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "ROWLOOM_TEST_DRIVER_MARKER": str(marker),
        "ROWLOOM_TEST_RUN_DIR": str(run_dir),
    }
    rowloom = str(Path(sys.executable).parent / "rowloom")
    create = [rowloom, "create", str(config), "-n", "40", "--name", "fleet", "--quiet"]
    create += ["--engine", "ray", "--workers", "2", "--artifact-dir", str(runs)]
    log = tmp_path / "driver.log"
    with log.open("w", encoding="utf-8") as out:
        # exec keeps the shell's pid: the driver's pid is known to the workers' kill switch
        driver = subprocess.Popen(
            ["sh", "-c", 'ROWLOOM_TEST_DRIVER_PID=$$ exec "$@"', "sh", *create],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = driver.wait(timeout=240)
        finally:  # the dead driver's Ray processes share its session: end them all
            with contextlib.suppress(ProcessLookupError):
                os.killpg(driver.pid, signal.SIGKILL)
    assert code == -signal.SIGKILL and marker.exists(), log.read_text(encoding="utf-8")[-3000:]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "running" and len(manifest["row_groups"]) >= 2
    kept = _parts(run_dir)
    assert len(kept) == len(manifest["row_groups"])

    resumed = subprocess.run(
        [*create, "--resume"], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "complete" and summary["rows_written"] == 40
    assert summary["resumed_row_groups"] == len(kept)
    after = _parts(run_dir)
    assert len(after) == 8 and all(after[name] == data for name, data in kept.items())
    assert not list((run_dir / "data").glob(".*"))  # no attempt left behind
    monkeypatch.syspath_prepend(str(HERE))  # the custom column, in this process (no kill now)
    for name in ("ROWLOOM_TEST_DRIVER_MARKER", "ROWLOOM_TEST_RUN_DIR"):
        monkeypatch.setenv(name, env[name])
    Designer(tmp_path / "local").create(DatasetConfig.from_dict(_config_dict([kill])), 40, "one")
    expected = RunStorage(tmp_path / "local" / "one").read_table()
    assert RunStorage(run_dir).read_table().equals(expected)


def crash_once(row: dict[str, Any], *_: Any) -> str:
    """Kills its worker process the first time any worker runs it (a marker file), mid-group."""
    marker = Path(os.environ["ROWLOOM_TEST_CRASH_MARKER"])
    try:  # creating the marker is atomic: exactly one worker crashes, even when two race
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return f"{row['topic']}!"
    os._exit(1)


def test_same_dataset_as_the_async_engine_and_a_fleet_record(
    ray_runtime: Any, tmp_path: Path
) -> None:
    config = _config()
    Designer(tmp_path).create(config, 20, "local")
    fleet = Designer(tmp_path, engine="ray", workers=2).create(config, 20, "fleet")
    assert fleet.summary.status == "complete"
    a = RunStorage(tmp_path / "local").read_table()
    b = RunStorage(tmp_path / "fleet").read_table()
    assert b.num_rows == 20 and a.equals(b)
    record = json.loads((tmp_path / "fleet" / "fleet.json").read_text())
    assert record["engine"] == "ray" and sum(record["rows_by_worker"].values()) == 20
    coordinator = record["coordinators"]["sim"]["sim/sim-writer-8b/chat"]
    assert coordinator["max_limit"] == 8 and coordinator["reports"] > 0
    assert record["share_changes"] and not list((tmp_path / "fleet" / "data").glob(".*"))
    assert (tmp_path / "fleet" / "report.html").is_file()
    # one engine per worker for the whole run: one folder each, every request counted
    assert {p.name for p in (tmp_path / "fleet" / "workers").iterdir()} == {"w1", "w2"}
    assert fleet.summary.request_attempts == sum(
        r["attempts"] for r in record["requests_by_worker"].values()
    )
    assert fleet.summary.request_attempts >= 20


def test_processors_give_the_async_engines_dataset_and_outputs(
    ray_runtime: Any, tmp_path: Path
) -> None:
    """Processors run on the workers: their outputs land in the run's `processors/<name>/`,
    committed with their row group, and equal the async engine's; dropped columns are gone."""
    spec = _config_dict([{"name": "tmp_len", "column_type": "expression", "expr": "{{ 3 }}"}])
    spec["processors"] = [
        {"name": "drop_tmp", "processor_type": "drop_columns", "column_names": ["tmp_*"]},
        {
            "name": "chat",
            "processor_type": "schema_transform",
            "template": {"messages": [{"role": "user", "content": "{{ topic }}: {{ text }}"}]},
        },
    ]
    config = DatasetConfig.from_dict(spec)
    local = Designer(tmp_path).create(config, 20, "local")
    fleet = Designer(tmp_path, engine="ray", workers=2).create(config, 20, "fleet")
    assert fleet.summary.status == "complete"
    assert RunStorage(fleet.run_dir).read_table().equals(RunStorage(local.run_dir).read_table())
    assert "tmp_len" not in fleet.to_pandas().columns
    expected = local.processor_output("chat").to_dict("records")
    assert len(expected) == 20 and fleet.processor_output("chat").to_dict("records") == expected
    parts = sorted(p.name for p in (fleet.run_dir / "processors" / "chat").iterdir())
    assert parts == sorted(p.name for p in (local.run_dir / "processors" / "chat").iterdir())
    assert not list((fleet.run_dir / "workers").glob("*/processors/*/*"))


def test_a_worker_killed_mid_group_loses_and_duplicates_nothing(
    ray_runtime: Any, tmp_path: Path
) -> None:
    crash = {
        "name": "shout",
        "column_type": "custom",
        "function": crash_once,
        "required_columns": ["topic"],
    }
    config = _config([crash])
    result = Designer(tmp_path, engine="ray", workers=2).create(config, 15, "crash")
    assert result.summary.status == "complete"
    assert Path(os.environ["ROWLOOM_TEST_CRASH_MARKER"]).exists()
    table = RunStorage(tmp_path / "crash").read_table()
    assert table.num_rows == 15
    record = json.loads((tmp_path / "crash" / "fleet.json").read_text())
    assert record["workers_died"] and record["row_groups_requeued"] >= 1
    assert len(record["workers_started"]) == 3  # two, and one replacing the dead one
    Designer(tmp_path).create(config, 15, "local")  # the marker exists: no crash
    assert RunStorage(tmp_path / "local").read_table().equals(table)
    assert not list((tmp_path / "crash" / "data").glob(".*"))


def test_missing_extra_is_a_clear_error_through_the_cli(tmp_path: Path) -> None:
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "rowloom"),
            "create",
            str(ROOT / "examples" / "qa_judge.yaml"),
            "-n",
            "5",
            "--engine",
            "ray",
            "--artifact-dir",
            str(tmp_path),
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'rowloom[ray]'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_two_node_cluster_runs_one_dataset(tmp_path: Path) -> None:
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    try:
        result = Designer(tmp_path, engine="ray", workers=2, ray_address=cluster.address).create(
            _config(), 20, "cluster"
        )
        assert result.summary.status == "complete"
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 2
        Designer(tmp_path).create(_config(), 20, "local")
        a = RunStorage(tmp_path / "local").read_table()
        assert RunStorage(tmp_path / "cluster").read_table().equals(a)
    finally:
        ray.shutdown()
        cluster.shutdown()
