"""`mlxchat translate` in the terminal: a small App around `TranslateScreen`, and `run_translate`.

The app takes its engine and (for tests) a translation factory as arguments, so tests can
run it on the real engine with a tiny model, or on scripted translations, with
``TranslateApp(engine, WaitKSettings(wait_k=3), model=None).run_test()``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from textual.theme import Theme

from mlxchat.config import Settings
from mlxchat.engine.contract import TranslateEngine
from mlxchat.translate.runner import TranslationFactory
from mlxchat.translate.settings import WaitKSettings
from mlxchat.ui.app_base import ThemedApp, run_app
from mlxchat.ui.translate.screen import TranslateScreen


class TranslateApp(ThemedApp):
    """The translate screen as an app of its own.

    Bindings:
        ctrl+q: Quit (Textual's own binding).
    """

    TITLE = "mlxchat translate"

    def __init__(
        self,
        engine: TranslateEngine,
        settings: WaitKSettings,
        *,
        model: str | None,
        source: str | None = None,
        wpm: float = 150.0,
        theme: str | None = None,
        themes: Sequence[Theme] | None = None,
        theme_errors: Sequence[str] = (),
        factory: TranslationFactory | None = None,
        base: Settings | None = None,
    ) -> None:
        """Create the app.

        Args:
            engine: The `Engine` the translations run on.
            settings: The wait-k settings to start with.
            model: The model to load (None: the one the engine has loaded).
            source: A text to play back; None lets the user type.
            wpm: Playback speed in words per minute.
            theme: The theme's name (None or unknown: the first theme file's).
            themes: Themes to register; None loads the built-in and user theme files.
            theme_errors: Problems with theme files, shown once (with `themes` given).
            factory: Makes the translations (default: `LiveTranslation` on `engine`).
            base: The config file's `Settings` (the sampling defaults).
        """
        super().__init__(theme=theme or "", themes=themes, theme_errors=theme_errors)
        self.base = base
        self.engine = engine
        self.settings = settings
        self.model = model
        self.source = source
        self.wpm = wpm
        self.factory = factory

    def on_mount(self) -> None:
        """Register the themes, apply the chosen one, open the translate screen."""
        self.install_themes()
        self.push_screen(
            TranslateScreen(
                self.engine,
                self.settings,
                model=self.model,
                source=self.source,
                wpm=self.wpm,
                standalone=True,
                factory=self.factory,
                base=self.base,
            )
        )

    @property
    def translate_screen(self) -> TranslateScreen:
        """The translate screen."""
        for screen in self.screen_stack:
            if isinstance(screen, TranslateScreen):
                return screen
        raise LookupError("the translate screen is not open")


def attach_terminal_input() -> bool:
    """When stdin is not a terminal (the source was piped in), read keys from /dev/tty.

    Returns:
        Whether keys can be read.
    """
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            return True
    except ValueError:  # stdin closed
        pass
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False
    os.dup2(fd, 0)
    os.close(fd)
    return True


def run_translate(
    model: str,
    settings: WaitKSettings,
    *,
    source: str | None,
    wpm: float,
    theme: str | None = None,
    api_key: str | None = None,
) -> int:
    """Run the translate TUI until the user quits; returns the exit code.

    Args:
        model: The model to load ("demo", a Hugging Face id, a folder or a .gguf file).
        settings: The wait-k settings to start with.
        source: A text to play back; None lets the user type the source.
        wpm: Playback speed in words per minute.
        theme: The theme (None: the one in the settings file).
        api_key: The key of a remote server (`-m http://…/v1`).
    """
    from mlxchat.config import ConfigError, Settings, load_settings

    try:
        app_settings = load_settings()
    except ConfigError:
        app_settings = Settings()
    wanted_theme = theme or app_settings.theme
    return run_app(
        lambda engine: TranslateApp(
            engine,
            settings,
            model=model,
            source=source,
            wpm=wpm,
            theme=wanted_theme,
            base=app_settings,
        ),
        model,
        app_settings,
        api_key=api_key,
    )
