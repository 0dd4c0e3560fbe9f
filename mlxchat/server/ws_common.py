"""What both WebSocket endpoints do alike: the key check in the handshake, and reading the
client's events as text until it closes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import WebSocket

from mlxchat.server.auth import INVALID_KEY, authorised


async def accept(websocket: WebSocket) -> bool:
    """Accept the connection, or refuse it in the handshake (HTTP error envelope) when the
    API key is wrong; returns whether it was accepted."""
    if not authorised(websocket):
        await websocket.send_denial_response(INVALID_KEY.response())
        return False
    await websocket.accept()
    return True


async def received_texts(websocket: WebSocket) -> AsyncIterator[str]:
    """Each message the client sends, as text (bytes decoded with replacement), until it
    closes the connection."""
    while (message := await websocket.receive())["type"] != "websocket.disconnect":
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", "replace")
        yield text
