"""The engine thread: it runs jobs one after another and is the only thread touching MLX.

A job is a function `fn(emit, cancelled)` whose events and outcome travel back through a
channel of the caller's choosing: a plain queue for blocking consumers, or an asyncio queue
fed with `call_soon_threadsafe` for the event loop. The shape follows mlx-lm's server
(`ResponseGenerator`): a request queue in, a response queue per request out, a sentinel at
the end, exceptions carried on the same queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Emit = Callable[[Any], None]
JobFn = Callable[[Emit, Callable[[], bool]], Any]


@dataclass
class Done:
    """The job finished; `value` is what its function returned."""

    value: Any = None


@dataclass
class Failed:
    """The job raised `error` (re-raised in the consumer)."""

    error: BaseException


@dataclass(eq=False)
class Job:
    """A unit of work for the engine thread and the channel its results go to."""

    fn: JobFn
    deliver: Emit
    cancel: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        if self.cancel.is_set():
            self.deliver(Done(None))
            return
        try:
            value = self.fn(self.deliver, self.cancel.is_set)
        except BaseException as error:  # noqa: BLE001 - carried to the consumer
            self.deliver(Failed(error))
        else:
            self.deliver(Done(value))


class EngineThread:
    """A daemon thread that runs submitted jobs in order."""

    def __init__(self, name: str = "mlxchat-engine") -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._waiting: set[Job] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self.current: Job | None = None

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            with self._lock:
                self._waiting.discard(job)
                self.current = job
            try:
                job.run()
            except BaseException:  # noqa: BLE001 - a consumer that went away; keep serving
                job.cancel.set()
            self.current = None

    def submit(self, job: Job) -> Job:
        """Queue `job`; its results arrive through its `deliver` function."""
        with self._lock:
            self._waiting.add(job)
        self._jobs.put(job)
        return job

    def cancel_all(self) -> None:
        """Cancel the running job and every queued one (queued ones end without running)."""
        with self._lock:
            jobs = [*self._waiting, *([self.current] if self.current else [])]
        for job in jobs:
            job.cancel.set()

    def stop(self, timeout: float | None = None) -> None:
        """Let queued jobs finish, then end the thread.

        Not used on shutdown: a thread that ran MLX work and then exits can make the MLX
        runtime abort at interpreter exit, so the engine leaves its daemon thread parked.
        """
        self._jobs.put(None)
        self._thread.join(timeout)


def async_channel(loop: asyncio.AbstractEventLoop) -> tuple[Emit, asyncio.Queue[Any]]:
    """A deliver function usable from any thread that feeds an asyncio queue on `loop`."""
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def deliver(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening
            loop.call_soon_threadsafe(inbox.put_nowait, item)

    return deliver, inbox
