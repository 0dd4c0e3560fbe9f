"""`load_model`: what the chat and translate screens share when they load a model."""

from __future__ import annotations

from collections.abc import Callable

from mlxchat.engine.contract import TranslateEngine
from mlxchat.engine.types import EngineError, LoadProgress, ModelInfo
from mlxchat.ui.widgets.status import StatusBar


async def load_model(
    engine: TranslateEngine,
    name: str,
    status: StatusBar,
    on_progress: Callable[[LoadProgress], None] | None = None,
) -> ModelInfo | str:
    """Load `name` on `engine`, its progress shown in `status` (and passed to `on_progress`).

    Returns:
        The loaded model's info, or why it failed as one line to show (the old model stays).
    """

    def progress(event: LoadProgress) -> None:
        if isinstance(event, LoadProgress):
            status.show_loading(event)
            if on_progress is not None:
                on_progress(event)

    try:
        return await engine.load(name, progress)
    except Exception as error:  # ModelLoadError, or a loader bug: the app goes on
        return str(error) if isinstance(error, EngineError) else f"{name}: {error}"
