"""`validation` columns: check target columns with a code, local-callable or remote validator.

One task per row group; its rows go to the validator `batch_size` at a time (one ruff run,
one function call or one HTTP request per batch). A code validator with several target columns
checks each separately: the value is `{target: result}`. A remote batch that still fails after
its retries (transport error, timeout, 429/5xx, or an answer of the wrong shape) gives
`{"is_valid": None}` for its rows, as Data Designer does, so finished rows are never lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import jsonschema

from rowloom.config.columns import ValidationColumnConfig
from rowloom.config.scheduling import SchedulingMetadata
from rowloom.config.validators import (
    CodeValidatorParams,
    LocalCallableValidatorParams,
    RemoteValidatorParams,
)
from rowloom.generators.base import BatchGenerator, BatchInput, CellContext
from rowloom.generators.code_checks import (
    check_sqlglot,
    ruff_binary,
    validate_python,
    validate_sql,
)

_log = logging.getLogger(__name__)
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ValidatorContractError(Exception):
    """A local validation function raised or returned something other than one result with
    `is_valid` per row: a programming error that stops the run."""


class ValidationGenerator(BatchGenerator):
    """Runs the column's validator over the target columns of a row group."""

    def __init__(self, config: ValidationColumnConfig) -> None:
        super().__init__(config)
        self.config: ValidationColumnConfig = config
        self.params = config.validator_params
        self.targets = list(config.target_columns)
        self.batch_size = config.batch_size
        self._ruff: str | None = None
        location = f"columns.{config.name}"
        if isinstance(self.params, CodeValidatorParams):
            if self.params.code_lang == "python":
                self._ruff = ruff_binary(location)
            else:
                check_sqlglot(location)
        self._slots = (
            asyncio.Semaphore(self.params.max_parallel_requests)
            if isinstance(self.params, RemoteValidatorParams)
            else None
        )

    def get_scheduling_metadata(self) -> SchedulingMetadata:
        """Remote validators wait on their endpoint (a `custom_model` resource, weight its
        parallel requests); code and local validators use local slots."""
        if isinstance(self.params, RemoteValidatorParams):
            url = urlparse(self.params.endpoint_url)
            return SchedulingMetadata.custom_model(
                "remote_validator",
                f"{url.netloc}{url.path}" or url.netloc,
                weight=self.params.max_parallel_requests,
            )
        return SchedulingMetadata.local("validation")

    def generate_batch(self, batch: BatchInput) -> list[Any]:  # pragma: no cover - async only
        raise NotImplementedError("validation runs through agenerate_batch")

    async def agenerate_batch(self, batch: BatchInput, ctx: CellContext) -> list[Any]:
        n = len(batch.global_rows)
        if n == 0:
            return []
        if isinstance(self.params, CodeValidatorParams) and len(self.targets) > 1:
            per_target = {t: await self._validate(batch, [t]) for t in self.targets}
            return [{t: per_target[t][i] for t in self.targets} for i in range(n)]
        return await self._validate(batch, self.targets)

    async def _validate(self, batch: BatchInput, columns: Sequence[str]) -> list[Any]:
        records = [{c: batch.columns[c][i] for c in columns} for i in range(len(batch.global_rows))]
        chunks = [records[i : i + self.batch_size] for i in range(0, len(records), self.batch_size)]
        results = await asyncio.gather(*(self._validate_chunk(c, columns) for c in chunks))
        return [r for chunk in results for r in chunk]

    async def _validate_chunk(
        self, records: list[dict[str, Any]], columns: Sequence[str]
    ) -> list[dict[str, Any]]:
        params = self.params
        if isinstance(params, CodeValidatorParams):
            codes = [r[columns[0]] for r in records]
            if self._ruff is not None:
                return await validate_python(codes, self._ruff)
            return [validate_sql(code, params.code_lang) for code in codes]
        if isinstance(params, LocalCallableValidatorParams):
            return await asyncio.to_thread(_call_local, params, records)
        assert self._slots is not None
        async with self._slots:
            return await _post_remote(params, records, self.name)


def _call_local(
    params: LocalCallableValidatorParams, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    import pandas as pd

    name = getattr(params.validation_function, "__name__", "validation_function")
    try:
        result = params.validation_function(pd.DataFrame(records))
    except Exception as exc:
        raise ValidatorContractError(f"{name} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, pd.DataFrame):
        rows = json.loads(result.to_json(orient="records"))
    elif isinstance(result, list):
        rows = result
    else:
        raise ValidatorContractError(f"{name} returned {type(result).__name__}, not a DataFrame")
    problem = _result_problem(rows, len(records), params.output_schema)
    if problem:
        raise ValidatorContractError(f"{name}: {problem}")
    return [dict(r) for r in rows]


def _result_problem(rows: Any, expected: int, schema: Mapping[str, Any] | None) -> str:
    """Why validator output is unusable ("" when it is fine)."""
    if not isinstance(rows, list) or len(rows) != expected:
        got = len(rows) if isinstance(rows, list) else type(rows).__name__
        return f"expected {expected} results, got {got}"
    for row in rows:
        if not isinstance(row, Mapping) or "is_valid" not in row:
            return "every result needs an 'is_valid' field"
        if row["is_valid"] is not None and not isinstance(row["is_valid"], bool):
            return f"is_valid must be a boolean or null, got {row['is_valid']!r}"
    if schema is not None:
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(dict(schema)).iter_errors({"data": rows})
        )
        if error is not None:
            return f"output does not match output_schema: {error.message[:300]}"
    return ""


_MAX_RETRY_WAIT = 60.0


def retry_wait(backoff: float, attempt: int) -> float:
    """Seconds before retry `attempt` (>= 1): `backoff**attempt - 1`, at most 60 s (no float
    overflow for any backoff or attempt count)."""
    if attempt * math.log(backoff) >= math.log(_MAX_RETRY_WAIT + 1):
        return _MAX_RETRY_WAIT
    return float(backoff**attempt - 1)


async def _post_remote(
    params: RemoteValidatorParams, records: list[dict[str, Any]], column: str
) -> list[dict[str, Any]]:
    import httpx

    problem = ""
    async with httpx.AsyncClient(timeout=httpx.Timeout(params.timeout)) as client:
        for attempt in range(params.max_retries + 1):
            if attempt:
                await asyncio.sleep(retry_wait(params.retry_backoff, attempt))
            try:
                response = await client.post(params.endpoint_url, json={"data": records})
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in _RETRY_STATUSES:
                problem = f"HTTP {response.status_code}"
                continue
            problem = _remote_problem(response, len(records), params.output_schema)
            if not problem:
                return [dict(r) for r in response.json()["data"]]
            break  # a well-delivered but wrong answer is not retried
    _log.warning(
        "validation column %r: remote validator %s failed for %d rows (%s); is_valid is null",
        column,
        params.endpoint_url,
        len(records),
        problem,
    )
    return [{"is_valid": None} for _ in records]


def _remote_problem(response: Any, expected: int, schema: Mapping[str, Any] | None) -> str:
    if response.status_code >= 400:
        return f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return "the answer is not JSON"
    if schema is not None:
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(dict(schema)).iter_errors(body)
        )
        if error is not None:
            return f"the answer does not match output_schema: {error.message[:300]}"
    if not isinstance(body, Mapping):
        return "the answer is not a JSON object with 'data'"
    return _result_problem(body.get("data"), expected, None)
