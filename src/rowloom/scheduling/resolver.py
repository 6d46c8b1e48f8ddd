"""Scheduler inputs from static metadata: which fairness group, which scheduler resources.

`TaskSchedulingResolver` asks each generator for its `SchedulingMetadata` once per run, turns
it into a `ResolvedTaskScheduling`, and caches it by column. Invalid metadata with a fallback
is recorded as a diagnostic and the fallback is used; without a fallback resolution fails with
`TaskSchedulingResolutionError` before any task exists.

Model generators derive their metadata from their aliases through
`rowloom.models.resources.ModelResourceCatalog.scheduling_metadata` (the one home of that
rule); the resolver only reads what a generator declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from rowloom.config.scheduling import SchedulingMetadata, SchedulingMetadataError
from rowloom.scheduling.resources import (
    SUBMISSION_AND_LOCAL,
    SUBMISSION_ONLY,
    SchedulableTask,
    SchedulerResourceRequest,
    TaskGroupKey,
    TaskGroupSpec,
    task_id_of,
)
from rowloom.scheduling.task_model import Task


class SchedulingMetadataSource(Protocol):
    """Anything that declares its scheduling metadata (a column generator)."""

    def get_scheduling_metadata(self) -> SchedulingMetadata: ...


@dataclass(frozen=True, slots=True)
class ResolvedTaskScheduling:
    """The fairness group and scheduler resources of every task of one column."""

    group: TaskGroupSpec
    resource_request: SchedulerResourceRequest


@dataclass(frozen=True, slots=True)
class ResolutionDiagnostic:
    """Something the resolver noticed: a fallback taken, or metadata that carries diagnostics."""

    column: str
    code: str
    message: str
    fallback: SchedulingMetadata | None = None
    diagnostics: Mapping[str, Any] = field(default_factory=dict)


class TaskSchedulingResolutionError(Exception):
    """Fatal: a column's scheduling metadata is invalid and has no safe fallback."""

    def __init__(
        self, column: str, code: str, message: str, diagnostics: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"column {column!r}: {code}: {message}")
        self.column = column
        self.code = code
        self.message = message
        self.diagnostics: dict[str, Any] = dict(diagnostics or {})


def resource_request_for(metadata: SchedulingMetadata) -> SchedulerResourceRequest:
    """Every task needs one `submission`; local-kind tasks also need one `local`."""
    return SUBMISSION_AND_LOCAL if metadata.kind == "local" else SUBMISSION_ONLY


class TaskSchedulingResolver:
    """Per-run resolver and cache: column -> `ResolvedTaskScheduling`.

    A column is resolved at most once; later calls return the cached value. Not thread-safe:
    resolve every column during run preparation, then share it read-only.
    """

    def __init__(self) -> None:
        self._by_column: dict[str, ResolvedTaskScheduling] = {}
        self._diagnostics: list[ResolutionDiagnostic] = []

    def resolve(
        self,
        column: str,
        generator: SchedulingMetadataSource,
        output_columns: Sequence[str] | None = None,
    ) -> ResolvedTaskScheduling:
        """Resolve (or return the cached resolution of) `column`.

        `output_columns` are every column the generator writes (default: just `column`); they
        join the metadata identity in the group key. Raises `TaskSchedulingResolutionError`
        when the metadata is invalid and carries no fallback.
        """
        cached = self._by_column.get(column)
        if cached is not None:
            return cached
        metadata = self._metadata_of(column, generator)
        if metadata.diagnostics:
            self._diagnostics.append(
                ResolutionDiagnostic(
                    column,
                    "metadata_diagnostics",
                    "scheduling metadata carries diagnostics",
                    diagnostics=dict(metadata.diagnostics),
                )
            )
        columns = tuple(output_columns) if output_columns else (column,)
        resolved = ResolvedTaskScheduling(
            group=TaskGroupSpec(TaskGroupKey(metadata.identity, columns), metadata.weight),
            resource_request=resource_request_for(metadata),
        )
        self._by_column[column] = resolved
        return resolved

    def resolve_all(
        self, generators: Iterable[tuple[str, SchedulingMetadataSource]]
    ) -> Mapping[str, ResolvedTaskScheduling]:
        """Resolve every `(column, generator)`; the first fatal error is raised."""
        for column, generator in generators:
            self.resolve(column, generator)
        return self.resolutions()

    def resolved(self, column: str) -> ResolvedTaskScheduling:
        """The cached resolution of `column`; KeyError if it was never resolved."""
        try:
            return self._by_column[column]
        except KeyError:
            raise KeyError(f"column {column!r} was not resolved before scheduling") from None

    def resolutions(self) -> Mapping[str, ResolvedTaskScheduling]:
        """Every resolution so far, by column (read-only)."""
        return MappingProxyType(self._by_column)

    def schedulable(self, task: Task) -> SchedulableTask:
        """`task` with its stable id, group and resource request (its column must be resolved)."""
        resolved = self.resolved(task.column)
        return SchedulableTask(task_id_of(task), task, resolved.group, resolved.resource_request)

    @property
    def diagnostics(self) -> tuple[ResolutionDiagnostic, ...]:
        """Fallbacks taken and metadata diagnostics, in resolution order."""
        return tuple(self._diagnostics)

    def _metadata_of(self, column: str, generator: SchedulingMetadataSource) -> SchedulingMetadata:
        try:
            metadata = generator.get_scheduling_metadata()
        except SchedulingMetadataError as err:
            if err.fallback is None:
                raise TaskSchedulingResolutionError(
                    column, err.code, err.message, err.diagnostics
                ) from err
            self._diagnostics.append(
                ResolutionDiagnostic(column, err.code, err.message, err.fallback, err.diagnostics)
            )
            return err.fallback
        except Exception as exc:
            raise TaskSchedulingResolutionError(
                column, "metadata_raised", f"get_scheduling_metadata() raised {exc!r}"
            ) from exc
        if not isinstance(metadata, SchedulingMetadata):
            raise TaskSchedulingResolutionError(
                column,
                "invalid_metadata_type",
                f"get_scheduling_metadata() returned {type(metadata).__name__}, "
                "not SchedulingMetadata",
            )
        return metadata
