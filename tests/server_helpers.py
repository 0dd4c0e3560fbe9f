"""A real server on a free loopback port, in a thread, around a loaded engine: the same
stack as `mlxchat serve` (its socket, protocol guard and uvicorn settings)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlxchat.engine.engine import Engine
from mlxchat.server.app import create_app
from mlxchat.server.serving import listen, server
from mlxchat.server.state import ServerConfig


@contextmanager
def running_server(engine: Engine, config: ServerConfig, **guard: Any) -> Iterator[str]:
    """Serve `engine` on 127.0.0.1 and yield the base URL (`http://127.0.0.1:PORT`).

    Args:
        engine: A loaded engine.
        config: The server's config.
        guard: `serving.server`'s header_timeout / max_pending.
    """
    listener = listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    running = server(create_app(engine, config), engine, **guard)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(10)
        listener.close()
