"""`mlxchat serve`: the engine behind an OpenAI-compatible HTTP API and WebSockets."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxchat.cli.app import (
    DraftModelOpt,
    ModelOpt,
    SpeculativeOpt,
    app,
    load_model_or_exit,
    settings_or_exit,
)
from mlxchat.cli.errors import EXIT_INTERRUPTED, fail

if TYPE_CHECKING:
    import mlx.core as mx

    from mlxchat.config import Settings
    from mlxchat.engine.engine import Engine
    from mlxchat.engine.types import ModelInfo
    from mlxchat.server.distributed import Lockstep

FOLLOWER_GRACE_S = 5.0
"""How long a rank other than 0 waits before it exits after a model that cannot be split."""


def install_hint() -> str:
    """How to add the 'serve' extra: from a checkout (an editable install) or from PyPI."""
    import mlxchat

    checkout = Path(mlxchat.__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return f"serving needs the 'serve' extra: cd {checkout} && pip install -e '.[serve]'"
    return "serving needs the 'serve' extra: pip install 'mlxchat[serve]'"


@app.command()
def serve(
    model: ModelOpt = None,
    speculative: SpeculativeOpt = None,
    draft_model: DraftModelOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="MLXCHAT_API_KEY", help="Require this key (Bearer) on /v1."),
    ] = None,
    max_queue: Annotated[
        int, typer.Option("--max-queue", help="Most requests waiting; more get 429.")
    ] = 16,
    max_concurrency: Annotated[
        int,
        typer.Option(
            "--max-concurrency", help="Requests answered at once, in one batch (the rest wait)."
        ),
    ] = 8,
    progress_interval: Annotated[
        float, typer.Option("--progress-interval", help="Seconds between progress events.")
    ] = 5.0,
    allowed_hosts: Annotated[
        str | None,
        typer.Option(
            envvar="MLXCHAT_ALLOWED_HOSTS",
            help="More Host names to answer to, comma-separated (default: loopback names "
            "when bound to loopback, else the bound address).",
        ),
    ] = None,
    allowed_origins: Annotated[
        str | None,
        typer.Option(
            envvar="MLXCHAT_ALLOWED_ORIGINS",
            help="Web page origins allowed to call the server, comma-separated (default: "
            "none; '*': any).",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No access log line per request.")
    ] = False,
    model_aliases: Annotated[
        str | None,
        typer.Option(
            envvar="MLXCHAT_MODEL_ALIASES",
            help="Model names answered as the served model, comma-separated; '*' matches "
            "anything (e.g. 'claude-*' for Claude Code).",
        ),
    ] = None,
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API (SSE) and WebSockets."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        fail(install_hint())
    if max_queue < 0:
        fail(f"--max-queue must be 0 or more (got {max_queue})")
    if not 1 <= max_concurrency <= 64:
        fail(f"--max-concurrency must be from 1 to 64 (got {max_concurrency})")
    if progress_interval <= 0:
        fail(f"--progress-interval must be a number of seconds > 0 (got {progress_interval})")
    if quiet:
        import logging

        logging.getLogger("mlxchat.access").setLevel(logging.WARNING)
    if not 0 <= port <= 65535:
        fail(f"--port must be between 0 and 65535 (got {port})")
    settings = settings_or_exit(
        model=model,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
        model_aliases=model_aliases,
        speculative=speculative,
        draft_model=draft_model,
    )
    if not _is_loopback(host) and not api_key:
        typer.echo(
            f"mlxchat: warning: listening on {host} without --api-key: anyone who can reach "
            "this machine can use the model",
            err=True,
        )
    from mlxchat.engine.engine import Engine
    from mlxchat.server import distributed

    group = distributed.world()  # under mlx.launch: rank 0 serves, the others follow
    if group is not None and group.rank() != 0:
        _follow(settings.model, group)
        return
    listener = _listen(host, port)
    engine = Engine(
        progress_interval=progress_interval,
        fast_cpu=settings.fast_cpu,
        prompt_cache_bytes=settings.prompt_cache_bytes,
        prompt_cache_disk_bytes=settings.prompt_cache_disk_bytes,
        max_batch=max_concurrency,
        speculative=settings.speculative,
        draft_model=settings.draft_model or None,
    )
    if group is None:
        info = load_model_or_exit(engine, settings.model, quiet=False)
        _run(engine, settings, listener, api_key, max_queue, max_concurrency, info.name)
        return
    lockstep = _load_shard(engine, settings.model, group)
    try:
        _run(engine, settings, listener, api_key, max_queue, 1, settings.model)  # lockstep
    finally:
        engine.call_sync(lockstep.stop)


def _load_shard(engine: Engine, name: str, group: mx.distributed.Group) -> Lockstep:
    """Rank 0: load this rank's shard on the engine thread, every model call in lockstep."""
    from mlxchat.engine.types import ModelLoadError
    from mlxchat.server.distributed import Lockstep, UnsplittableModel, barrier, load_shard

    lockstep: Lockstep | None = None

    def load() -> tuple[Any, Any, ModelInfo]:
        nonlocal lockstep
        model, tokenizer, info = load_shard(name, group)
        lockstep = Lockstep(model, group)
        return lockstep, tokenizer, info

    try:
        engine.adopt(load)
    except ModelLoadError as error:
        typer.echo(f"mlxchat: error: {error}", err=True)
        if isinstance(error, UnsplittableModel):
            barrier(group)  # the others exit only after this line is out
        raise typer.Exit(2) from None
    assert lockstep is not None
    typer.echo(f"mlxchat: {name} split across {group.size()} ranks (tensor parallel)", err=True)
    return lockstep


def _follow(name: str, group: mx.distributed.Group) -> None:
    """Ranks other than 0: load this rank's shard and run the calls rank 0 announces."""
    from mlxchat.engine.types import ModelLoadError
    from mlxchat.server.distributed import UnsplittableModel, barrier, follow, load_shard

    try:
        model, _, _ = load_shard(name, group)
    except UnsplittableModel:
        barrier(group)  # rank 0 says why, once, and exits 2 first (mlx.launch then stops all)
        time.sleep(FOLLOWER_GRACE_S)
        raise typer.Exit(2) from None
    except ModelLoadError as error:
        fail(f"rank {group.rank()}: {error}")
    follow(model, group)


def _run(
    engine: Engine,
    settings: Settings,
    listener: socket.socket,
    api_key: str | None,
    max_queue: int,
    max_concurrency: int,
    name: str,
) -> None:
    from mlxchat.server import serving
    from mlxchat.server.app import create_app
    from mlxchat.server.guard import Guard, split_list
    from mlxchat.server.state import ServerConfig

    host, port = listener.getsockname()[:2]
    guard = Guard.for_address(
        str(host), split_list(settings.allowed_hosts), split_list(settings.allowed_origins)
    )
    config = ServerConfig(
        api_key=api_key,
        max_queue=max_queue,
        max_concurrency=max_concurrency,
        defaults=settings,
        guard=guard,
        model_aliases=tuple(sorted(split_list(settings.model_aliases))),
    )
    server_app = create_app(engine, config)
    shown = f"[{host}]" if ":" in host else host
    budget = engine.prompt_cache_bytes / 1e6
    disk = engine.prompt_cache_disk_bytes / 1e6
    on_disk = f", {disk:.0f} MB on disk" if disk else ""
    typer.echo(
        f"mlxchat: serving {name} at http://{shown}:{port}/v1 (Ctrl+C stops; "
        f"prompt cache up to {budget:.0f} MB{on_disk})",
        err=True,
    )
    _log_to_stderr()
    level = "info" if os.environ.get("MLXCHAT_DEBUG") else "warning"
    server = serving.server(server_app, engine, log_level=level)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn shuts down gracefully, then re-raises Ctrl+C
        typer.echo("mlxchat: interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        engine.close()  # exiting while the engine thread is inside MLX aborts the process


def _log_to_stderr() -> None:
    """mlxchat's own log lines (e.g. prompt-cache evictions) on stderr, as `mlxchat: …`."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("mlxchat: %(message)s"))
    logger = logging.getLogger("mlxchat")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _listen(host: str, port: int) -> socket.socket:
    """A bound listening socket, or one clear line when the address cannot be used."""
    from mlxchat.server.serving import listen, raise_open_files_limit

    raise_open_files_limit()
    try:
        return listen(host, port)
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
