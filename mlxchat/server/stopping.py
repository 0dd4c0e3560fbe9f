"""`StoppingServer`: uvicorn's server, stopped the way `mlxchat serve` needs on Ctrl+C."""

from __future__ import annotations

from typing import Any

import uvicorn

from mlxchat.engine.contract import ChatEngine


class StoppingServer(uvicorn.Server):
    """Ctrl+C first stops the answer being generated, so its stream ends within a token
    and its connection closes within the grace period; uvicorn otherwise cancels the
    stream mid-answer and logs a traceback ("timeout graceful shutdown exceeded").

    Args:
        config: uvicorn's configuration.
        engine: The engine the app serves.
    """

    def __init__(self, config: uvicorn.Config, engine: ChatEngine) -> None:
        super().__init__(config)
        self.engine = engine

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Stop the running answer, then shut down as uvicorn does."""
        self.engine.cancel()
        super().handle_exit(sig, frame)
