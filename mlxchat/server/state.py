"""What every route reaches through `state_of(request_or_websocket)`: engine, settings, queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from mlxchat.config import Settings
from mlxchat.engine.contract import ChatEngine
from mlxchat.server.guard import Guard
from mlxchat.server.queue import RequestQueue


@dataclass(frozen=True)
class ServerConfig:
    """How the server behaves.

    Attributes:
        api_key: When set, `/v1/*` requires `Authorization: Bearer <api_key>`.
        max_queue: Most requests waiting behind the running ones (more get 429).
        max_concurrency: Requests answered at once (the engine's batch).
        keepalive_interval: Seconds of silence before an SSE keep-alive comment.
        max_body_bytes: Largest request body accepted (more gets 413).
        defaults: The settings requests start from (sampling, context cap).
        guard: The Host names and web page origins allowed (`guard.py`).
        model_aliases: Other names (`*` wildcards) requests may give the served model.
    """

    api_key: str | None = None
    max_queue: int = 16
    max_concurrency: int = 8
    keepalive_interval: float = 15.0
    max_body_bytes: int = 4 * 1024 * 1024
    defaults: Settings = field(default_factory=Settings)
    guard: Guard = field(default_factory=Guard)
    model_aliases: tuple[str, ...] = ()


@dataclass
class ServerState:
    """The engine (with its model loaded), the config and the admission queue."""

    engine: ChatEngine
    config: ServerConfig
    queue: RequestQueue


def model_defaults(state: ServerState) -> Mapping[str, Any] | None:
    """The served model's own sampling defaults (its generation_config.json)."""
    info = state.engine.model_info
    return info.sampling_defaults if info is not None else None


def state_of(connection: HTTPConnection) -> ServerState:
    """The server state from a route's `Request` or `WebSocket`."""
    return connection.app.state.server
