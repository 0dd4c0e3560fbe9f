"""The app factory: `create_app(engine, config)` builds the FastAPI app around a loaded engine.

Routes reach the engine, the config and the queue with `state_of(request)` (see `state.py`).
A new endpoint family is an `APIRouter` in its own module, included here in one line.
"""

from __future__ import annotations

from fastapi import FastAPI

from mlxchat import __version__
from mlxchat.engine.contract import ChatEngine
from mlxchat.server import anthropic_routes, openai_routes, ws_chat, ws_translate
from mlxchat.server.access_log import AccessLogMiddleware
from mlxchat.server.errors import install_handlers
from mlxchat.server.guard import GuardMiddleware
from mlxchat.server.queue import RequestQueue
from mlxchat.server.state import ServerConfig, ServerState


def create_app(engine: ChatEngine, config: ServerConfig | None = None) -> FastAPI:
    """The HTTP/WebSocket app serving `engine`'s loaded model.

    Args:
        engine: An engine with a model loaded.
        config: Server behaviour (defaults when None).
    """
    config = config or ServerConfig()
    app = FastAPI(title="mlxchat", version=__version__, docs_url=None, redoc_url=None)
    app.state.server = ServerState(
        engine, config, RequestQueue(config.max_queue, config.max_concurrency)
    )
    install_handlers(app)
    app.add_middleware(GuardMiddleware, guard=config.guard)
    app.add_middleware(AccessLogMiddleware)  # outermost: it logs refused requests too
    app.include_router(openai_routes.router)
    app.include_router(anthropic_routes.router)
    app.include_router(ws_chat.router)
    app.include_router(ws_translate.router)
    return app
