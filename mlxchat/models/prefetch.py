"""A Hub download started before the engine's load job, in a thread of its own.

Downloading needs no MLX, so it does not hold the engine thread: the model loaded before
goes on answering meanwhile. The load job then finds the files in the cache.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from mlxchat.engine import runtime
from mlxchat.engine.types import LoadProgress
from mlxchat.models import hub


async def prefetch(name: str, on_progress: Callable[[LoadProgress], None] | None) -> None:
    """Download `name` when it is a Hub model not in the cache (nothing otherwise).

    Cancelling the caller stops the download at its next piece (what arrived is kept).

    Raises:
        ModelLoadError: The download failed (one line).
    """
    ref = hub.parse(name)
    if ref is None or Path(name).expanduser().exists():  # a local "dir/model" goes first
        return
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def deliver(event: LoadProgress) -> None:
        if on_progress is not None and not stop.is_set():  # none once the caller has gone
            on_progress(event)

    def report(event: LoadProgress) -> None:
        loop.call_soon_threadsafe(deliver, event)

    def work() -> None:
        with runtime.one_importer():  # never alongside the engine thread's imports
            import huggingface_hub.hf_api  # noqa: F401
            from huggingface_hub import hf_hub_download, snapshot_download  # noqa: F401
            from huggingface_hub.utils import get_session  # noqa: F401
        hub.fetch(name, report, stop.is_set)

    try:
        await loop.run_in_executor(None, work)
    except asyncio.CancelledError:
        stop.set()
        raise
