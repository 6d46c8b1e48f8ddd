"""`OpenAICompatibleClient`: any OpenAI-compatible endpoint through the official `openai` SDK.

One outbound attempt per call (`max_retries=0`), over the SDK's default async HTTP client class
with an explicit connection pool, so `transport_pool_limits` is the pool really in use. Requests
go through the SDK's documented low-level `AsyncOpenAI.post(path, cast_to=Response, ...)`: the
SDK still owns auth, headers, timeouts, the transport and the error classes, but the body is
sent as built here and the answer parsed with orjson, skipping the SDK's per-request
`TypedDict` transform and model construction (about 1.3 ms of CPU per request here, half the
client's cost). Headers: `Retry-After` / `retry-after-ms` (seconds or an HTTP date) and
`x-ratelimit-*`. Failures are classified into the `ProviderError` taxonomy:

| answer | error |
|---|---|
| 429 | `ProviderRateLimitError` (with `retry_after_seconds`) |
| 503, 529 | `ProviderOverloadedError` |
| other 5xx | `ProviderServerError` |
| 408, or no answer within the timeout after sending | `ProviderTimeoutError` |
| refused, DNS, TLS, dropped, connect/pool timeout | `ProviderConnectionError` (`failure`) |
| other 4xx | `ProviderRequestError` (the provider's short error text, redacted) |
| malformed 2xx body | `ProviderResponseError` |

Messages never carry the API key or a response body, and SDK exceptions are not chained.
"""

from __future__ import annotations

import base64
import errno
import importlib
import socket
import ssl
from collections.abc import Mapping
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import openai
import orjson
from openai import AsyncOpenAI, DefaultAsyncHttpxClient, RequestOptions

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
# SDKs that scope auth per operation (`security`) send the bearer key only when asked; older
# ones always send it and have no such option.
_AUTH_OPTIONS: Mapping[str, Any] = (
    {"security": {"bearer_auth": True}} if "security" in RequestOptions.__annotations__ else {}
)


def _http_module() -> ModuleType:
    """The HTTP library the installed SDK is built on (`httpx2` for openai 3.x, else `httpx`)."""
    for cls in DefaultAsyncHttpxClient.__mro__:
        if cls.__name__ == "AsyncClient":
            return importlib.import_module(cls.__module__.split(".")[0])
    return importlib.import_module("httpx")  # pragma: no cover - every SDK so far has one


def _http_client(limits: Any, httpx_name: str) -> tuple[Any, str]:
    """The SDK's aiohttp transport when available (about a third less CPU per request than
    its httpx transport here), else its httpx client; both with `limits` as the pool."""
    aiohttp_client = getattr(openai, "DefaultAioHttpClient", None)
    if aiohttp_client is not None:
        try:
            return aiohttp_client(limits=limits), "aiohttp"
        except RuntimeError:  # the SDK was installed without its aiohttp transport
            pass
    return DefaultAsyncHttpxClient(limits=limits), httpx_name


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
        http = _http_module()
        limits = http.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._provider_name = provider_name
        self._base_url = base_url
        self._response_type: Any = http.Response
        self._timeout_type: Any = http.Timeout
        register_secret(api_key)  # no log line may carry it, even an echoed header
        for value in (extra_headers or {}).values():
            register_secret(value)  # a header may carry a credential too
        self._extra_body = dict(extra_body or {})
        self._sends_cell_key = urlparse(base_url).hostname in _LOOPBACK
        http_client, kind = _http_client(limits, http.__name__)
        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or _PLACEHOLDER_KEY,
            max_retries=0,
            http_client=http_client,
            default_headers=dict(extra_headers) if extra_headers else None,
        )
        self._pool_limits = TransportPoolLimits(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            kind=kind,
            extra={"keepalive_expiry": limits.keepalive_expiry},
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
            "messages": [dict(m) for m in request.messages],
        }
        for name in ("temperature", "top_p", "max_tokens"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.response_format is not None:
            body["response_format"] = dict(request.response_format)
        if request.tools:
            body["tools"] = [dict(t) for t in request.tools]
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
    ) -> tuple[Any, RateLimitHeaders | None]:
        """One POST through the SDK; the raw answer and its rate-limit headers, or a
        classified `ProviderError` (non-2xx answers raise in the SDK)."""
        options: RequestOptions = dict(_AUTH_OPTIONS)  # type: ignore[assignment]
        if timeout_s is not None:
            # the whole attempt gets `timeout_s`; connecting gets at most CONNECT_TIMEOUT_S, so
            # an endpoint that drops packets is found unreachable in seconds
            options["timeout"] = self._timeout_type(
                timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S)
            )
        cell = current_cell_key() if self._sends_cell_key else None
        if headers or cell:
            options["headers"] = {**(headers or {}), **({CELL_KEY_HEADER: cell} if cell else {})}
        try:
            response = await self._client.post(
                path, cast_to=self._response_type, body=body, options=options
            )
        except openai.APIError as exc:
            raise self._classify(exc, route) from None
        return response, parse_rate_limit_headers(response.headers)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.close()

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

    def _classify(self, exc: openai.APIError, route: str) -> ProviderError:
        name = self._provider_name
        if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
            failure, detail = _connection_failure(exc)
            if failure is None:
                return ProviderTimeoutError(f"{name}: {route} got no answer in time", provider=name)
            return ProviderConnectionError(
                f"{name}: {route} {detail}", provider=name, failure=failure
            )
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc, route)
        return ProviderResponseError(
            f"{name}: {route} answered with a malformed body", provider=name
        )

    def _status_error(self, exc: openai.APIStatusError, route: str) -> ProviderError:
        name = self._provider_name
        status = exc.status_code
        headers = exc.response.headers
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
            said = _provider_message(exc.body)
        return cls(
            message,
            provider=name,
            status_code=status,
            retry_after_seconds=parse_retry_after(headers),
            rate_limit=rate_limit,
            provider_message=said,
        )


def _connection_failure(exc: BaseException) -> tuple[ConnectionFailure | None, str]:
    """What went wrong with a connection, from the exception chain's root cause: refused, DNS,
    TLS, no connection in time, dropped; `(None, ...)` when the request was sent and no answer
    came in time."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain and len(chain) < 16:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for err in reversed(chain):  # the root cause first: it is the most specific
        if isinstance(err, socket.gaierror):
            return "dns", f"could not resolve the host name ({err.strerror or err})"
        if isinstance(err, ssl.SSLError):
            reason = getattr(err, "reason", None) or type(err).__name__
            return "tls", f"TLS failed ({reason})"
        if isinstance(err, ConnectionRefusedError) or (
            isinstance(err, OSError) and err.errno == errno.ECONNREFUSED
        ):
            return "refused", "connection refused (is the server running on that port?)"
    names = {type(err).__name__ for err in chain}
    if "PoolTimeout" in names:
        return "pool_timeout", "got no free connection from the pool in time"
    if "ConnectTimeout" in names:
        return "connect_timeout", "could not get a connection in time"
    if isinstance(exc, openai.APITimeoutError):
        return None, ""
    cause_name = type(chain[-1]).__name__ if len(chain) > 1 else "unknown"
    return "dropped", f"connection failed ({cause_name})"


_MAX_PROVIDER_MESSAGE = 200


def _provider_message(body: object) -> str | None:
    """The provider's short error text from a 4xx body (`{"error": {"message": ...}}`,
    `{"message": ...}`, `{"detail": ...}` or `{"error": "..."}`), redacted and truncated."""
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
