"""How `mlxchat serve` runs uvicorn: the listening socket, the protocol guard, shutdown.

uvicorn's internals are reached here only (verified on uvicorn 0.55; pinned below 1):
`uvicorn.Server.handle_exit`, and `H11Protocol`'s `connection_made` / `data_received` /
`on_response_complete` / `connection_lost` with its `cycle`, `connections` and
`server_state`.

- **Idle and slow connections** cannot exhaust the process: a connection must finish its
  request headers within `HEADER_TIMEOUT` seconds, and when `MAX_PENDING` connections wait
  for their headers the oldest is closed (so a new client, `/health` included, always gets
  in); the soft limit of open files is raised to the hard one at start.
- **Small writes go out at once**: the socket is made with `IPPROTO_TCP`, so asyncio sets
  `TCP_NODELAY` on each connection (with protocol 0 it did not, and every keep-alive
  response waited ~40 ms for a delayed ACK).
- **Ctrl+C** stops the answer being generated first (`StoppingServer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import weakref
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from mlxchat.engine.contract import ChatEngine

HEADER_TIMEOUT = 10.0
"""Seconds a connection has to send a request's headers (the first, or the next one)."""

MAX_PENDING = 256
"""Connections waiting for their headers; past it the oldest is closed."""

MAX_WS_MESSAGE = 4 * 1024 * 1024
"""The largest WebSocket message (as the HTTP body limit); larger ones close with 1009."""

GRACEFUL_SHUTDOWN = 1
"""Seconds Ctrl+C waits for open connections before closing them."""


class StoppingServer(uvicorn.Server):
    """Ctrl+C first stops the answer being generated, so its stream ends within a token
    and its connection closes within the grace period; uvicorn otherwise cancels the
    stream mid-answer and logs a traceback ("timeout graceful shutdown exceeded").

    Args:
        config: uvicorn's configuration.
        engine: The engine the app serves.
    """

    def __init__(self, config: uvicorn.Config, engine: ChatEngine) -> None:
        super().__init__(config)
        self.engine = engine

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Stop the running answer, then shut down as uvicorn does."""
        self.engine.cancel()
        super().handle_exit(sig, frame)


_pending: weakref.WeakKeyDictionary[Any, dict[GuardedH11Protocol, None]] = (
    weakref.WeakKeyDictionary()
)
"""Per server: the connections waiting for headers, oldest first."""


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for request headers and a bound on the
    connections waiting for them (see the module docstring)."""

    header_timeout: float = HEADER_TIMEOUT
    max_pending: int = MAX_PENDING
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the header deadline; close the oldest waiting connection past the bound."""
        super().connection_made(transport)
        waiting = _pending.setdefault(self.server_state, {})
        if len(waiting) >= self.max_pending:
            oldest = next(iter(waiting))
            oldest.transport.close()
            oldest._stop_waiting()
        self._wait_for_headers()

    def data_received(self, data: bytes) -> None:
        """Headers complete (a request cycle started): the deadline is off."""
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._stop_waiting()

    def on_response_complete(self) -> None:
        """The next request's headers get a deadline of their own."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._wait_for_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._stop_waiting()
        super().connection_lost(exc)

    def _wait_for_headers(self) -> None:
        self._stop_waiting()
        _pending.setdefault(self.server_state, {})[self] = None
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        _pending.get(self.server_state, {}).pop(self, None)

    def _headers_late(self) -> None:
        self._deadline = None
        self._stop_waiting()
        if self.transport.get_protocol() is self and not self.transport.is_closing():
            self.transport.close()  # not upgraded to a WebSocket, headers never came


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (`IPPROTO_TCP`: asyncio then sets TCP_NODELAY).

    Raises:
        OSError: The address cannot be used.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(address)
    listener.listen(128)
    return listener


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard one; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def server(
    app: Any,
    engine: ChatEngine,
    log_level: str = "warning",
    *,
    header_timeout: float = HEADER_TIMEOUT,
    max_pending: int = MAX_PENDING,
) -> StoppingServer:
    """The uvicorn server for `app` (run it with `server.run(sockets=[listen(...)])`).

    Args:
        app: The ASGI app.
        engine: The engine it serves (Ctrl+C stops its answer first).
        log_level: uvicorn's log level.
        header_timeout: Seconds a connection has to send a request's headers.
        max_pending: Connections waiting for headers before the oldest is closed.
    """
    protocol = type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": header_timeout, "max_pending": max_pending},
    )
    config = uvicorn.Config(
        app,
        log_level=log_level,
        http=protocol,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        ws_max_size=MAX_WS_MESSAGE,
    )
    return StoppingServer(config, engine)
