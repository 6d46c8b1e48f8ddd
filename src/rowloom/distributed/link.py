"""`ShareLink`: one worker's line to its providers' limit coordinators (no Ray here).

The link reports the worker's shares every `interval` seconds, and at once when a 429 cut a
share (the controller pokes it), one report in flight at a time; it applies the grants that
come back. The transport is injected (`send(provider, worker, reports) -> grants`): a Ray
actor call in the engine, a plain coroutine in tests. A coordinator that fails or does not
answer within `timeout` is lost: the worker keeps its last shares (at least 1 each) and cuts
them on its own 429s until the coordinator answers again (a restarted one starts low).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from rowloom.clock import Clock, sleep_until
from rowloom.models.request_admission import AdaptiveRequestAdmissionController
from rowloom.models.request_admission.fleet import PROVIDER_PREFIX
from rowloom.models.request_admission.shares import ShareGrant, ShareReport

_log = logging.getLogger(__name__)

SendReports = Callable[[str, str, dict[str, ShareReport]], Awaitable[dict[str, ShareGrant]]]
"""`send(provider, worker, reports)`: one coordinator's grants for the worker's reports."""

REPORT_INTERVAL = 0.2
"""Seconds between a worker's reports to each coordinator."""


def provider_of(key: str) -> str:
    """The provider a share key belongs to (`provider:<name>` or `<name>/<model>/<domain>`)."""
    if key.startswith(PROVIDER_PREFIX):
        return key[len(PROVIDER_PREFIX) :]
    return key.split("/", 1)[0]


@dataclass
class ShareHistory:
    """Every share change a worker adopted, for the run's fleet view."""

    worker: str
    changes: list[dict[str, object]] = field(default_factory=list)
    reports: int = 0
    lost: int = 0


class ShareLink:
    """Reports and grants between one worker and its coordinators (see the module docstring)."""

    def __init__(
        self,
        worker: str,
        send: SendReports,
        keys: Mapping[str, int],
        *,
        clock: Clock,
        interval: float = REPORT_INTERVAL,
        timeout: float = 2.0,
    ) -> None:
        self._worker = worker
        self._send = send
        self._keys = dict(keys)
        self._clock = clock
        self._interval = interval
        self._timeout = timeout
        self._controller: AdaptiveRequestAdmissionController | None = None
        self._grants: dict[str, ShareGrant] = {}
        self._wake = asyncio.Event()
        self._lost: set[str] = set()
        self._stopped = False
        self.history = ShareHistory(worker)

    @property
    def lost(self) -> frozenset[str]:
        """Providers whose coordinator did not answer the last report."""
        return frozenset(self._lost)

    def attach(self, controller: AdaptiveRequestAdmissionController) -> None:
        """Put a (new) controller under the fleet shares, starting from the last grants."""
        self._controller = controller
        controller.attach_shares(self._keys, on_cut=self.poke)
        if self._grants:
            controller.set_shares(self._grants)
        self.poke()

    def poke(self) -> None:
        """Report now (a 429 cut a share, or a controller was attached)."""
        self._wake.set()

    async def run(self) -> None:
        """Report every interval, or at once when poked, until `stop` (or cancelled)."""
        while not self._stopped:
            await self._wait()
            if not self._stopped:
                await self.report_once()

    def stop(self) -> None:
        """End `run` at its next turn (a cancellation that lands as a report completes can be
        swallowed by `asyncio.wait_for` on Python 3.11: the flag cannot)."""
        self._stopped = True
        self._wake.set()

    async def report_once(self) -> None:
        """One report to every coordinator; adopt what they grant."""
        controller = self._controller
        if controller is None:
            return
        live = not controller.is_shutdown
        # between batches nothing is in flight or waiting: say so, so the shares go elsewhere
        reports = controller.share_reports() if live else self._idle_reports()
        by_provider: dict[str, dict[str, ShareReport]] = {}
        for key, report in reports.items():
            by_provider.setdefault(provider_of(key), {})[key] = report
        results = await asyncio.gather(
            *(self._ask(p, r) for p, r in by_provider.items()), return_exceptions=True
        )
        grants: dict[str, ShareGrant] = {}
        for provider, result in zip(by_provider, results, strict=True):
            if isinstance(result, BaseException):
                if provider not in self._lost:
                    _log.warning("coordinator of %s lost: %s", provider, result)
                    self.history.lost += 1
                self._lost.add(provider)
                continue
            self._lost.discard(provider)
            grants.update(result)
        self.history.reports += 1
        if self._lost and live:
            controller.orphan_shares()
        if grants:
            self._note(grants)
            self._grants.update(grants)
            if live:
                controller.set_shares(grants)

    def _idle_reports(self) -> dict[str, ShareReport]:
        return {
            key: ShareReport(g.share, g.generation, g.epoch, in_flight=0, waiting=0)
            for key, g in self._grants.items()
        }

    async def _ask(self, provider: str, reports: dict[str, ShareReport]) -> dict[str, ShareGrant]:
        return await asyncio.wait_for(self._send(provider, self._worker, reports), self._timeout)

    def _note(self, grants: Mapping[str, ShareGrant]) -> None:
        now = self._clock.monotonic()
        for key, grant in grants.items():
            old = self._grants.get(key)
            if old is None or old.share != grant.share or old.generation != grant.generation:
                self.history.changes.append(
                    {
                        "t": round(now, 3),
                        "worker": self._worker,
                        "key": key,
                        "share": grant.share,
                        "limit": grant.limit,
                        "generation": grant.generation,
                    }
                )

    async def _wait(self) -> None:
        if self._wake.is_set():
            self._wake.clear()
            return
        deadline = self._clock.monotonic() + self._interval
        woken = asyncio.ensure_future(self._wake.wait())
        timer = asyncio.ensure_future(sleep_until(self._clock, deadline))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (woken, timer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._wake.clear()
