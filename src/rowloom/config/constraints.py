"""Inequality constraints between sampler columns, enforced by rejection sampling.

A constraint compares a sampler column (`target_column`) with a number
(`scalar_inequality`) or with another sampler column (`column_inequality`). Rows whose draw
breaks it are drawn again, each from its own stream, up to a bounded number of attempts.
Data Designer's shape is accepted as is, including its older untagged form (the type then
follows from `rhs`: a number or a column name).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

InequalityOperator: TypeAlias = Literal["lt", "le", "gt", "ge"]
OPERATOR_SYMBOLS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}


class _Constraint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target_column: str = Field(min_length=1, description="the sampler column constrained")
    operator: InequalityOperator

    def describe(self) -> str:
        """`target > rhs`, for messages."""
        rhs: Any = getattr(self, "rhs", "?")
        return f"{self.target_column} {OPERATOR_SYMBOLS[self.operator]} {rhs}"


class ScalarInequalityConstraint(_Constraint):
    """`target_column <operator> rhs` for a number `rhs`."""

    constraint_type: Literal["scalar_inequality"] = "scalar_inequality"
    rhs: float


class ColumnInequalityConstraint(_Constraint):
    """`target_column <operator> rhs` where `rhs` names another sampler column."""

    constraint_type: Literal["column_inequality"] = "column_inequality"
    rhs: str = Field(min_length=1)


def compare(operator: InequalityOperator, a: Any, b: Any) -> Any:
    """`a <operator> b` (works on numbers and numpy arrays alike)."""
    if operator == "lt":
        return a < b
    if operator == "le":
        return a <= b
    if operator == "gt":
        return a > b
    return a >= b


def _constraint_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return getattr(value, "constraint_type", None)
    tag = value.get("constraint_type")
    if tag is not None:
        return str(tag)
    rhs = value.get("rhs")
    if isinstance(rhs, str):
        try:
            return "scalar_inequality" if math.isfinite(float(rhs)) else "column_inequality"
        except ValueError:
            return "column_inequality"
    return "scalar_inequality"


Constraint: TypeAlias = Annotated[
    Annotated[ScalarInequalityConstraint, Tag("scalar_inequality")]
    | Annotated[ColumnInequalityConstraint, Tag("column_inequality")],
    Discriminator(_constraint_tag),
]
"""A scalar or column inequality constraint (tagged by `constraint_type`, or inferred)."""
