"""Deferred request events: collected during one controller operation, emitted after it.

`pending` is None when no sink is attached, so callers skip building snapshots and diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from rowloom.models.request_admission.resources import RequestAdmissionItem, RequestResourceKey
from rowloom.observability.events import JsonValue, RequestEventEmitter

Pending: TypeAlias = list[tuple[str, dict[str, Any]]]

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
    if ctx is not None and ctx.task_execution_id is not None:
        diagnostics = dict(diagnostics or {}, task_execution_id=ctx.task_execution_id)
    pending.append(
        (
            kind,
            {
                "correlation": ctx.captured_correlation if ctx is not None else NO_CORRELATION,
                "request_attempt_id": ctx.request_attempt_id if ctx is not None else None,
                "request_lease_id": lease_id,
                "request_resource_key": item.resource,
                "request_group_key": item.group.key,
                "reason": reason,
                "snapshot": snapshot,
                "diagnostics": diagnostics,
            },
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
        (
            kind,
            {
                "correlation": NO_CORRELATION,
                "request_resource_key": resource,
                "reason": reason,
                "snapshot": snapshot,
                "diagnostics": diagnostics,
            },
        )
    )


def flush(emitter: RequestEventEmitter | None, pending: Pending | None) -> None:
    """Emit the buffered events in order (the emitter shields the caller from sink failures)."""
    if emitter is None or not pending:
        return
    for kind, fields in pending:
        emitter.emit(kind, **fields)
    pending.clear()
