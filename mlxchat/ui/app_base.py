"""What the chat and translate apps share: `ThemedApp` (theme files, the paste-safe driver)
and `run_app` (make the engine, run the app, cancel the engine, return the exit code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual import events
from textual.app import App
from textual.driver import Driver
from textual.theme import Theme

from mlxchat.ui.key_order import take_in_order
from mlxchat.ui.textual_compat import safe_input_driver
from mlxchat.ui.themes import default_themes, install_themes


class ThemedApp(App[int]):
    """An app with the built-in and user themes and an input loop that takes pastes as text."""

    def __init__(
        self, *, theme: str = "", themes: Sequence[Theme] | None, theme_errors: Sequence[str]
    ) -> None:
        """Create the app.

        Args:
            theme: The theme's name (empty or unknown: the first theme file's).
            themes: Themes to register; None loads the built-in and user theme files.
            theme_errors: Problems with theme files, shown once (with `themes` given).
        """
        super().__init__()
        self.wanted_theme = theme
        if themes is None:
            loaded, errors = default_themes()
            self._themes, self._theme_errors = list(loaded), list(errors)
        else:
            self._themes, self._theme_errors = list(themes), list(theme_errors)

    async def on_event(self, event: events.Event) -> None:
        """A key or a paste from the terminal goes in order to a widget that takes keys
        so (`key_order`); everything else as Textual does."""
        from_terminal = isinstance(event, events.Key | events.Paste) and not event.is_forwarded
        if from_terminal and await take_in_order(self, event):  # type: ignore[arg-type]
            return
        await super().on_event(event)

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver, with an input loop that takes pasted bytes as text."""
        return safe_input_driver(super().get_driver_class())

    def install_themes(self) -> None:
        """Register the themes, apply the wanted one, report bad theme files."""
        install_themes(self, self._themes, self._theme_errors, self.wanted_theme)


def run_app(
    build: Callable[[Any], ThemedApp],
    model: str,
    settings: Any,
    *,
    api_key: str | None = None,
) -> int:
    """Make the engine for `model`, run `build(engine)` until the user quits, then close the
    engine (its work cancelled and waited for); returns the exit code.

    Args:
        build: Makes the app around the engine.
        model: The model the engine starts with (a name, a path, or a server's URL).
        settings: The `Settings` (progress_interval, fast_cpu).
        api_key: The key of a remote server (`-m http://…/v1`).
    """
    from mlxchat.engine.factory import make_engine

    engine = make_engine(
        model,
        api_key=api_key,
        progress_interval=settings.progress_interval,
        fast_cpu=settings.fast_cpu,
        prompt_cache_bytes=settings.prompt_cache_bytes,
        prompt_cache_disk_bytes=settings.prompt_cache_disk_bytes,
        speculative=settings.speculative,
        draft_model=settings.draft_model,
    )
    app = build(engine)
    try:
        result = app.run()
    finally:
        engine.close()  # stops and waits for the engine's work: exiting inside MLX aborts
    code = app.return_code
    if code is None:
        code = result if isinstance(result, int) else 0
    return code
