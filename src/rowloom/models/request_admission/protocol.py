"""`RequestAdmissionController`: the request-admission contract the executor programs against."""

from __future__ import annotations

from typing import Protocol

from rowloom.leases import ReleaseResult
from rowloom.models.request_admission.config import RequestAdmissionConfig
from rowloom.models.request_admission.decisions import (
    RequestAdmissionDecision,
    RequestAdmissionLease,
)
from rowloom.models.request_admission.outcomes import RequestReleaseOutcome
from rowloom.models.request_admission.pressure import RequestPressureSnapshotProvider
from rowloom.models.request_admission.resources import RequestAdmissionItem


class RequestAdmissionController(Protocol):
    """Request-level admission: one lease per concrete call attempt, released exactly once."""

    @property
    def config(self) -> RequestAdmissionConfig:
        """The configuration it admits by (the executor reads the default cooldown)."""
        ...

    @property
    def pressure(self) -> RequestPressureSnapshotProvider:
        """Read-only request pressure (no mutating method)."""
        ...

    def try_acquire(self, item: RequestAdmissionItem) -> RequestAdmissionDecision:
        """A lease now, or a denial; never jumps queued waiters (`queued_waiters_ahead`)."""
        ...

    def acquire_sync(self, item: RequestAdmissionItem) -> RequestAdmissionLease:
        """A lease now, or `RequestAdmissionError`; never waits."""
        ...

    async def acquire_async(self, item: RequestAdmissionItem) -> RequestAdmissionLease:
        """Wait for a lease; raises `RequestAdmissionError` on timeout, shutdown, hard denial."""
        ...

    def release(
        self, lease: RequestAdmissionLease, outcome: RequestReleaseOutcome
    ) -> ReleaseResult:
        """Return a lease's capacity once; never raises, a bad release adds no capacity."""
        ...

    def shutdown(self) -> None:
        """Fail every waiter with a `shutdown` denial and refuse new acquires."""
        ...

    def in_flight_total(self) -> int: ...

    def waiters_total(self) -> int: ...
