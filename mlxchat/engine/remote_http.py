"""HTTP for the remote engine: endpoints, error lines, and OpenAI-style SSE streams.

Speaks the de-facto standard API of `mlxchat serve`, mlx-lm's `mlx_lm.server`, llama.cpp's
`llama-server`, Ollama, vLLM and LM Studio: `GET /models`, and `POST /chat/completions` or
`/completions` streamed as server-sent events (``data: {json}`` lines, ``data: [DONE]``).
Built on httpx (sync client; the async API runs it on a thread, see remote.py): one small,
well-kept library, the transport the official `openai` SDK itself uses, without the SDK's
models, retries and extra dependencies that a streaming POST and a GET do not need.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from mlxchat.engine.types import EngineError, ModelLoadError

API_KEY_ENV = "MLXCHAT_API_KEY"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 600.0  # a long prefill on a big model sends nothing for minutes

Cancel = Callable[[], bool]
"""Polled while streaming: True stops reading and closes the response."""


@dataclass(frozen=True)
class Endpoint:
    """A server and the model to ask for.

    Attributes:
        base_url: The API root, e.g. ``http://localhost:8080/v1``.
        model: The model id to request (None: the server's default).
    """

    base_url: str
    model: str | None = None

    @property
    def host(self) -> str:
        """``host:port`` of the server, for messages and the status bar."""
        return urlsplit(self.base_url).netloc

    @property
    def label(self) -> str:
        """``model @ host``, as the status bar shows it."""
        model = self.model or "default"
        return f"{model.rstrip('/').rsplit('/', 1)[-1]} @ {self.host}"

    def with_model(self, model: str | None) -> Endpoint:
        """The same server, another model."""
        return Endpoint(self.base_url, model)


def parse_endpoint(name: str, model: str | None = None) -> Endpoint:
    """``http://host:port/v1#model-id`` (or `model`) as an `Endpoint`.

    Raises:
        ModelLoadError: The URL has no host.
    """
    url, _, fragment = name.partition("#")
    if not urlsplit(url).netloc:
        raise ModelLoadError(f"'{name}' is not a server URL; use e.g. http://localhost:8080/v1")
    return Endpoint(url.rstrip("/"), model or fragment or None)


def make_client(api_key: str | None) -> httpx.Client:
    """An HTTP client sending `api_key` (or $MLXCHAT_API_KEY) as a bearer token."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    return httpx.Client(headers=headers, timeout=timeout)


def transport_error(error: httpx.HTTPError, endpoint: Endpoint) -> str:
    """One line for a failure below HTTP (no server, refused, dropped connection)."""
    host = endpoint.host
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect to {host} ({_reason(error)}); is the server running?"
    if isinstance(error, httpx.TimeoutException):
        return f"{host} did not answer in time ({type(error).__name__})"
    return f"the connection to {host} broke: {_reason(error)}"


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text


def http_error(status: int, body: bytes, endpoint: Endpoint) -> str:
    """One line for an HTTP error answer (OpenAI's envelope or a bare message)."""
    host = endpoint.host
    detail = _error_message(body)
    if status in (401, 403):
        return f"{host} refused the API key (HTTP {status}); pass --api-key or set {API_KEY_ENV}"
    if status == 404 and endpoint.model:
        return f"{host} has no model '{endpoint.model}' (HTTP 404)"
    return f"{host} answered HTTP {status}{_tail(detail)}"


def _tail(detail: str) -> str:
    return f": {detail}" if detail else ""


def _error_message(body: bytes) -> str:
    """The first line of the server's error message, short."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace")
    else:
        error = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(error, dict):
            error = error.get("message") or error.get("detail") or ""
        text = str(error)
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:160]


def list_models(client: httpx.Client, endpoint: Endpoint) -> list[str] | None:
    """The model ids the server offers (None when it cannot say).

    Raises:
        ModelLoadError: The server cannot be reached or refuses the key.
    """
    try:
        response = client.get(f"{endpoint.base_url}/models")
    except (httpx.ConnectError, httpx.TimeoutException) as error:
        raise ModelLoadError(transport_error(error, endpoint)) from None
    except httpx.HTTPError:
        return None  # e.g. mlx_lm.server's /models fails without a Hugging Face cache
    if response.status_code in (401, 403):
        raise ModelLoadError(http_error(response.status_code, response.content, endpoint))
    try:
        data = response.json()["data"]
        return [str(item["id"]) for item in data]
    except (ValueError, KeyError, TypeError):
        return None


def stream_json(
    client: httpx.Client,
    endpoint: Endpoint,
    path: str,
    body: dict[str, Any],
    cancelled: Cancel,
) -> Iterator[dict[str, Any]]:
    """POST `body` and yield each SSE ``data:`` object until ``[DONE]`` or `cancelled()`.

    Leaving early closes the response (and so the connection: the server stops).

    Raises:
        EngineError: One line: no connection, an HTTP error, or a stream cut short.
    """
    try:
        with client.stream("POST", f"{endpoint.base_url}/{path}", json=body) as response:
            if response.status_code >= 400:
                raise EngineError(http_error(response.status_code, response.read(), endpoint))
            for line in response.iter_lines():
                if cancelled():
                    return
                if not line.startswith("data:"):
                    continue  # comments (keep-alives), event names, blank separators
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                message = json.loads(data)
                if isinstance(message, dict) and "error" in message:
                    raise EngineError(f"{endpoint.host}: {_error_message(data.encode())}")
                yield message
    except httpx.HTTPError as error:
        raise EngineError(transport_error(error, endpoint)) from None
    except ValueError:
        raise EngineError(f"{endpoint.host} sent a stream that is not JSON") from None
    if not cancelled():
        raise EngineError(f"{endpoint.host} closed the stream before the answer ended")
