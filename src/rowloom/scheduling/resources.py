"""Scheduler inputs: fairness groups, scheduler-owned resources, and schedulable tasks.

These are the values the resolver produces once per run and the tracker, queue and task
admission pass around. Scheduler resources (`submission`, `local`, ...) are task-stage slots
owned by the scheduler; they are never provider request keys (request admission owns those).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NewType

from rowloom.scheduling.task_model import Task, TaskType

SchedulerResourceKey = NewType("SchedulerResourceKey", str)
"""A scheduler-owned task-stage resource. An open set; the V1 keys are below."""

SUBMISSION: Final = SchedulerResourceKey("submission")
"""One running worker slot; every task needs exactly one."""

LOCAL: Final = SchedulerResourceKey("local")
"""A slot for work that runs in this process (local-kind generators)."""


@dataclass(frozen=True, slots=True)
class TaskGroupKey:
    """Identity of a fairness group: metadata identity plus the generator's output columns.

    Because the output columns are part of the key, each column is its own group even when
    two columns share a model endpoint.
    """

    identity: tuple[str, ...]
    output_columns: tuple[str, ...]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.identity or not self.output_columns:
            raise ValueError("a task group key needs an identity and at least one output column")
        object.__setattr__(self, "_hash", hash((self.identity, self.output_columns)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def kind(self) -> str:
        """The scheduling metadata kind (`local`, `model`, `custom_model`)."""
        return self.identity[0]

    def as_key_str(self) -> str:
        """`identity/...|columns,...` for events and JSON keys; stable across runs."""
        return "/".join(self.identity) + "|" + ",".join(self.output_columns)

    def as_json(self) -> str:
        """The key as JSON: its `as_key_str()`."""
        return self.as_key_str()

    @property
    def identity_hash(self) -> str:
        """A short stable hash of the metadata identity (for correlation)."""
        return hashlib.blake2b("/".join(self.identity).encode(), digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class TaskGroupSpec:
    """A fairness group and its static weight (at least 1)."""

    key: TaskGroupKey
    weight: int

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise ValueError(f"group weight must be a positive int, got {self.weight!r}")


@dataclass(frozen=True, slots=True, eq=False)
class SchedulerResourceRequest:
    """Scheduler resources one task holds while it runs: positive amounts, by key.

    Equal requests compare and hash equal regardless of the mapping's insertion order.
    """

    amounts: Mapping[SchedulerResourceKey, int]

    def __post_init__(self) -> None:
        normalised: dict[SchedulerResourceKey, int] = {}
        for key in sorted(self.amounts):
            amount = self.amounts[key]
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
                raise ValueError(f"resource amount for {key!r} must be a positive int: {amount!r}")
            normalised[key] = amount
        object.__setattr__(self, "amounts", MappingProxyType(normalised))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchedulerResourceRequest):
            return NotImplemented
        return dict(self.amounts) == dict(other.amounts)

    def __hash__(self) -> int:
        return hash(tuple(self.amounts.items()))

    def get(self, key: SchedulerResourceKey) -> int:
        """The amount of `key` requested (0 when absent)."""
        return self.amounts.get(key, 0)

    def as_json(self) -> dict[str, int]:
        """`{resource: amount}`."""
        return {str(key): amount for key, amount in self.amounts.items()}


SUBMISSION_ONLY: Final = SchedulerResourceRequest({SUBMISSION: 1})
"""What a model or custom-model task needs: one worker slot (request admission is elsewhere)."""

SUBMISSION_AND_LOCAL: Final = SchedulerResourceRequest({SUBMISSION: 1, LOCAL: 1})
"""What a local task needs: one worker slot and one local slot."""


@dataclass(frozen=True, slots=True)
class SchedulableTask:
    """A task ready to be queued: stable id, payload, fairness group, resource request."""

    task_id: str
    task: Task
    group: TaskGroupSpec
    resource_request: SchedulerResourceRequest


def stable_task_id(column: str, row_group: int, row_index: int | None, task_type: TaskType) -> str:
    """A short hex id that is the same for the same task in every run (blake2b, 64 bits)."""
    raw = f"{len(column)}:{column}|{row_group}|{row_index}|{task_type}".encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def task_id_of(task: Task) -> str:
    """`stable_task_id` of a `Task`."""
    return stable_task_id(task.column, task.row_group, task.row_index, task.task_type)
