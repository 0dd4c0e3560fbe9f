"""A real uvicorn server on a free loopback port, in a thread, around a loaded engine."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from mlxchat.engine.engine import Engine
from mlxchat.server.app import create_app
from mlxchat.server.state import ServerConfig


@contextmanager
def running_server(engine: Engine, config: ServerConfig) -> Iterator[str]:
    """Serve `engine` on 127.0.0.1 and yield the base URL (`http://127.0.0.1:PORT`)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine, config), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
