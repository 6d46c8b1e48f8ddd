"""`validation` columns: Python (compile + ruff), SQL per dialect (sqlglot), local callables
and a remote HTTP validator (a 127.0.0.1 server the test starts): batching, retries, timeouts,
and Data Designer's output shape."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from rowloom import DatasetConfig, Designer
from rowloom.config import ConfigValidationError
from rowloom.generators.code_checks import ruff_binary, validate_python, validate_sql
from rowloom.generators.validation import ValidatorContractError, retry_wait

CODES = [
    "def add(a, b):\n    return a + b\n",
    "import os\n",  # unused import: F401 is not selected; valid
    "def broken(:\n    pass\n",
    "x = undefined_name + 1\n",  # F821: an error
]


async def test_python_validator_compiles_and_lints() -> None:
    results = await validate_python(CODES, ruff_binary("test"))
    ok, unused, broken, undefined = results
    assert ok["is_valid"] and ok["python_linter_severity"] == "none"
    assert ok["python_linter_score"] == 10.0 and ok["python_linter_messages"] == []
    assert unused["is_valid"]
    assert not broken["is_valid"] and broken["python_linter_severity"] == "fatal"
    assert broken["python_linter_score"] == 0.0
    assert not undefined["is_valid"] and undefined["python_linter_severity"] == "error"
    message = undefined["python_linter_messages"][0]
    assert message["symbol"] == "F821" and message["line"] == 1 and message["type"] == "error"


@pytest.mark.parametrize(
    "sql,lang,valid",
    [
        ("SELECT a FROM t WHERE b > 1", "sql:postgres", True),
        ("SELECT TOP 5 * FROM t", "sql:tsql", True),
        ("SELECT TOP 5 * FROM t", "sql:postgres", False),
        ("SELEC * FROM x", "sql:ansi", False),
        ("CREATE TABLE t (p DECIMAL(10))", "sql:mysql", False),
        ("", "sql:sqlite", False),
        ("SELECT `a` FROM `t`", "sql:bigquery", True),
    ],
)
def test_sql_validator_parses_in_the_dialect(sql: str, lang: str, valid: bool) -> None:
    result = validate_sql(sql, lang)
    assert set(result) == {"is_valid", "error_messages"}
    assert result["is_valid"] is valid, result
    assert bool(result["error_messages"]) is not valid


def base(*columns: dict[str, Any]) -> DatasetConfig:
    return DatasetConfig.from_dict(
        {
            "columns": [
                {
                    "name": "i",
                    "column_type": "sampler",
                    "sampler_type": "uniform",
                    "params": {"low": 0, "high": 4, "integer": True},
                },
                {
                    "name": "code",
                    "column_type": "expression",
                    "expr": "{{ ['x = 1', 'def f(:', 'y = z', 'print(2)'][i % 4] }}",
                },
                {
                    "name": "sql",
                    "column_type": "expression",
                    "expr": "{{ ['SELECT 1', 'SELEC * FROM', 'SELECT a FROM t', 'DROP TABLE t']"
                    "[i % 4] }}",
                },
                *columns,
            ]
        }
    )


def test_code_validation_column_writes_dd_shaped_structs(tmp_path: Path) -> None:
    cfg = base(
        {
            "name": "py_ok",
            "column_type": "validation",
            "target_columns": ["code"],
            "validator_type": "code",
            "validator_params": {"code_lang": "python"},
            "batch_size": 3,
        },
        {
            "name": "both",
            "column_type": "validation",
            "target_columns": ["sql", "code"],
            "validator_type": "code",
            "validator_params": {"code_lang": "sql:postgres"},
        },
    )
    result = Designer(artifact_dir=tmp_path).create(
        cfg, 9, "v", run_config=cfg.run_config.model_copy(update={"buffer_size": 5})
    )
    frame = result.to_pandas()
    for i, row in frame.iterrows():
        expect = row["i"] % 4 in (0, 3)
        assert row["py_ok"]["is_valid"] is expect, (i, row["code"], row["py_ok"])
        assert set(row["both"]) == {"sql", "code"}
        assert row["both"]["sql"]["is_valid"] is (row["i"] % 4 != 1)
    kind = pq.read_table(result.part_paths()[0]).schema.field("py_ok").type
    assert pa.types.is_list(kind.field("python_linter_messages").type)


def flag_short(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"is_valid": df["sql"].str.len() > 8, "length": df["sql"].str.len()})


def returns_garbage(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"ok": [True] * len(df)})


def test_local_callable_validator_gets_batches_as_dataframes() -> None:
    cfg = base(
        {
            "name": "long",
            "column_type": "validation",
            "target_columns": ["sql"],
            "validator_type": "local_callable",
            "validator_params": {"validation_function": f"{__name__}:flag_short"},
            "batch_size": 2,
        },
    )
    data = Designer().preview(cfg, 8).data
    for sql, out in zip(data["sql"], data["long"], strict=True):
        assert out == {"is_valid": len(sql) > 8, "length": len(sql)}
    bad = base(
        {
            "name": "bad",
            "column_type": "validation",
            "target_columns": ["sql"],
            "validator_type": "local_callable",
            "validator_params": {"validation_function": f"{__name__}:returns_garbage"},
        },
    )
    with pytest.raises(ValidatorContractError, match="is_valid"):
        Designer().preview(bad, 2)


class Endpoint:
    """A remote validator on 127.0.0.1: records batch sizes; can fail or stall first."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.fail_first = 0
        self.stall = False
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.stall:
            await asyncio.sleep(5)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        self.batches.append(len(body["data"]))
        return web.json_response(
            {
                "data": [
                    {"is_valid": "DROP" not in r["sql"], "note": r["sql"][:4]} for r in body["data"]
                ]
            }
        )

    def start(self) -> None:
        async def boot() -> None:
            app = web.Application()
            app.router.add_post("/validate", self.handle)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(boot(), self.loop).result(10)

    def stop(self) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    server.start()
    yield server
    server.stop()


def remote(endpoint: Endpoint, **params: Any) -> dict[str, Any]:
    return {
        "name": "remote",
        "column_type": "validation",
        "target_columns": ["sql"],
        "validator_type": "remote",
        "batch_size": 3,
        "validator_params": {
            "endpoint_url": f"http://127.0.0.1:{endpoint.port}/validate",
            **params,
        },
    }


def test_remote_validator_batches_and_retries(endpoint: Endpoint) -> None:
    endpoint.fail_first = 2
    cfg = base(remote(endpoint, retry_backoff=1.01, max_parallel_requests=2))
    data = (
        Designer()
        .preview(
            cfg,
            10,
        )
        .data
    )  # one row group: batches of 3, 3, 3, 1
    assert sorted(endpoint.batches) == [1, 3, 3, 3]
    for sql, out in zip(data["sql"], data["remote"], strict=True):
        assert out == {"is_valid": "DROP" not in sql, "note": sql[:4]}


@pytest.mark.parametrize(
    ("backoff", "attempt", "wait"),
    [(2.0, 1, 1.0), (2.0, 3, 7.0), (2.0, 6, 60.0), (1e300, 50, 60.0), (1.000001, 10**9, 60.0)],
)
def test_remote_retry_waits_grow_and_stop_at_a_minute(
    backoff: float, attempt: int, wait: float
) -> None:
    assert retry_wait(backoff, attempt) == pytest.approx(wait)


def test_remote_validator_timeout_gives_null_not_lost_rows(endpoint: Endpoint) -> None:
    endpoint.stall = True
    cfg = base(remote(endpoint, timeout=0.2, max_retries=0))
    result = Designer().preview(cfg, 4)
    assert len(result) == 4
    assert all(v == {"is_valid": None} for v in result.data["remote"])


@pytest.mark.parametrize(
    "column,fragment",
    [
        (
            {"validator_type": "code", "validator_params": {"code_lang": "java"}},
            "code validator checks",
        ),
        (
            {
                "validator_type": "code",
                "validator_params": {"code_lang": "python"},
                "batch_size": 0,
            },
            "batch_size",
        ),
        (
            {
                "validator_type": "remote",
                "validator_params": {"endpoint_url": "file:///etc/passwd"},
            },
            "http(s) URL",
        ),
        (
            {
                "validator_type": "remote",
                "validator_params": {"endpoint_url": "http://h", "retry_backoff": 1},
            },
            "retry_backoff",
        ),
        (
            {
                "validator_type": "remote",
                "validator_params": {"endpoint_url": "http://h", "timeout": -1},
            },
            "timeout",
        ),
        (
            {
                "validator_type": "local_callable",
                "validator_params": {"validation_function": "nope:f"},
            },
            "cannot import",
        ),
        ({"validator_type": "magic", "validator_params": {}}, "validator_type"),
        (
            {
                "validator_type": "code",
                "validator_params": {"code_lang": "python"},
                "target_columns": ["ghost"],
            },
            "ghost",
        ),
        (
            {
                "validator_type": "code",
                "validator_params": {"validator_type": "remote", "endpoint_url": "http://h"},
            },
            "not 'code'",
        ),
    ],
)
def test_hostile_validation_configs_are_typed_errors(column: dict[str, Any], fragment: str) -> None:
    spec = {"name": "v", "column_type": "validation", "target_columns": ["sql"], **column}
    with pytest.raises(ConfigValidationError) as info:
        base(spec)
    assert fragment in str(info.value)
