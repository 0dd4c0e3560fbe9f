"""The optional API key: `Authorization: Bearer <key>`, compared in constant time."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from mlxchat.server.errors import APIError
from mlxchat.server.state import state_of

INVALID_KEY = APIError(401, "invalid or missing API key", code="invalid_api_key")


def authorised(connection: HTTPConnection) -> bool:
    """Whether the request or WebSocket carries the server's key (always, when none is set)."""
    key = state_of(connection).config.api_key
    if key is None:
        return True
    given = connection.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), key.encode())


async def require_api_key(connection: HTTPConnection) -> None:
    """A route dependency: 401 without the right key."""
    if not authorised(connection):
        raise INVALID_KEY
