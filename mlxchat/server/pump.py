"""Read an engine stream with a deadline, without cancelling the read when the deadline passes.

`asyncio.wait_for(anext(stream), t)` would cancel the engine request at the first timeout;
`EventPump` keeps one read pending across timeouts, so callers can send keep-alives, check
for a gone client, and go on reading.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mlxchat.engine.contract import EventStream


class Timeout:
    """Returned by `EventPump.next` when nothing arrived in time."""


TIMEOUT = Timeout()


class EventPump:
    """Pulls events from one engine stream; `close()` cancels the request if still running."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self._pending: asyncio.Future[Any] | None = None

    async def next(self, timeout: float | None) -> Any:
        """The next event, or `TIMEOUT` after `timeout` seconds.

        Raises:
            StopAsyncIteration: The request ended.
            EngineError: The engine refused or failed the request.
        """
        if self._pending is None:
            self._pending = asyncio.ensure_future(self.stream.__anext__())
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            return TIMEOUT
        task, self._pending = self._pending, None
        return task.result()

    def close(self) -> None:
        """Stop the request (the engine stops within one token)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self.stream.cancel()
