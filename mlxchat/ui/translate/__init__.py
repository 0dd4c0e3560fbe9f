"""The simultaneous-translation TUI: `run_translate` (for `mlxchat translate`), `TranslateApp`,
and `TranslateScreen` (also pushed from the chat for `/translate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlxchat.ui.translate.app import TranslateApp, run_translate
    from mlxchat.ui.translate.screen import TranslateScreen


def __getattr__(name: str) -> Any:
    """Import the app and the screen lazily so `import mlxchat.ui.translate` stays cheap."""
    if name == "run_translate":
        from mlxchat.ui.translate.app import run_translate

        return run_translate
    if name == "TranslateApp":
        from mlxchat.ui.translate.app import TranslateApp

        return TranslateApp
    if name == "TranslateScreen":
        from mlxchat.ui.translate.screen import TranslateScreen

        return TranslateScreen
    raise AttributeError(name)


__all__ = ["TranslateApp", "TranslateScreen", "run_translate"]
