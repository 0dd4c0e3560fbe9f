"""`mlxchat serve`: the engine behind an OpenAI-compatible HTTP API and WebSockets."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import TYPE_CHECKING, Annotated

import typer

from mlxchat.cli.app import (
    EXIT_INTERRUPTED,
    ModelOpt,
    app,
    fail,
    load_model_or_exit,
    settings_or_exit,
)

if TYPE_CHECKING:
    from mlxchat.config import Settings
    from mlxchat.engine.engine import Engine

INSTALL_HINT = "serving needs the 'serve' extra: pip install 'mlxchat[serve]'"


@app.command()
def serve(
    model: ModelOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="MLXCHAT_API_KEY", help="Require this key (Bearer) on /v1."),
    ] = None,
    max_queue: Annotated[
        int, typer.Option("--max-queue", help="Most requests waiting; more get 429.")
    ] = 16,
    progress_interval: Annotated[
        float, typer.Option("--progress-interval", help="Seconds between progress events.")
    ] = 5.0,
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API (SSE) and WebSockets."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        fail(INSTALL_HINT)
    if max_queue < 0:
        fail(f"--max-queue must be 0 or more (got {max_queue})")
    if progress_interval <= 0:
        fail(f"--progress-interval must be a number of seconds > 0 (got {progress_interval})")
    if not 0 <= port <= 65535:
        fail(f"--port must be between 0 and 65535 (got {port})")
    settings = settings_or_exit(model=model)
    if not _is_loopback(host) and not api_key:
        typer.echo(
            f"mlxchat: warning: listening on {host} without --api-key: anyone who can reach "
            "this machine can use the model",
            err=True,
        )
    listener = _listen(host, port)
    import mlxchat.engine  # noqa: F401  (the CPU fast path: BLAS before MLX, as the chat does)
    from mlxchat.engine.engine import Engine

    engine = Engine(progress_interval=progress_interval, fast_cpu=settings.fast_cpu)
    info = load_model_or_exit(engine, settings.model, quiet=False)
    _run(engine, settings, listener, api_key, max_queue, info.name)


def _run(
    engine: Engine,
    settings: Settings,
    listener: socket.socket,
    api_key: str | None,
    max_queue: int,
    name: str,
) -> None:
    import uvicorn

    from mlxchat.server.app import create_app
    from mlxchat.server.state import ServerConfig

    config = ServerConfig(api_key=api_key, max_queue=max_queue, defaults=settings)
    server_app = create_app(engine, config)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"mlxchat: serving {name} at http://{shown}:{port}/v1 (Ctrl+C stops)", err=True)
    level = "info" if os.environ.get("MLXCHAT_DEBUG") else "warning"
    server = uvicorn.Server(
        uvicorn.Config(server_app, log_level=level, timeout_graceful_shutdown=1)
    )
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn shuts down gracefully, then re-raises Ctrl+C
        typer.echo("mlxchat: interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _listen(host: str, port: int) -> socket.socket:
    """A bound listening socket, or one clear line when the address cannot be used."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}")
    return listener


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
