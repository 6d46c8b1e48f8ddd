"""The provider adapter contract: typed requests, responses and classified provider errors.

Adapters (`openai_compatible.py`, `simulated.py`) make exactly one outbound attempt per call and
never retry; `ModelRequestExecutor` owns retries and request admission. Every failure an adapter
raises is a `ProviderError` subclass, so classification into a release outcome is exhaustive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rowloom.provider_wire import RateLimitHeaders, TransportPoolLimits

Message = Mapping[str, Any]
"""An OpenAI chat message: `role`, `content` (text or a list of content parts such as
`{"type": "image_url", "image_url": {"url": ...}}`), and for tool use `tool_calls` (assistant)
or `tool_call_id` (tool)."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat-completion attempt against a canonical model id."""

    model: str
    messages: tuple[Message, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    response_format: Mapping[str, Any] | None = None
    extra_body: Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] | None = None
    """OpenAI function-tool specs (`{"type": "function", "function": {...}}`)."""
    extra_headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one answer. `reasoning_tokens` are part of `completion_tokens`, as OpenAI
    reports them (`completion_tokens_details.reasoning_tokens`)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for; `arguments` is the JSON text it sent."""

    id: str
    name: str
    arguments: str

    def as_message_part(self) -> dict[str, Any]:
        """The call as it appears in an assistant message's `tool_calls`."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """The first choice of an answer (text, reasoning, tool calls) plus transport metadata.

    `reasoning_content` is the provider's separate reasoning field (`reasoning_content` or
    `reasoning`), None when the answer has none; inline `<think>` blocks stay in `text`.
    """

    text: str
    usage: TokenUsage | None = None
    rate_limit: RateLimitHeaders | None = None
    status_code: int = 200
    reasoning_content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None

    def assistant_message(self) -> dict[str, Any]:
        """The answer as the assistant message a conversation continues with."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.reasoning_content:
            message["reasoning_content"] = self.reasoning_content
        if self.tool_calls:
            message["tool_calls"] = [call.as_message_part() for call in self.tool_calls]
        return message


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    timeout: float | None = None
    extra_body: Mapping[str, Any] | None = None
    extra_headers: Mapping[str, str] | None = None
    dimensions: int | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResponse:
    vectors: tuple[tuple[float, ...], ...]
    usage: TokenUsage | None = None
    rate_limit: RateLimitHeaders | None = None
    status_code: int = 200


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One image-generation attempt (`POST /images/generations`, base64 answers)."""

    model: str
    prompt: str
    timeout: float | None = None
    extra_body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ImageResponse:
    """The generated images' bytes (PNG, JPEG or WebP as the provider sends them)."""

    images: tuple[bytes, ...]
    usage: TokenUsage | None = None
    rate_limit: RateLimitHeaders | None = None
    status_code: int = 200


class ProviderError(Exception):
    """A classified failure of one outbound attempt. Never carries a raw body or a key;
    `provider_message` is at most the provider's own short error text of a 4xx answer
    (registered secrets redacted)."""

    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        retry_after_seconds: float | None = None,
        rate_limit: RateLimitHeaders | None = None,
        provider_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.retry_after_seconds = retry_after_seconds
        self.rate_limit = rate_limit
        self.provider_message = provider_message

    @property
    def error_class(self) -> str:
        """A short stable name for summaries and events."""
        return _ERROR_CLASS.get(type(self), "provider_error")


class ProviderRateLimitError(ProviderError):
    """HTTP 429: slow down; `retry_after_seconds` from Retry-After when sent."""


class ProviderOverloadedError(ProviderError):
    """HTTP 503/529: the server is overloaded (treated as a congestion signal)."""


class ProviderServerError(ProviderError):
    """Another 5xx answer."""


class ProviderTimeoutError(ProviderError):
    """The request was sent but no answer came within the attempt's timeout."""


ConnectionFailure = Literal["refused", "dns", "tls", "connect_timeout", "pool_timeout", "dropped"]


class ProviderConnectionError(ProviderError):
    """Could not connect, or the connection dropped before an answer. `failure` says which:
    refused, DNS lookup failed, TLS failed, no connection in time, no free connection in the
    local pool in time, or dropped."""

    def __init__(
        self, message: str, *, provider: str, failure: ConnectionFailure = "dropped"
    ) -> None:
        super().__init__(message, provider=provider)
        self.failure: ConnectionFailure = failure


class ProviderRequestError(ProviderError):
    """A 4xx other than 429 (bad request, auth, not found): retrying will not help."""

    retryable = False


class ProviderResponseError(ProviderError):
    """The provider answered 2xx but the body is malformed (not JSON, fields missing)."""


_ERROR_CLASS: dict[type[ProviderError], str] = {
    ProviderRateLimitError: "rate_limited",
    ProviderOverloadedError: "provider_overloaded",
    ProviderServerError: "provider_5xx",
    ProviderTimeoutError: "provider_timeout",
    ProviderConnectionError: "connection_error",
    ProviderRequestError: "bad_request",
    ProviderResponseError: "malformed_response",
}


class ModelClient(Protocol):
    """One provider's adapter: one outbound attempt per call, no retries, no admission."""

    @property
    def provider_name(self) -> str: ...

    @property
    def transport_pool_limits(self) -> TransportPoolLimits | None: ...

    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse: ...

    async def generate_image(self, request: ImageRequest) -> ImageResponse: ...

    async def aclose(self) -> None: ...
