"""One log line per request, the access log users expect: client, method, path, status,
tokens and seconds (logger `mlxchat.access` at INFO; `serve --quiet` turns it off).

A pure ASGI middleware: it sees the status as the response starts and logs when the request
ends (a stream when its last byte went out, a WebSocket when it closed). The tokens come
from `count_tokens`, called where a route builds its `usage`.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

from mlxchat.engine.types import Stats

log = logging.getLogger("mlxchat.access")

_tokens: ContextVar[dict[str, int] | None] = ContextVar("mlxchat_access_tokens", default=None)
"""The request's token counts, a dict shared with the tasks the request runs in."""

Scope = dict[str, Any]


def count_tokens(stats: Stats) -> None:
    """Note the tokens of the request being answered (for its access log line)."""
    counts = _tokens.get()
    if counts is not None:
        counts["prompt"] = counts.get("prompt", 0) + stats.cached_tokens + stats.prompt_tokens
        counts["completion"] = counts.get("completion", 0) + stats.generation_tokens


class AccessLogMiddleware:
    """Logs each HTTP request and WebSocket session once it ends."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 0}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "websocket.accept":
                status["code"] = 101
            elif message["type"] == "websocket.close" and not status["code"]:
                status["code"] = 403  # refused before it was accepted
            await send(message)

        counts: dict[str, int] = {}
        reset = _tokens.set(counts)
        try:
            await self.app(scope, receive, sending)
        finally:
            _tokens.reset(reset)
            if log.isEnabledFor(logging.INFO):
                log.info(_line(scope, status["code"], counts, time.perf_counter() - start))


def _line(scope: Scope, status: int, counts: dict[str, int], seconds: float) -> str:
    client = scope.get("client")
    who = client[0] if client else "-"
    method = scope.get("method", "WS")
    tokens = f" {counts.get('prompt', 0)}+{counts.get('completion', 0)} tok" if counts else ""
    return f"{who} {method} {scope.get('path', '')} {status or '-'}{tokens} {seconds:.2f} s"
