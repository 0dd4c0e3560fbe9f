"""The optional API key: `Authorization: Bearer <key>` (exactly: see `bearer_token`) or
`x-api-key: <key>` (Anthropic's clients), compared in constant time."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from mlxchat.server.errors import APIError
from mlxchat.server.state import state_of

INVALID_KEY = APIError(401, "invalid or missing API key", code="invalid_api_key")


def bearer_token(header: str) -> str | None:
    """The token of `Authorization: Bearer <token>`: the scheme in any case (RFC 9110),
    one space, then the token with no whitespace in it; None for anything else (a bare
    key, another scheme, two spaces)."""
    scheme, space, token = header.partition(" ")
    if scheme.lower() != "bearer" or not space or not token or any(c.isspace() for c in token):
        return None
    return token


def authorised(connection: HTTPConnection) -> bool:
    """Whether the request or WebSocket carries the server's key (always, when none is set)."""
    key = state_of(connection).config.api_key
    if key is None:
        return True
    given = bearer_token(connection.headers.get("authorization", "")) or ""
    given = given or connection.headers.get("x-api-key", "")  # Anthropic's clients
    return hmac.compare_digest(given.encode(), key.encode())


async def require_api_key(connection: HTTPConnection) -> None:
    """A route dependency: 401 without the right key."""
    if not authorised(connection):
        raise INVALID_KEY
