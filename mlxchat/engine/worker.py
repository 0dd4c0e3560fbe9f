"""The engine thread: the only thread touching MLX. It runs jobs and steps the batch.

A job is a function `fn(emit, cancelled)` whose events and outcome travel back through a
channel of the caller's choosing: a plain queue for blocking consumers, or an asyncio queue
fed with `call_soon_threadsafe` for the event loop. The shape follows mlx-lm's server
(`ResponseGenerator`): a request queue in, a response queue per request out, a sentinel at
the end, exceptions carried on the same queue.

A job may hand its work on instead of finishing it: a generation joins the batch (returns
`DEFERRED`) and ends later, when the batch says so (`Job.finish`). Between two steps of
the batch the thread runs one waiting job, so short jobs (a translated word, a token
count) go on while answers stream; an `exclusive` job (loading a model) waits until the
batch is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

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


DEFERRED = object()
"""Returned by a job function whose work goes on in the batch (`Job.finish` ends it)."""


@dataclass(eq=False)
class Job:
    """A unit of work for the engine thread and the channel its results go to.

    Attributes:
        exclusive: Runs only while the batch is empty (e.g. a model load).
    """

    fn: JobFn
    deliver: Emit
    cancel: threading.Event = field(default_factory=threading.Event)
    exclusive: bool = False

    def run(self) -> None:
        if self.cancel.is_set():
            self.deliver(Done(None))
            return
        try:
            value = self.fn(self.deliver, self.cancel.is_set)
        except BaseException as error:  # noqa: BLE001 - carried to the consumer
            self.deliver(Failed(error))
        else:
            if value is not DEFERRED:
                self.deliver(Done(value))

    def finish(self, error: BaseException | None = None) -> None:
        """End a deferred job (from the batch)."""
        self.deliver(Done(None) if error is None else Failed(error))


class Stepper(Protocol):
    """What the engine thread steps between jobs (the batch of generations)."""

    def busy(self) -> bool:
        """Whether there is work to step."""
        ...

    def step(self) -> None:
        """One step (a decode step of every answer, a prefill chunk of a new one)."""
        ...

    def jobs(self) -> list[Job]:
        """The jobs whose work is in the batch."""
        ...


class EngineThread:
    """A daemon thread that runs submitted jobs in order and steps the batch between them."""

    def __init__(self, name: str = "mlxchat-engine") -> None:
        self._jobs: deque[Job | None] = deque()
        self._wake = threading.Condition()
        self.stepper: Stepper | None = None
        self.current: Job | None = None
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _batch_busy(self) -> bool:
        return self.stepper is not None and self.stepper.busy()

    def _next_job(self) -> Job | None | bool:
        """The next job to run, None to stop, or False to step the batch instead."""
        with self._wake:
            while True:
                busy = self._batch_busy()
                if self._jobs:
                    head = self._jobs[0]
                    if head is None or not (head.exclusive and busy):
                        self._jobs.popleft()
                        self.current = head
                        return head
                if busy:
                    return False
                self._wake.wait()

    def _serve(self) -> None:
        while (job := self._next_job()) is not None:
            if job is False:
                assert self.stepper is not None
                self.stepper.step()
                continue
            assert isinstance(job, Job)
            try:
                job.run()
            except BaseException:  # noqa: BLE001 - a consumer that went away; keep serving
                job.cancel.set()
            self.current = None
        self.current = None

    def submit(self, job: Job) -> Job:
        """Queue `job`; its results arrive through its `deliver` function."""
        with self._wake:
            self._jobs.append(job)
            self._wake.notify()
        return job

    def running(self) -> list[Job]:
        """The job running now and the answers in the batch."""
        stepper = self.stepper
        return [*([self.current] if self.current else []), *(stepper.jobs() if stepper else [])]

    def cancel_all(self) -> None:
        """Cancel what runs, what is in the batch and every queued job (queued ones end
        without running)."""
        with self._wake:
            waiting = [job for job in self._jobs if job is not None]
        for job in [*waiting, *self.running()]:
            job.cancel.set()

    def stop(self, timeout: float | None = None) -> None:
        """Let queued jobs finish, then end the thread.

        Not used on shutdown: a thread that ran MLX work and then exits can make the MLX
        runtime abort at interpreter exit, so the engine leaves its daemon thread parked.
        """
        with self._wake:
            self._jobs.append(None)
            self._wake.notify()
        self._thread.join(timeout)


def async_channel(loop: asyncio.AbstractEventLoop) -> tuple[Emit, asyncio.Queue[Any]]:
    """A deliver function usable from any thread that feeds an asyncio queue on `loop`."""
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def deliver(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening
            loop.call_soon_threadsafe(inbox.put_nowait, item)

    return deliver, inbox
