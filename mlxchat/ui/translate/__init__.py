"""The simultaneous-translation TUI: `run_translate` (for `mlxchat translate`), `TranslateApp`,
and `TranslateScreen` (also pushed from the chat for `/translate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlxchat.translate.decoding import WaitKSettings
    from mlxchat.ui.translate.app import TranslateApp
    from mlxchat.ui.translate.screen import TranslateScreen


def run_translate(
    model: str,
    settings: WaitKSettings,
    *,
    source: str | None,
    wpm: float,
    theme: str | None = None,
) -> int:
    """Run the translate TUI until the user quits; returns the exit code.

    Args:
        model: The model to load ("demo", a Hugging Face id, a folder or a .gguf file).
        settings: The wait-k settings to start with (+/- change k from the next sentence).
        source: A text to play back at `wpm`; None lets the user type the source live.
        wpm: Playback speed in words per minute.
        theme: The colour theme (None: the one in the settings file).
    """
    from mlxchat.ui.translate import app

    return app.run_translate(model, settings, source=source, wpm=wpm, theme=theme)


def __getattr__(name: str) -> Any:
    """Import the app and the screen lazily so `import mlxchat.ui.translate` stays cheap."""
    if name == "TranslateApp":
        from mlxchat.ui.translate.app import TranslateApp

        return TranslateApp
    if name == "TranslateScreen":
        from mlxchat.ui.translate.screen import TranslateScreen

        return TranslateScreen
    raise AttributeError(name)


__all__ = ["TranslateApp", "TranslateScreen", "run_translate"]
