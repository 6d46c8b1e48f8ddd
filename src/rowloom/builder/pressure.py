"""`RequestPressureBridge`: request admission's pressure, read by the task policy."""

from __future__ import annotations

from rowloom.models.request_admission import (
    RequestDomain,
    RequestPressureSnapshotProvider,
    RequestResourceKey,
)
from rowloom.scheduling import RequestPressure


class RequestPressureBridge:
    """Request admission's read-only pressure as the task policy's `RequestPressureReader`.

    Maps a model group's metadata identity `("model", provider, model_id, generation_kind)` to
    its request resource and reads that resource's snapshot; never calls a mutating method.
    """

    __slots__ = ("_keys", "_provider")

    def __init__(self, provider: RequestPressureSnapshotProvider) -> None:
        self._provider = provider
        self._keys: dict[tuple[str, ...], tuple[RequestResourceKey, str] | None] = {}

    def pressure(self, identity: tuple[str, ...]) -> RequestPressure | None:
        """The pressure of the resource a group with `identity` calls; None if it has none."""
        try:
            resolved = self._keys[identity]
        except KeyError:
            key = _resource_of(identity)
            resolved = self._keys[identity] = None if key is None else (key, key.as_key_str())
        if resolved is None:
            return None
        snap = self._provider.snapshot(resolved[0])
        if snap is None:
            return None
        return RequestPressure(
            resolved[1],
            snap.in_flight,
            snap.current_limit,
            snap.waiters,
            snap.available,
            snap.blocked_until_monotonic,
        )


def _resource_of(identity: tuple[str, ...]) -> RequestResourceKey | None:
    if len(identity) != 4 or identity[0] != "model":
        return None
    try:
        return RequestResourceKey.of(identity[1], identity[2], RequestDomain(identity[3]))
    except ValueError:
        return None
