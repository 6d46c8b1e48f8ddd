"""Deferred request events: collected during one controller operation, emitted after it.

`pending` is None when no sink is attached, so callers skip building snapshots and diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from rowloom.models.request_admission.resources import RequestAdmissionItem, RequestResourceKey
from rowloom.observability.events import JsonValue, RequestEventEmitter

Pending: TypeAlias = list[tuple[Any, ...]]
"""(kind, correlation, attempt id, lease id, resource, group, reason, snapshot, diagnostics,
the task execution id that belongs in the diagnostics)"""

NO_CORRELATION: Final[Mapping[str, JsonValue]] = MappingProxyType({})


def new_pending(emitter: RequestEventEmitter | None) -> Pending | None:
    """A buffer for one operation's events, or None when nothing would receive them."""
    return [] if emitter is not None and emitter.enabled else None


def item_event(
    pending: Pending,
    kind: str,
    item: RequestAdmissionItem,
    *,
    lease_id: str | None = None,
    reason: str | None = None,
    snapshot: Any = None,
    diagnostics: dict[str, Any] | None = None,
) -> None:
    """An event about one call attempt: its correlation, attempt id, resource and group."""
    ctx = item.event_context
    correlation, attempt_id, execution_id = (
        (NO_CORRELATION, None, None)
        if ctx is None
        else (ctx.captured_correlation, ctx.request_attempt_id, ctx.task_execution_id)
    )
    pending.append(
        (
            kind,
            correlation,
            attempt_id,
            lease_id,
            item.resource,
            item.group.key,
            reason,
            snapshot,
            diagnostics,
            execution_id,
        )
    )


def resource_event(
    pending: Pending,
    kind: str,
    resource: RequestResourceKey,
    *,
    cause: RequestAdmissionItem | None = None,
    reason: str | None = None,
    snapshot: Any = None,
    diagnostics: dict[str, Any] | None = None,
) -> None:
    """An event about a resource; `cause` (the item whose release caused it) lends correlation."""
    if cause is not None:
        item_event(pending, kind, cause, reason=reason, snapshot=snapshot, diagnostics=diagnostics)
        return
    pending.append(
        (kind, NO_CORRELATION, None, None, resource, None, reason, snapshot, diagnostics, None)
    )


def bare_event(
    pending: Pending, kind: str, *, reason: str | None, diagnostics: dict[str, Any]
) -> None:
    """An event with neither correlation, attempt nor resource (a release of no lease)."""
    pending.append((kind, NO_CORRELATION, None, None, None, None, reason, None, diagnostics, None))


def flush(emitter: RequestEventEmitter | None, pending: Pending | None) -> None:
    """Emit the buffered events in order (the emitter shields the caller from sink failures)."""
    if emitter is None or not pending:
        return
    emit = emitter.emit_fields
    for fields in pending:
        emit(*fields)
    pending.clear()
