"""Live progress for long runs: rows done and rate, ETA, and per provider/model/domain the
in-flight count, current limit, waiters, 429s and cooldown remaining.

`live` redraws a rich table in place (TTY); `plain` prints one log line at intervals (CI, pipes);
`quiet` prints nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Literal, TypeVar

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rowloom.builder.outputs import RunMonitor
from rowloom.models.usage import usage_report

T = TypeVar("T")
ProgressMode = Literal["live", "plain", "quiet"]


def _si(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressDisplay:
    """Renders a `RunMonitor` while a run's coroutine executes."""

    def __init__(
        self,
        monitor: RunMonitor,
        *,
        mode: ProgressMode,
        console: Console | None = None,
        interval: float = 0.25,
        plain_interval: float = 5.0,
    ) -> None:
        self.monitor = monitor
        self.mode = mode
        self.console = console or Console(stderr=True)
        self.interval = interval
        self.plain_interval = plain_interval

    def headline(self) -> str:
        """`rows finished/total (written), rate, requests, ETA` as one line. Rows count as
        they finish (every column done, or dropped); written rows as row groups checkpoint."""
        m = self.monitor
        elapsed = max(1e-9, time.monotonic() - m.started_at)
        done = min(m.rows_total, m.rows_resumed + m.rows_finished)
        rate = m.rows_finished / elapsed
        remaining = max(0, m.rows_total - done)
        eta = remaining / rate if rate > 0 else None
        requests = m.executor.stats.attempts if m.executor is not None else 0
        return (
            f"rows {done}/{m.rows_total} ({m.rows_written} written)  {rate:,.1f} rows/s  "
            f"tasks {m.tasks_done}  "
            f"requests {requests}{self._in_flight()}{self._tokens()}  "
            f"elapsed {_fmt_eta(elapsed)}  ETA {_fmt_eta(eta)}"
        )

    def _in_flight(self) -> str:
        """`  in flight 12 (oldest 3.4s), 2 stragglers cancelled`: attempts sent, not answered."""
        executor = self.monitor.executor
        if executor is None:
            return ""
        oldest = executor.oldest_attempt_age()
        text = f"  in flight {executor.attempts_in_flight}"
        if oldest is not None:
            text += f" (oldest {oldest:.1f}s)"
        if executor.stragglers_cancelled:
            text += f", {executor.stragglers_cancelled} stragglers cancelled"
        return text

    def _tokens(self) -> str:
        """`  tokens 12.3k in / 4.5k out (1.2k reasoning) ~$0.0123` for this session."""
        executor = self.monitor.executor
        if executor is None:
            return ""
        session = executor.usage.session
        total = session.total()
        if not total.requests:
            return ""
        text = f"  tokens {_si(total.prompt_tokens)} in / {_si(total.completion_tokens)} out"
        if total.reasoning_tokens:
            text += f" ({_si(total.reasoning_tokens)} reasoning)"
        cost = usage_report(session, self.monitor.prices)["total"].get("estimated_cost")
        return text + (f"  ~{cost:.4f}" if cost is not None else "")

    def provider_table(self) -> Table:
        """Per provider/model/domain: in flight / limit / cap, waiters, 429s, cooldown."""
        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in (
            "provider/model/domain",
            "in flight",
            "limit",
            "max",
            "waiters",
            "429s",
            "cooldown",
        ):
            table.add_column(col, justify="left" if col.startswith("provider") else "right")
        admission = self.monitor.admission
        if admission is None:
            return table
        for key, snap in admission.pressure.snapshots().items():
            cooldown = snap.cooldown_remaining_seconds
            table.add_row(
                key.as_key_str(),
                str(snap.in_flight),
                str(snap.current_limit),
                str(snap.effective_max),
                str(snap.waiters),
                str(snap.rate_limited_total),
                f"{cooldown:.1f}s" if cooldown > 0 else "-",
            )
        return table

    def render(self) -> Group:
        return Group(Text(self.headline()), self.provider_table())

    def plain_line(self) -> str:
        parts = [self.headline()]
        admission = self.monitor.admission
        if admission is not None:
            for key, s in admission.pressure.snapshots().items():
                parts.append(
                    f"[{key.as_key_str()} {s.in_flight}/{s.current_limit} w{s.waiters} "
                    f"429s={s.rate_limited_total}"
                    + (f" cooldown={s.cooldown_remaining_seconds:.1f}s]" if s.in_cooldown else "]")
                )
        return "  ".join(parts)

    async def run(self, work: Awaitable[T]) -> T:
        """Await `work` while displaying progress; the display never outlives it."""
        task = asyncio.ensure_future(work)
        if self.mode == "quiet":
            return await task
        try:
            if self.mode == "live":
                with Live(
                    self.render(), console=self.console, refresh_per_second=4, transient=False
                ) as live:
                    while not task.done():
                        await asyncio.wait({task}, timeout=self.interval)
                        live.update(self.render())
            else:
                while not task.done():
                    await asyncio.wait({task}, timeout=self.plain_interval)
                    if not task.done():  # the summary follows the last line, not a stale one
                        self.console.print(self.plain_line(), highlight=False, soft_wrap=True)
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        return task.result()
