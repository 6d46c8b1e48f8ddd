"""Validator parameters of `validation` columns, one model per `validator_type` (Data
Designer's names and defaults)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rowloom.config.callables import CustomFunction, resolve_callable
from rowloom.config.code_lang import VALIDATABLE_CODE_LANGS, CodeLang
from rowloom.config.paths import base_dir_of

ValidatorType: TypeAlias = Literal["code", "local_callable", "remote"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeValidatorParams(_Params):
    """Check code: Python is compiled and linted (ruff), SQL parsed in its dialect (sqlglot)."""

    validator_type: Literal["code"] = "code"
    code_lang: CodeLang

    @field_validator("code_lang")
    @classmethod
    def _checkable(cls, value: str) -> str:
        if value not in VALIDATABLE_CODE_LANGS:
            raise ValueError(
                f"a code validator checks {list(VALIDATABLE_CODE_LANGS)}, not {value!r}"
            )
        return value


class LocalCallableValidatorParams(_Params):
    """Call `validation_function(df) -> df` with an `is_valid` column, one batch at a time."""

    validator_type: Literal["local_callable"] = "local_callable"
    validation_function: CustomFunction
    output_schema: dict[str, Any] | None = Field(
        None, description="JSON schema the function's output `{data: [...]}` must satisfy"
    )

    @field_validator("validation_function", mode="before")
    @classmethod
    def _load(cls, value: Any, info: ValidationInfo) -> Any:
        return resolve_callable(value, base_dir_of(info))


class RemoteValidatorParams(_Params):
    """POST `{"data": [records]}` to `endpoint_url`; the answer is `{"data": [{is_valid, ...}]}`."""

    validator_type: Literal["remote"] = "remote"
    endpoint_url: str
    output_schema: dict[str, Any] | None = None
    timeout: float = Field(30.0, gt=0, description="seconds per HTTP request")
    max_retries: int = Field(3, ge=0, description="retries on 429/5xx and transport errors")
    retry_backoff: float = Field(
        2.0, gt=1, description="exponential backoff base (s); one wait is at most 60 s"
    )
    max_parallel_requests: int = Field(4, ge=1, le=1024)

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = urlparse(value)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"endpoint_url must be an http(s) URL, got {value!r}")
        return value


ValidatorParams = Annotated[
    CodeValidatorParams | LocalCallableValidatorParams | RemoteValidatorParams,
    Field(discriminator="validator_type"),
]


_LINTER_MESSAGE_SHAPE = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "symbol": {"type": "string"},
        "line": {"type": "integer"},
        "column": {"type": "integer"},
        "message": {"type": "string"},
    },
    "additionalProperties": False,
}


def code_validation_shape(code_lang: str) -> dict[str, Any]:
    """The value a code validator gives one piece of code (Data Designer's fields)."""
    if code_lang == "python":
        properties: dict[str, Any] = {
            "is_valid": {"type": "boolean"},
            "python_linter_score": {"type": "number"},
            "python_linter_severity": {"type": "string"},
            "python_linter_messages": {"type": "array", "items": _LINTER_MESSAGE_SHAPE},
        }
    else:
        properties = {"is_valid": {"type": "boolean"}, "error_messages": {"type": "string"}}
    return {"type": "object", "properties": properties, "additionalProperties": False}
