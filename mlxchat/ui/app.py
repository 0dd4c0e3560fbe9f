"""The mlxchat Textual app and `run_chat`, the entry point the CLI calls for bare `mlxchat`.

The app takes its engine, settings and history as arguments, so tests can hand it a
scripted fake engine (exact timing) or the real engine on a tiny model:

    app = ChatApp(engine, settings, history)
    async with app.run_test() as pilot:
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual.app import App
from textual.theme import Theme

from mlxchat.engine.contract import ChatEngine
from mlxchat.ui.app_base import ThemedApp, run_app
from mlxchat.ui.palette import SlashCommandProvider
from mlxchat.ui.remember import remember
from mlxchat.ui.screens.chat import ChatScreen
from mlxchat.ui.screens.models import ListModels


def default_list_models() -> list[Any]:
    """`mlxchat.models.loader.list_local_models`, imported when first asked (it pulls in
    numpy and the model loaders, which the first paint does not need); none without it."""
    try:
        from mlxchat.models.loader import list_local_models
    except ImportError:
        return []
    return list(list_local_models())


class ChatApp(ThemedApp):
    """The chat application: one `ChatScreen`, themes, notices, the command palette.

    Bindings:
        ctrl+q: Quit (Textual's own binding).
        ctrl+p: Command palette (Textual's own binding; lists the slash-commands too).
    """

    CSS_PATH = "app.tcss"
    TITLE = "mlxchat"
    COMMANDS = App.COMMANDS | {SlashCommandProvider}

    def __init__(
        self,
        engine: ChatEngine,
        settings: Any,
        history: Any | None = None,
        *,
        themes: Sequence[Theme] | None = None,
        theme_errors: Sequence[str] = (),
        list_models: ListModels | None = None,
        resume: int | str | None = None,
    ) -> None:
        """Create the app.

        Args:
            engine: The `Engine` (or a fake with the same async API).
            settings: The `Settings`.
            history: The `History` to save chats to (None: nothing is saved).
            themes: Themes to register; None loads the built-in and user theme files.
            theme_errors: Problems with theme files, shown once (with `themes` given).
            list_models: Lists local models (None: `models.loader.list_local_models`).
            resume: The id of a saved chat to open, or "latest" for the newest one.
        """
        super().__init__(
            theme=getattr(settings, "theme", "") or "", themes=themes, theme_errors=theme_errors
        )
        self.engine = engine
        self.settings = settings
        self.history = history
        self._list_models = list_models if list_models is not None else default_list_models
        self._resume = resume

    def on_mount(self) -> None:
        """Register themes, apply the chosen one, show notices, open the chat screen."""
        self.install_themes()
        self.theme_changed_signal.subscribe(self, lambda theme: remember(self, "theme", theme.name))
        notice = getattr(self.history, "notice", None)
        if notice:
            self.notify(notice, title="History", severity="warning", timeout=15, markup=False)
        self.push_screen(
            ChatScreen(
                self.engine,
                self.settings,
                self.history,
                list_models=self._list_models,
                resume=self._resume,
            )
        )

    @property
    def chat_screen(self) -> ChatScreen:
        """The chat screen (wherever it is in the stack)."""
        for screen in self.screen_stack:
            if isinstance(screen, ChatScreen):
                return screen
        raise LookupError("the chat screen is not open")

    async def action_quit(self) -> None:
        """Ctrl+Q: save the answers being written (as stopped; those in the background too),
        then leave."""
        with contextlib.suppress(LookupError):
            await self.chat_screen.stop_and_wait()
        self.exit(0)


def run_chat(
    settings: Any,
    *,
    data_dir: Path | None = None,
    resume: int | str | None = None,
    api_key: str | None = None,
) -> int:
    """Run the chat TUI until the user quits; returns the exit code.

    Args:
        settings: The `Settings` (model, theme, sampling, …).
        data_dir: Where the history database lives (default: `locations.data_dir()`).
        resume: The id of a saved chat to continue, or "latest" for the newest one.
        api_key: The key of a remote server (`-m http://…/v1`).
    """
    from mlxchat import locations
    from mlxchat.store.history import HISTORY_FILE, History

    folder = Path(data_dir) if data_dir is not None else locations.data_dir()
    try:
        history: Any = History.open(folder / HISTORY_FILE)
    except Exception as error:  # the store promises not to raise; be safe anyway
        history = History.in_memory(f"history is not saved: {error}")
    try:
        return run_app(
            lambda engine: ChatApp(engine, settings, history, resume=resume),
            settings.model,
            settings,
            api_key=api_key,
        )
    finally:
        history.close()
