"""Admission to the one engine thread: a bounded number of requests waiting their turn."""

from __future__ import annotations

from mlxchat.server.errors import APIError

RETRY_AFTER_S = 1
"""What a refused client is told to wait before trying again (seconds)."""


class RequestQueue:
    """Counts the requests holding the engine (one runs, the rest wait in arrival order).

    Args:
        max_waiting: Most requests allowed to wait behind the running one.
    """

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self.active = 0

    @property
    def waiting(self) -> int:
        """Requests admitted but not yet running."""
        return max(0, self.active - 1)

    def admit(self) -> Slot:
        """Take a place; release it with `Slot.release()` when the request ends.

        Raises:
            APIError: 429 with `Retry-After` when `max_waiting` requests already wait.
        """
        if self.active > self.max_waiting:
            raise APIError(
                429,
                f"the server is busy ({self.waiting} requests waiting); retry shortly",
                code="queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.active += 1
        return Slot(self)


class Slot:
    """One admitted request's place in the queue."""

    def __init__(self, queue: RequestQueue) -> None:
        self._queue: RequestQueue | None = queue

    def release(self) -> None:
        """Give the place back (again: nothing)."""
        if self._queue is not None:
            self._queue.active -= 1
            self._queue = None
