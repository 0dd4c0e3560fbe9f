"""Admission to the engine: up to `max_running` requests answered at once (one batch), a
bounded number waiting their turn in arrival order."""

from __future__ import annotations

import asyncio

from mlxchat.server.errors import APIError

RETRY_AFTER_S = 1
"""What a refused client is told to wait before trying again (seconds)."""


class RequestQueue:
    """The requests admitted: up to `max_running` are answered together, the rest wait.

    Args:
        max_waiting: Most requests allowed to wait behind the running ones.
        max_running: Requests answered at once (the engine's batch).
    """

    def __init__(self, max_waiting: int, max_running: int = 1) -> None:
        self.max_waiting = max_waiting
        self.max_running = max_running
        self.active = 0
        self.running = 0
        self._turns: asyncio.Semaphore | None = None

    @property
    def waiting(self) -> int:
        """Requests admitted but not yet running."""
        return self.active - self.running

    def admit(self) -> Slot:
        """Take a place; wait for its turn with `Slot.turn()`, give it back with
        `Slot.release()` when the request ends.

        Raises:
            APIError: 429 with `Retry-After` when `max_waiting` requests already wait.
        """
        if self.active >= self.max_running + self.max_waiting:
            raise APIError(
                429,
                f"the server is busy ({self.waiting} requests waiting); retry shortly",
                code="queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.active += 1
        return Slot(self)

    def turns(self) -> asyncio.Semaphore:
        """The running places (made on the server's event loop)."""
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.max_running)
        return self._turns


class Slot:
    """One admitted request's place in the queue."""

    def __init__(self, queue: RequestQueue) -> None:
        self._queue: RequestQueue | None = queue
        self._running = False

    async def turn(self) -> None:
        """Wait until the request may run (cancel the wait to leave the queue)."""
        assert self._queue is not None
        await self._queue.turns().acquire()
        self._running = True
        self._queue.running += 1

    def release(self) -> None:
        """Give the place back (again: nothing)."""
        if self._queue is None:
            return
        if self._running:
            self._queue.running -= 1
            self._queue.turns().release()
        self._queue.active -= 1
        self._queue = None
