"""`OpenAICompatibleClient`: any OpenAI-compatible endpoint over one pooled aiohttp session.

One outbound attempt per call, no retries (`ModelRequestExecutor` owns those). Each call is one
`POST` of an orjson-encoded body to `/chat/completions`, `/embeddings` or
`/images/generations`, its answer parsed with orjson. The `openai` SDK is not on this path: its
per-request work (typed request options, header and URL models, an httpx layer over its own
aiohttp transport) was about a third of the engine's CPU per request. What the adapter keeps
from it: the bearer key and extra headers, a bounded connection pool (`transport_pool_limits`
is the pool really in use), per-attempt timeouts (connect at most `CONNECT_TIMEOUT_S`, then
`timeout` between bytes), proxies from the environment (read once), redirects, and the
rate-limit headers (`Retry-After` / `retry-after-ms` in seconds or an HTTP date, and
`x-ratelimit-*`). Failures are classified into the `ProviderError` taxonomy:

| answer | error |
|---|---|
| 429 | `ProviderRateLimitError` (with `retry_after_seconds`) |
| 503, 529 | `ProviderOverloadedError` |
| other 5xx | `ProviderServerError` |
| 408, or no answer within the timeout after sending | `ProviderTimeoutError` |
| refused, DNS, TLS, dropped, connect/pool timeout | `ProviderConnectionError` (`failure`) |
| other 4xx | `ProviderRequestError` (the provider's short error text, redacted) |
| malformed 2xx body | `ProviderResponseError` |

Messages never carry the API key or a response body, and transport exceptions are not chained.
"""

from __future__ import annotations

import base64
import errno
import socket
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlparse
from urllib.request import getproxies, proxy_bypass

import aiohttp
import orjson

from rowloom.models.clients.base import (
    ChatRequest,
    ChatResponse,
    ConnectionFailure,
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloadedError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
    TokenUsage,
    ToolCall,
)
from rowloom.observability.redaction import redact, register_secret
from rowloom.provider_wire import (
    RateLimitHeaders,
    TransportPoolLimits,
    parse_rate_limit_headers,
    parse_retry_after,
)
from rowloom.simulation.cell_key import CELL_KEY_HEADER, current_cell_key

__all__ = ["OpenAICompatibleClient"]

_PLACEHOLDER_KEY = "not-needed"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
CONNECT_TIMEOUT_S = 10.0
"""Seconds to establish a connection (the attempt's own timeout when that is shorter)."""
KEEPALIVE_S = 5.0
"""Seconds an idle pooled connection is kept open."""
_USER_AGENT = "rowloom (OpenAI-compatible client; aiohttp)"


class OpenAICompatibleClient:
    """A `ModelClient` for an OpenAI-compatible base URL (`.../v1`), no retries, no admission."""

    def __init__(
        self,
        provider_name: str,
        base_url: str,
        *,
        api_key: str | None = None,
        max_connections: int = 64,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._provider_name = provider_name
        self._base_url = base_url.rstrip("/")
        register_secret(api_key)  # no log line may carry it, even an echoed header
        for value in (extra_headers or {}).values():
            register_secret(value)  # a header may carry a credential too
        self._headers = {
            "Authorization": f"Bearer {api_key or _PLACEHOLDER_KEY}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
            **(extra_headers or {}),
        }
        self._extra_body = dict(extra_body or {})
        host = urlparse(base_url).hostname
        self._sends_cell_key = host in _LOOPBACK
        self._proxy = _env_proxy(base_url, host)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._pool_limits = TransportPoolLimits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            kind="aiohttp",
            extra={"keepalive_expiry": KEEPALIVE_S},
        )

    def __repr__(self) -> str:
        return (
            f"OpenAICompatibleClient(provider={self._provider_name!r}, base_url={self._base_url!r})"
        )

    @property
    def provider_name(self) -> str:
        return self._provider_name

    @property
    def transport_pool_limits(self) -> TransportPoolLimits:
        """The connection pool this client's HTTP transport really uses."""
        return self._pool_limits

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """One chat-completion attempt (first choice's text, reasoning and tool calls) or a
        classified `ProviderError`."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": list(request.messages),
        }
        for name in ("temperature", "top_p", "max_tokens"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.response_format is not None:
            body["response_format"] = request.response_format
        if request.tools:
            body["tools"] = list(request.tools)
        body.update(self._extra_body)
        if request.extra_body:
            body.update(request.extra_body)
        response, rate_limit = await self._post(
            "chat", "/chat/completions", body, request.timeout, request.extra_headers
        )
        try:
            data = orjson.loads(response.content)
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content")
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            tool_calls = _tool_calls(message.get("tool_calls"))
            usage = _usage(data.get("usage"))
        except Exception:
            raise self._malformed("chat", response.status_code, rate_limit) from None
        if (text is not None and not isinstance(text, str)) or not isinstance(
            reasoning, str | None
        ):
            raise self._malformed("chat", response.status_code, rate_limit)
        return ChatResponse(
            text=text or "",
            usage=usage,
            rate_limit=rate_limit,
            status_code=response.status_code,
            reasoning_content=reasoning or None,
            tool_calls=tool_calls,
            finish_reason=choice.get("finish_reason"),
        )

    async def generate_image(self, request: ImageRequest) -> ImageResponse:
        """One image-generation attempt (`/images/generations`, base64 answers) or a
        classified `ProviderError`."""
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "n": 1,
            "response_format": "b64_json",
        }
        if request.extra_body:
            body.update(request.extra_body)
        response, rate_limit = await self._post(
            "images", "/images/generations", body, request.timeout
        )
        try:
            data = orjson.loads(response.content)
            images = tuple(
                base64.b64decode(item["b64_json"], validate=True) for item in data["data"]
            )
            usage = _usage(data.get("usage"))
        except Exception:
            raise self._malformed("images", response.status_code, rate_limit) from None
        if not images or not all(images):
            raise self._malformed("images", response.status_code, rate_limit)
        return ImageResponse(
            images=images, usage=usage, rate_limit=rate_limit, status_code=response.status_code
        )

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """One embeddings attempt (vectors in input order) or a classified `ProviderError`."""
        body: dict[str, Any] = {
            "model": request.model,
            "input": list(request.inputs),
            "encoding_format": "float",
        }
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        body.update(self._extra_body)
        if request.extra_body:
            body.update(request.extra_body)
        response, rate_limit = await self._post(
            "embeddings", "/embeddings", body, request.timeout, request.extra_headers
        )
        try:
            data = orjson.loads(response.content)
            items = sorted(data["data"], key=lambda item: int(item["index"]))
            vectors = tuple(tuple(float(x) for x in item["embedding"]) for item in items)
            usage = _usage(data.get("usage"))
        except Exception:
            raise self._malformed("embeddings", response.status_code, rate_limit) from None
        if len(vectors) != len(request.inputs):
            raise self._malformed("embeddings", response.status_code, rate_limit)
        return EmbeddingResponse(
            vectors=vectors, usage=usage, rate_limit=rate_limit, status_code=response.status_code
        )

    async def _post(
        self,
        route: str,
        path: str,
        body: dict[str, Any],
        timeout_s: float | None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[_Answer, RateLimitHeaders | None]:
        """One POST; the 2xx answer and its rate-limit headers, or a classified
        `ProviderError`."""
        cell = current_cell_key() if self._sends_cell_key else None
        if cell:
            headers = {**(headers or {}), CELL_KEY_HEADER: cell}
        session = self._session or self._open()
        try:
            async with session.post(
                self._base_url + path,
                data=orjson.dumps(body, default=_plain_mapping),
                headers=headers,
                timeout=self._timeout(timeout_s),
                proxy=self._proxy,
            ) as response:
                content = await response.read()
                status = response.status
                answer_headers = response.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc, route) from None
        if status >= 300:
            raise self._status_error(status, answer_headers, content, route) from None
        return _Answer(status, content), parse_rate_limit_headers(answer_headers)

    def _open(self) -> aiohttp.ClientSession:
        """The pooled session (made on first use: aiohttp binds it to the running loop)."""
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, keepalive_timeout=KEEPALIVE_S
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=None),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    def _timeout(self, timeout_s: float | None) -> aiohttp.ClientTimeout:
        """The whole attempt (a free pooled connection, sending, the answer) gets `timeout_s`;
        connecting (TCP and TLS) at most `CONNECT_TIMEOUT_S` of it, so an endpoint that drops
        packets is found unreachable in seconds. One timer per attempt: a per-read timeout
        would re-arm a timer at every chunk received."""
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            connect = CONNECT_TIMEOUT_S if timeout_s is None else min(timeout_s, CONNECT_TIMEOUT_S)
            timeout = self._timeouts[timeout_s] = aiohttp.ClientTimeout(
                total=timeout_s, sock_connect=connect
            )
        return timeout

    async def aclose(self) -> None:
        """Close the connection pool."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # ------------------------------------------------------------------------- classification

    def _malformed(
        self, route: str, status: int, rate_limit: RateLimitHeaders | None
    ) -> ProviderResponseError:
        name = self._provider_name
        return ProviderResponseError(
            f"{name}: {route} answered {status} with a malformed body",
            provider=name,
            status_code=status,
            rate_limit=rate_limit,
        )

    def _transport_error(self, exc: BaseException, route: str) -> ProviderError:
        """A failure before a complete answer: no answer in time, or a connection failure."""
        name = self._provider_name
        failure, detail = _connection_failure(exc)
        if failure is None:
            return ProviderTimeoutError(f"{name}: {route} got no answer in time", provider=name)
        return ProviderConnectionError(f"{name}: {route} {detail}", provider=name, failure=failure)

    def _status_error(
        self, status: int, headers: Mapping[str, str], content: bytes, route: str
    ) -> ProviderError:
        name = self._provider_name
        rate_limit = parse_rate_limit_headers(headers)
        message = f"{name}: {route} answered HTTP {status}"
        cls: type[ProviderError]
        if status == 429:
            return ProviderRateLimitError(
                message,
                provider=name,
                status_code=status,
                retry_after_seconds=parse_retry_after(headers),
                rate_limit=rate_limit,
            )
        said = None
        if status in (503, 529):
            cls = ProviderOverloadedError
        elif status >= 500:
            cls = ProviderServerError
        elif status == 408:
            cls = ProviderTimeoutError
        else:
            cls = ProviderRequestError
            said = _provider_message(content)
        return cls(
            message,
            provider=name,
            status_code=status,
            retry_after_seconds=parse_retry_after(headers),
            rate_limit=rate_limit,
            provider_message=said,
        )


class _Answer:
    """A 2xx answer's status and body."""

    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content


def _plain_mapping(value: object) -> dict[Any, Any]:
    """orjson's fallback for what it does not encode natively: a message, tool or format
    given as another `Mapping` than a dict is sent as one."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _env_proxy(base_url: str, host: str | None) -> str | None:
    """The proxy the environment names for `base_url` (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`),
    read once: None for none or a bypassed host."""
    proxy = getproxies().get(urlparse(base_url).scheme)
    if not proxy or (host is not None and proxy_bypass(host)):
        return None
    return proxy


def _connection_failure(exc: BaseException) -> tuple[ConnectionFailure | None, str]:
    """What went wrong with a connection, from the exception chain's root cause: refused, DNS,
    TLS, no connection in time, no free pooled connection in time, dropped; `(None, ...)` when
    the request was sent and no answer came in time."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain and len(chain) < 16:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for err in reversed(chain):  # the root cause first: it is the most specific
        if isinstance(err, socket.gaierror | aiohttp.ClientConnectorDNSError):
            return "dns", f"could not resolve the host name ({err.strerror or err})"
        if isinstance(err, ssl.SSLError | aiohttp.ClientSSLError):
            reason = getattr(err, "reason", None) or type(err).__name__
            return "tls", f"TLS failed ({reason})"
        if isinstance(err, ConnectionRefusedError) or (
            isinstance(err, OSError) and err.errno == errno.ECONNREFUSED
        ):
            return "refused", "connection refused (is the server running on that port?)"
    if isinstance(exc, TimeoutError):
        where = {_struck_in(err.__traceback__) for err in chain}
        if _POOL_WAIT in where:
            return "pool_timeout", "got no free connection from the pool in time"
        if _CONNECTING in where or isinstance(exc, aiohttp.ConnectionTimeoutError):
            return "connect_timeout", "could not get a connection in time"
        return None, ""  # sent, and the answer did not come in time
    return "dropped", f"connection failed ({type(chain[-1]).__name__})"


_POOL_WAIT = "_wait_for_available_connection"
_CONNECTING = "_create_connection"
"""Where in aiohttp's connector a timeout can strike before anything is sent: waiting for a
free connection of the pool, or opening a new one."""


def _struck_in(tb: TracebackType | None) -> str | None:
    """The connector step (`_POOL_WAIT`, `_CONNECTING`) a traceback passes through, if any."""
    while tb is not None:
        name = tb.tb_frame.f_code.co_name
        if name in (_POOL_WAIT, _CONNECTING):
            return name
        tb = tb.tb_next
    return None


_MAX_PROVIDER_MESSAGE = 200


def _provider_message(content: bytes) -> str | None:
    """The provider's short error text from a 4xx body (`{"error": {"message": ...}}`,
    `{"message": ...}`, `{"detail": ...}` or `{"error": "..."}`), redacted and truncated."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    text: object = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            text = error.get("message")
        elif isinstance(error, str):
            text = error
        if text is None:
            text = body.get("message") or body.get("detail")
    if not isinstance(text, str) or not text.strip():
        return None
    text = redact(" ".join(text.split()))
    if len(text) > _MAX_PROVIDER_MESSAGE:
        text = text[: _MAX_PROVIDER_MESSAGE - 3] + "..."
    return text


def _usage(usage: Any) -> TokenUsage | None:
    """Token counts from a parsed `usage` object (chat's `prompt_tokens`/`completion_tokens`
    with `completion_tokens_details.reasoning_tokens`, or the images API's `input_tokens`/
    `output_tokens`); None when it is absent or not counts (usage is bookkeeping: an odd one
    never fails an answer whose content is fine)."""
    if not isinstance(usage, dict):
        return None
    try:
        details = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        return TokenUsage(
            prompt_tokens=int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
            completion_tokens=int(
                usage.get("completion_tokens") or usage.get("output_tokens") or 0
            ),
            reasoning_tokens=int(reasoning or 0),
        )
    except (TypeError, ValueError):
        return None


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    """Function calls of an assistant message (`tool_calls`); other kinds are ignored."""
    if raw is None:
        return ()
    calls = []
    for item in raw:
        function = item.get("function") if item.get("type", "function") == "function" else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments or {}).decode()
        calls.append(ToolCall(str(item.get("id") or ""), str(function["name"]), arguments))
    return tuple(calls)
