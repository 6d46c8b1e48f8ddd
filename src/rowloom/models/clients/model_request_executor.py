"""`ModelRequestExecutor`: the one bridge between model clients and request admission.

Per concrete attempt: acquire a request lease, call the provider, classify the outcome,
release the exact lease in a `finally`. Its own retry loop takes a fresh lease per attempt:
a 429 waits out its Retry-After (or the configured cooldown) before retrying within a budget,
since Retry-After is addressed to the request that got it (the controller's cooldown, by
default, only lowers the limit for everyone else); 503/529 (overloaded) is released as
`rate_limited` too, so the limit is cut, and backs off like other 5xx; 5xx, connection failures
and provider timeouts back off exponentially with jitter; a 4xx other than 429 fails the cell at
once. Rate-limit headers of any answer travel to request admission in the release outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from rowloom.clock import Clock, SystemClock, sleep_until
from rowloom.config.models import (
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    ManualDistribution,
    UniformDistribution,
)
from rowloom.config.run import StragglerConfig
from rowloom.errors import NonRetryableTaskError, RetryableTaskError
from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    Message,
    ModelClient,
    ProviderError,
    ProviderOverloadedError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from rowloom.models.clients.provider_health import PROBE_BACKOFF_SECONDS, ProviderHealth, Verdict
from rowloom.models.clients.stragglers import AttemptWatch, WatchedAttempt
from rowloom.models.request_admission import (
    RequestAdmissionController,
    RequestAdmissionError,
    RequestAdmissionItem,
    RequestAdmissionLease,
    RequestDomain,
    RequestEventContext,
    RequestReleaseOutcome,
    RequestReleaseOutcomeKind,
    RequestResourceKey,
    RequestResourceResolver,
)
from rowloom.models.usage import CallTag, UsageLedger
from rowloom.observability.correlation import RuntimeCorrelationProvider
from rowloom.observability.events import RequestEventEmitter
from rowloom.provider_wire import RateLimitHeaders

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt budgets and backoff of the executor's retry loop."""

    max_transient_retries: int = 4
    max_rate_limit_retries: int = 30
    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 8.0
    local_deadline_grace_seconds: float = 5.0
    default_timeout_seconds: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_REQUEST_TIMEOUT_SECONDS)
    )
    """The attempt timeout by generation kind when the model sets none, so a provider that
    never answers cannot hold a request for long."""


@dataclass(slots=True)
class ExecutorStats:
    """Counters of outbound attempts by outcome kind (for summaries and tests)."""

    attempts: int = 0
    by_outcome: dict[str, int] | None = None

    def record(self, kind: str) -> None:
        self.attempts += 1
        if self.by_outcome is None:
            self.by_outcome = {}
        self.by_outcome[kind] = self.by_outcome.get(kind, 0) + 1


class _HeldBack(Exception):
    """An attempt not sent because another attempt is probing its provider."""


class _LocalDeadline(ProviderTimeoutError):
    """The executor's own deadline ended an attempt: its timeout, or as a straggler."""

    def __init__(self, message: str, *, provider: str, straggler: bool = False) -> None:
        super().__init__(message, provider=provider)
        self.straggler = straggler

    @property
    def error_class(self) -> str:
        return "provider_timeout"


class ModelRequestExecutor:
    """Runs model calls for generators through request admission, one lease per attempt."""

    def __init__(
        self,
        *,
        resolver: RequestResourceResolver,
        clients: Mapping[str, ModelClient],
        admission: RequestAdmissionController,
        events: RequestEventEmitter | None = None,
        correlation: RuntimeCorrelationProvider | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        stragglers: StragglerConfig | None = None,
        seed: int = 0,
    ) -> None:
        self._resolver = resolver
        self._catalog = resolver.catalog
        self._clients = clients
        self._admission = admission
        self._events = events or RequestEventEmitter(None, lambda: 0.0)
        self._correlation = correlation or RuntimeCorrelationProvider()
        self._clock = clock or SystemClock()
        self._retry = retry or RetryPolicy()
        self._jitter = random.Random(seed)
        self._seed = seed
        self.usage = UsageLedger()
        self._attempt_ids = itertools.count(1)
        self._resources: dict[tuple[str, RequestDomain], RequestResourceKey] = {}
        self._health = ProviderHealth(self._catalog)
        self._watch = AttemptWatch(stragglers or StragglerConfig(), self._clock)
        self.stats = ExecutorStats()

    # --- the facade's surface -----------------------------------------------------------------

    async def execute_chat(
        self,
        alias: str,
        messages: Sequence[Message],
        *,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        tag: CallTag | None = None,
    ) -> ChatResponse:
        """One chat completion through `alias`, retried per the policy; its usage is booked
        under `tag`. Distribution-valued parameters are drawn once per request (see
        `sample_parameter`), so every retry of the request sends the same values."""
        resolved = self._catalog.resolve(alias)
        params = resolved.model.inference_parameters
        message_tuple = tuple(dict(m) for m in messages)
        extra_body = params.extra_body
        if tool_choice is not None:
            extra_body = {**(extra_body or {}), "tool_choice": tool_choice}
        request = ChatRequest(
            model=resolved.key.model_id,
            messages=message_tuple,
            temperature=self._draw(params.temperature, "temperature", alias, tag, message_tuple),
            top_p=self._draw(params.top_p, "top_p", alias, tag, message_tuple),
            max_tokens=params.max_tokens,
            timeout=self._timeout(params.timeout, RequestDomain.CHAT),
            response_format=response_format,
            extra_body=extra_body,
            tools=tuple(tools) if tools else None,
            extra_headers=params.extra_headers,
        )
        client = self._clients[resolved.key.provider_name]
        resource = self._resource(alias, RequestDomain.CHAT)
        response = await self._execute(resource, lambda: client.chat(request), request.timeout)
        self.usage.record(tag, alias, response.usage)
        return response

    async def execute_embedding(
        self, alias: str, inputs: Sequence[str], *, tag: CallTag | None = None
    ) -> EmbeddingResponse:
        """One embedding request through `alias`, retried per the policy."""
        resolved = self._catalog.resolve(alias)
        params = resolved.model.inference_parameters
        request = EmbeddingRequest(
            model=resolved.key.model_id,
            inputs=tuple(inputs),
            timeout=self._timeout(params.timeout, RequestDomain.EMBEDDING),
            extra_body=params.extra_body,
            extra_headers=params.extra_headers,
            dimensions=params.dimensions,
        )
        client = self._clients[resolved.key.provider_name]
        resource = self._resource(alias, RequestDomain.EMBEDDING)
        response = await self._execute(resource, lambda: client.embed(request), request.timeout)
        self.usage.record(tag, alias, response.usage)
        return response

    async def execute_image(
        self, alias: str, prompt: str, *, tag: CallTag | None = None
    ) -> ImageResponse:
        """One image generation through `alias`, retried per the policy."""
        resolved = self._catalog.resolve(alias)
        params = resolved.model.inference_parameters
        request = ImageRequest(
            model=resolved.key.model_id,
            prompt=prompt,
            timeout=self._timeout(params.timeout, RequestDomain.IMAGE),
            extra_body=params.extra_body,
        )
        client = self._clients[resolved.key.provider_name]
        resource = self._resource(alias, RequestDomain.IMAGE)
        response = await self._execute(
            resource, lambda: client.generate_image(request), request.timeout
        )
        self.usage.record(tag, alias, response.usage)
        return response

    def _timeout(self, configured: float | None, domain: RequestDomain) -> float:
        """The model's timeout, else the default of its generation kind."""
        if configured is not None:
            return configured
        defaults = self._retry.default_timeout_seconds
        return defaults.get(domain.value, DEFAULT_REQUEST_TIMEOUT_SECONDS["chat"])

    @property
    def attempts_in_flight(self) -> int:
        """Request attempts sent and not answered yet (for progress displays)."""
        return self._watch.in_flight

    def oldest_attempt_age(self) -> float | None:
        """Seconds the oldest attempt in flight has been running."""
        return self._watch.oldest_age()

    @property
    def stragglers_cancelled(self) -> int:
        """Attempts cancelled as stragglers so far (each was retried)."""
        return self._watch.stragglers_cancelled

    def _draw(
        self,
        value: float | UniformDistribution | ManualDistribution | None,
        name: str,
        alias: str,
        tag: CallTag | None,
        messages: tuple[Message, ...],
    ) -> float | None:
        if value is None or isinstance(value, int | float):
            return value
        return sample_parameter(value, self._seed, name, alias, tag, messages)

    def _resource(self, alias: str, domain: RequestDomain) -> RequestResourceKey:
        """The request resource of `alias` in `domain` (resolved once, then shared)."""
        key = (alias, domain)
        resource = self._resources.get(key)
        if resource is None:
            resource = self._resources[key] = self._resolver.resolve(alias, domain)
        return resource

    # --- the retry loop -----------------------------------------------------------------------

    async def _execute(
        self,
        resource: RequestResourceKey,
        call: Callable[[], Awaitable[R]],
        attempt_timeout: float | None,
    ) -> R:
        if attempt_timeout is None:
            attempt_timeout = self._timeout(None, resource.domain)
        transient = 0
        rate_limited = 0
        probes = 0
        health = self._health
        try:
            while True:
                await health.ready(resource, probing=probes > 0)
                try:
                    result = await self.execute_attempt(
                        resource, call, attempt_timeout, probing=probes > 0
                    )
                except _HeldBack:
                    continue
                except ProviderRateLimitError as exc:
                    health.failed(resource, exc, probing=probes > 0)
                    rate_limited += 1
                    if rate_limited > self._retry.max_rate_limit_retries:
                        raise RetryableTaskError(
                            "rate_limited",
                            f"{exc.provider}: still rate limited after {rate_limited} attempts",
                            provider=exc.provider,
                        ) from None
                    wait = exc.retry_after_seconds
                    if wait is None:
                        wait = self._admission.config.cooldown_seconds
                    await sleep_until(self._clock, self._clock.monotonic() + wait)
                    continue
                except ProviderError as exc:
                    verdict = health.failed(resource, exc, probing=probes > 0)
                    if verdict is Verdict.WAIT:
                        continue
                    if verdict is Verdict.PROBE:
                        if probes >= len(PROBE_BACKOFF_SECONDS):
                            raise health.give_up(resource, exc) from None
                        probes += 1
                        await self._sleep(PROBE_BACKOFF_SECONDS[probes - 1])
                        continue
                    probes = 0
                    transient = await self._after_failure(exc, transient)
                    continue
                health.succeeded(resource)
                return result
        finally:
            if probes:
                health.abandon(resource)

    async def _after_failure(self, exc: ProviderError, transient: int) -> int:
        """Today's handling of a failed attempt: raise the cell's error, or back off and
        return the transient-failure count so far."""
        if isinstance(exc, ProviderRequestError):
            raise NonRetryableTaskError(exc.error_class, str(exc), provider=exc.provider) from None
        transient += 1
        if transient > self._retry.max_transient_retries:
            error_type = (
                NonRetryableTaskError
                if isinstance(exc, ProviderResponseError)
                else RetryableTaskError
            )
            raise error_type(exc.error_class, str(exc), provider=exc.provider) from None
        wait = self._backoff(transient)
        if isinstance(exc, ProviderOverloadedError) and exc.retry_after_seconds:
            wait = max(wait, exc.retry_after_seconds)
        await self._sleep(wait)
        return transient

    async def _sleep(self, seconds: float) -> None:
        await sleep_until(self._clock, self._clock.monotonic() + seconds)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(
            self._retry.backoff_max_seconds, self._retry.backoff_base_seconds * 2 ** (attempt - 1)
        )
        return self._jitter.uniform(ceiling / 2, ceiling)

    async def execute_attempt(
        self,
        resource: RequestResourceKey,
        call: Callable[[], Awaitable[R]],
        attempt_timeout: float,
        *,
        probing: bool = False,
    ) -> R:
        """Exactly one outbound attempt under exactly one request lease.

        Raises the provider's `ProviderError` (classified and released), or
        `RetryableTaskError` when admission refuses (queue timeout, shutdown).
        """
        correlation = self._correlation.current()
        corr_json = correlation.as_json() if correlation is not None else {}
        attempt_id = f"ra-{next(self._attempt_ids)}"
        context = RequestEventContext(
            captured_correlation=corr_json,
            task_execution_id=correlation.task_execution_id if correlation else None,
            request_attempt_id=attempt_id,
        )
        item = RequestAdmissionItem.for_resource(resource, event_context=context)
        lease = await self._acquire(item, resource, probing)
        outcome = _UNEXPECTED
        recorded_as: str | None = None
        self._events.emit(
            "model_request_started",
            correlation=corr_json,
            request_attempt_id=attempt_id,
            request_lease_id=lease.lease_id,
            request_resource_key=resource,
            request_group_key=item.group.key,
        )
        try:
            result = await self._call_within(resource, attempt_id, corr_json, call, attempt_timeout)
            budget = _budget(getattr(result, "rate_limit", None))
            outcome = (
                _SUCCESS
                if budget is None
                else RequestReleaseOutcome.success(status_code=200, rate_limit=budget)
            )
            return result
        except ProviderError as exc:
            outcome = _outcome_of(exc)
            if isinstance(exc, _LocalDeadline) and exc.straggler:
                recorded_as = "straggler_cancelled"
            raise
        except asyncio.CancelledError:
            outcome = RequestReleaseOutcome.of(RequestReleaseOutcomeKind.LOCAL_CANCELLED)
            raise
        finally:
            # The attempt's completion is recorded before its lease is released, so a joined
            # timeline reads: provider completed -> request lease released.
            self._watch.finished(attempt_id, outcome.kind is RequestReleaseOutcomeKind.SUCCESS)
            self.stats.record(recorded_as or outcome.kind.value)
            self._events.emit(
                "model_request_completed",
                correlation=corr_json,
                request_attempt_id=attempt_id,
                request_lease_id=lease.lease_id,
                request_resource_key=resource,
                request_group_key=item.group.key,
                reason=recorded_as or outcome.kind.value,
                diagnostics={"status_code": outcome.status_code}
                if outcome.status_code is not None
                else None,
            )
            self._admission.release(lease, outcome)

    async def _acquire(
        self, item: RequestAdmissionItem, resource: RequestResourceKey, probing: bool
    ) -> RequestAdmissionLease:
        """A request lease for one attempt; `_HeldBack` (lease returned unused) while another
        attempt probes the provider."""
        try:
            lease = await self._admission.acquire_async(item)
        except RequestAdmissionError as exc:
            raise RetryableTaskError(
                f"request_admission_{exc.reason}", str(exc), provider=resource.provider_name
            ) from None
        if not probing and self._health.held_back(resource):
            # Another attempt probes the provider (or it is unusable): give the lease back
            # unused; `ready` waits for the verdict (or raises it).
            self._admission.release(
                lease, RequestReleaseOutcome.of(RequestReleaseOutcomeKind.LOCAL_CANCELLED)
            )
            raise _HeldBack
        return lease

    async def _call_within(
        self,
        resource: RequestResourceKey,
        attempt_id: str,
        correlation: Mapping[str, Any],
        call: Callable[[], Awaitable[R]],
        attempt_timeout: float,
    ) -> R:
        """`call()` bounded by the timeout (plus grace) or, sooner, the straggler deadline."""
        timeout = attempt_timeout + self._retry.local_deadline_grace_seconds
        watched: WatchedAttempt | None = None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as scope:
                watched = self._watch.arm(
                    attempt_id, resource, timeout, lambda: scope.reschedule(loop.time())
                )
                return await call()
        except TimeoutError:
            if watched is None or not watched.straggler:
                raise _LocalDeadline(
                    "no answer within the local deadline", provider=resource.provider_name
                ) from None
            raise self._straggler(correlation, attempt_id, watched) from None

    def _straggler(
        self, correlation: Mapping[str, Any], attempt_id: str, watched: WatchedAttempt
    ) -> _LocalDeadline:
        """Count and report a cancelled straggler; the error retries it."""
        self._watch.stragglers_cancelled += 1
        resource = watched.resource
        self._events.emit(
            "model_request_straggler_cancelled",
            correlation=correlation,
            request_attempt_id=attempt_id,
            request_resource_key=resource,
            reason="straggler_cancelled",
            diagnostics={
                "limit_seconds": round(watched.limit_seconds, 3),
                "p99_seconds": watched.p99,
            },
        )
        return _LocalDeadline(
            f"{resource.provider_name}: no answer after {watched.limit_seconds:.1f} s, far "
            f"beyond the model's p99 latency ({watched.p99 or 0:.2f} s): cancelled as a "
            "straggler, retried",
            provider=resource.provider_name,
            straggler=True,
        )


_UNEXPECTED = RequestReleaseOutcome.of(RequestReleaseOutcomeKind.UNEXPECTED_EXCEPTION)
_SUCCESS = RequestReleaseOutcome.success(status_code=200)
"""Outcomes without per-attempt data, built once (they are frozen)."""


def _outcome_of(exc: ProviderError) -> RequestReleaseOutcome:
    """How a failed attempt is released to request admission."""
    if isinstance(exc, ProviderRateLimitError):
        return RequestReleaseOutcome.rate_limited(
            exc.retry_after_seconds,
            status_code=exc.status_code or 429,
            rate_limit=_budget(exc.rate_limit),
        )
    if isinstance(exc, ProviderOverloadedError):
        return RequestReleaseOutcome.rate_limited(
            exc.retry_after_seconds,
            status_code=exc.status_code or 503,
            error_class=exc.error_class,
            rate_limit=_budget(exc.rate_limit),
        )
    if isinstance(exc, _LocalDeadline):
        return RequestReleaseOutcome.of(RequestReleaseOutcomeKind.LOCAL_TIMEOUT)
    if isinstance(exc, ProviderTimeoutError):
        return RequestReleaseOutcome(
            RequestReleaseOutcomeKind.PROVIDER_TIMEOUT, error_class=exc.error_class
        )
    return RequestReleaseOutcome(
        RequestReleaseOutcomeKind.PROVIDER_FAILURE,
        status_code=exc.status_code,
        error_class=exc.error_class,
        rate_limit=_budget(exc.rate_limit),
    )


def _budget(headers: object) -> RateLimitHeaders | None:
    """An answer's `x-ratelimit-*` headers when they state a request budget (for the pacer)."""
    if isinstance(headers, RateLimitHeaders) and headers.remaining_requests is not None:
        return headers
    return None


def sample_parameter(
    distribution: UniformDistribution | ManualDistribution,
    seed: int,
    name: str,
    alias: str,
    tag: CallTag | None,
    messages: Sequence[Mapping[str, Any]],
) -> float:
    """A distribution-valued inference parameter's draw for one request: a pure function of
    the run seed, the parameter, the alias, the cell (`tag`) and the messages, so reruns and
    retries send the same value while rows (and follow-up turns) get their own."""
    h = hashlib.blake2b(digest_size=16)
    cell = (tag.column, tag.row_group, tag.global_row) if tag is not None else None
    h.update(repr((seed, name, alias, cell)).encode())
    h.update(orjson.dumps(list(messages), option=orjson.OPT_SORT_KEYS, default=str))
    return distribution.sample(random.Random(h.digest()))
