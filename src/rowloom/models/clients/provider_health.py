"""`ProviderHealth`: tells a misconfigured or unreachable provider from a flaky one, so a run
against a dead endpoint stops within seconds instead of retrying every row.

Until a provider has answered at all, a refused connection, a failed DNS lookup, a TLS failure
or no connection in time starts a *probe*: the attempt that saw it retries on a short backoff
while every other attempt to that provider waits for the verdict (instead of failing and
retrying on its own). A probe that gets through (any HTTP answer) clears the provider; a probe
that keeps failing declares it unavailable and every waiting and later attempt raises
`ProviderUnavailableError`, which stops the run. Until a model has answered successfully, HTTP
401, 403 and 404 stop the run at once, and so do `BAD_REQUESTS_TO_STOP` answers of HTTP 400 in
a row. Once a provider (or model) has answered, the same failures are treated as today: retried
(connection failures) or dropped with the row (4xx), with the early-shutdown breaker as the
backstop.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from urllib.parse import urlparse

from rowloom.errors import ProviderUnavailableError
from rowloom.models.clients.base import (
    ProviderConnectionError,
    ProviderError,
    ProviderRequestError,
)
from rowloom.models.request_admission import RequestResourceKey
from rowloom.models.resources import ModelResourceCatalog

UNREACHABLE = frozenset({"refused", "dns", "tls", "connect_timeout"})
"""Connection failures that, before any answer, suggest the endpoint is wrong or down."""
PROBE_BACKOFF_SECONDS = (0.1, 0.2, 0.4, 0.8, 1.0)
"""The probe's retries after its first failure: 2.5 s in all before giving up."""
BAD_REQUESTS_TO_STOP = 5
"""HTTP 400 answers in a row, with no success yet, that stop the run."""


class Verdict(enum.Enum):
    """What the executor does with a failed attempt."""

    AS_USUAL = "as_usual"
    """Today's handling: retry (transient) or fail the cell (4xx)."""
    PROBE = "probe"
    """This attempt probes an unverified provider: retry after `PROBE_BACKOFF_SECONDS`."""
    WAIT = "wait"
    """Another attempt is probing: wait for its verdict, then try again (not a retry)."""


@dataclass(slots=True)
class _Endpoint:
    answered: bool = False
    probe: asyncio.Future[None] | None = None
    dead: ProviderUnavailableError | None = None


@dataclass(slots=True)
class _Model:
    succeeded: bool = False
    bad_requests: int = 0
    fatal: ProviderUnavailableError | None = None
    endpoint: _Endpoint = field(default_factory=_Endpoint)


class ProviderHealth:
    """Per provider (reachability) and per model (configuration) health of one run."""

    def __init__(self, catalog: ModelResourceCatalog) -> None:
        self._catalog = catalog
        self._endpoints: dict[str, _Endpoint] = {}
        self._models: dict[tuple[str, str], _Model] = {}

    def _model(self, resource: RequestResourceKey) -> _Model:
        key = (resource.provider_name, resource.model_id)
        model = self._models.get(key)
        if model is None:
            endpoint = self._endpoints.setdefault(resource.provider_name, _Endpoint())
            model = self._models[key] = _Model(endpoint=endpoint)
        return model

    async def ready(self, resource: RequestResourceKey, *, probing: bool = False) -> None:
        """Return when an attempt may go out (the probing attempt itself always may); raise
        `ProviderUnavailableError` if it never will (the provider or model is unusable)."""
        model = self._model(resource)
        endpoint = model.endpoint
        while True:
            if model.fatal is not None:
                raise model.fatal.again()
            if endpoint.dead is not None:
                raise endpoint.dead.again()
            probe = endpoint.probe
            if probing or probe is None or probe.done():
                return
            await asyncio.shield(probe)

    def held_back(self, resource: RequestResourceKey) -> bool:
        """True when an attempt that holds a lease must not go out: another attempt probes
        the provider, or the provider or model was found unusable meanwhile."""
        model = self._model(resource)
        probe = model.endpoint.probe
        return (
            model.fatal is not None
            or model.endpoint.dead is not None
            or (probe is not None and not probe.done())
        )

    def succeeded(self, resource: RequestResourceKey) -> None:
        """An attempt got a 2xx answer."""
        model = self._model(resource)
        if not model.succeeded:
            model.succeeded = True
            model.bad_requests = 0
            self._answered(model.endpoint)

    def failed(self, resource: RequestResourceKey, exc: ProviderError, *, probing: bool) -> Verdict:
        """Classify a failed attempt; raise `ProviderUnavailableError` when the run must stop.
        `probing` is True for the attempt that runs the current probe."""
        model = self._model(resource)
        endpoint = model.endpoint
        if isinstance(exc, ProviderConnectionError):
            if endpoint.answered or exc.failure not in UNREACHABLE:
                return Verdict.AS_USUAL
            if endpoint.dead is not None:
                raise endpoint.dead.again()
            if probing:
                return Verdict.PROBE
            if endpoint.probe is not None and not endpoint.probe.done():
                return Verdict.WAIT
            endpoint.probe = asyncio.get_running_loop().create_future()
            return Verdict.PROBE
        if exc.status_code is not None:
            self._answered(endpoint)  # reachable: whatever it said, it answered
        if isinstance(exc, ProviderRequestError) and not model.succeeded:
            self._check_configuration(resource, model, exc)
        return Verdict.AS_USUAL

    def give_up(self, resource: RequestResourceKey, exc: ProviderError) -> ProviderUnavailableError:
        """The probe kept failing: the provider is unavailable for the rest of the run."""
        endpoint = self._model(resource).endpoint
        if endpoint.dead is None:
            endpoint.dead = self._unavailable(resource, _cause(exc))
        self._settle(endpoint)
        return endpoint.dead.again()

    def abandon(self, resource: RequestResourceKey) -> None:
        """The probing attempt was cancelled: let a waiting attempt take over the probe."""
        self._settle(self._model(resource).endpoint)

    def _answered(self, endpoint: _Endpoint) -> None:
        endpoint.answered = True
        self._settle(endpoint)

    @staticmethod
    def _settle(endpoint: _Endpoint) -> None:
        probe, endpoint.probe = endpoint.probe, None
        if probe is not None and not probe.done():
            probe.set_result(None)

    def _check_configuration(
        self, resource: RequestResourceKey, model: _Model, exc: ProviderRequestError
    ) -> None:
        status = exc.status_code
        cause: str | None = None
        if status == 401:
            cause = "HTTP 401: the API key was refused (check api_key_env)"
        elif status == 403:
            cause = "HTTP 403: access denied for this key or model"
        elif status == 404:
            path = urlparse(self._endpoint_url(resource)).path.rstrip("/")
            in_v1 = path.endswith("/v1")
            hint = "is the model id right?" if in_v1 else "does the endpoint end in /v1?"
            cause = f"HTTP 404 (not found): {hint}"
        elif status == 400:
            model.bad_requests += 1
            if model.bad_requests >= BAD_REQUESTS_TO_STOP:
                cause = f"every request so far was refused with HTTP 400 ({model.bad_requests})"
        if cause is not None:
            if exc.provider_message:
                cause += f"; the provider said: {exc.provider_message}"
            model.fatal = model.fatal or self._unavailable(resource, cause)
            raise model.fatal.again()

    def _endpoint_url(self, resource: RequestResourceKey) -> str:
        try:
            return self._catalog.provider(resource.provider_name).endpoint or ""
        except KeyError:
            return ""

    def _unavailable(self, resource: RequestResourceKey, cause: str) -> ProviderUnavailableError:
        url = self._endpoint_url(resource) or "(no endpoint)"
        return ProviderUnavailableError(
            f"provider {resource.provider_name!r} at {url}, model {resource.model_id!r}: {cause}",
            provider=resource.provider_name,
            endpoint=url,
            model=resource.model_id,
            cause=cause,
        )


def _cause(exc: ProviderError) -> str:
    """The error's message without its `provider: ` prefix."""
    text = str(exc)
    prefix = f"{exc.provider}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
