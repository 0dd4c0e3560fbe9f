"""Who may use the server from a browser: Host and Origin checks (an ASGI middleware).

A web page cannot be stopped from sending requests to a local port, but it can be told no:
- **DNS rebinding**: a page at `evil.example` whose name is made to resolve to 127.0.0.1
  reaches the server with `Host: evil.example` (what hit Ollama, CVE-2024-28224). Bound to
  loopback, the server answers only loopback Host names; bound to one address, that
  address; more names with `--allowed-hosts`.
- **Cross-site requests**: browsers send a "simple" POST (e.g. `text/plain`) or a WebSocket
  handshake to any origin without asking first, and say where the page came from in
  `Origin`. A request with an `Origin` that is not allowed (`--allowed-origins`; none by
  default) is refused. Programs (the openai client, curl) send no `Origin`.

Refusals are 403 with OpenAI's error envelope; a WebSocket handshake is refused (403)
before it is accepted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mlxchat.server.errors import APIError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
"""The Host names of this machine (the whole 127.0.0.0/8 counts too)."""

ANY = "*"
"""In a list of hosts or origins: allow all."""


def split_list(text: str | None) -> frozenset[str]:
    """A comma-separated setting as a set of lowercase names ("" → empty)."""
    return frozenset(part.strip().lower() for part in (text or "").split(",") if part.strip())


def default_hosts(bound: str) -> frozenset[str]:
    """The Host names allowed for a server bound to `bound` (before `--allowed-hosts`)."""
    try:
        address = ipaddress.ip_address(bound.strip("[]"))
    except ValueError:  # a name: loopback if it is localhost, else that name
        return LOOPBACK_NAMES if bound == "localhost" else frozenset({bound.lower()})
    if address.is_loopback:
        return LOOPBACK_NAMES
    if address.is_unspecified:  # every interface: names cannot be known in advance
        return frozenset({ANY})
    return frozenset({str(address)})


def host_name(header: str) -> str:
    """The name in a Host header, without the port: "[::1]:8080" → "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost"


@dataclass(frozen=True)
class Guard:
    """The allowed Host names and Origins.

    Attributes:
        hosts: Host names (no port) the server answers to; `ANY` allows all.
        origins: Origins ("http://localhost:3000") whose pages may call it; `ANY` allows all.
    """

    hosts: frozenset[str] = LOOPBACK_NAMES
    origins: frozenset[str] = frozenset()

    @classmethod
    def for_address(
        cls, bound: str, hosts: Iterable[str] = (), origins: Iterable[str] = ()
    ) -> Guard:
        """The guard of a server bound to `bound`, with more allowed hosts and origins."""
        origins = frozenset(origin.rstrip("/") for origin in origins)  # "http://x:3000/" too
        return cls(default_hosts(bound) | frozenset(hosts), origins)

    def refusal(self, headers: dict[str, str]) -> APIError | None:
        """Why a request with these headers is refused, or None."""
        host = host_name(headers.get("host", ""))
        allowed = ANY in self.hosts or host in self.hosts
        if not allowed and self.hosts >= LOOPBACK_NAMES and _is_loopback(host):
            allowed = True
        if not allowed:
            return APIError(
                403,
                f"the Host '{host}' is not allowed (a web page's DNS rebinding?); start the "
                f"server with --allowed-hosts {host or 'NAME'} to allow it",
                code="host_not_allowed",
            )
        origin = headers.get("origin")
        if origin is not None and ANY not in self.origins and origin.lower() not in self.origins:
            return APIError(
                403,
                f"requests from web pages of '{origin}' are not allowed; start the server "
                f"with --allowed-origins {origin} to allow them",
                code="origin_not_allowed",
            )
        return None


class GuardMiddleware:
    """Refuses HTTP requests and WebSocket handshakes that `Guard` does not allow."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.guard.refusal(headers)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await refusal.response()(scope, receive, send)
        else:
            await _deny_websocket(scope, receive, send, refusal)


async def _deny_websocket(scope: Scope, receive: Receive, send: Send, error: APIError) -> None:
    """Refuse a WebSocket handshake with the error as an HTTP response (or a bare 403)."""
    message: Any = await receive()  # websocket.connect
    assert message["type"] == "websocket.connect"
    if "websocket.http.response" in scope.get("extensions", {}):
        await error.response()(scope, receive, send)  # Starlette sends it as the denial
    else:
        await send({"type": "websocket.close", "code": 1008})
