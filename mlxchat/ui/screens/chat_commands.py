"""What the chat screen's slash-commands do: `ChatCommands`, a `commands.CommandContext`.

The base class of `ChatScreen`: the commands, the palette and the F-keys act through these
methods on the screen's chat state, history, conversation view, prompt and status bar.
`commands.py` parses and checks the arguments before any of them runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.screen import Screen

from mlxchat.engine.types import Stats
from mlxchat.text import sanitize
from mlxchat.ui.commands import Command, CommandError
from mlxchat.ui.display import safe_filename, stats_summary
from mlxchat.ui.screens.help import HelpScreen
from mlxchat.ui.screens.history import HistoryScreen
from mlxchat.ui.screens.models import ModelChoice, ModelPicker, choices_from
from mlxchat.ui.widgets.message import MessageRecord

if TYPE_CHECKING:
    from mlxchat.engine.contract import ChatEngine
    from mlxchat.store.history import History
    from mlxchat.ui.chat_state import ChatState
    from mlxchat.ui.screens.chat import ListModels
    from mlxchat.ui.widgets.conversation import ConversationView
    from mlxchat.ui.widgets.prompt import PromptInput
    from mlxchat.ui.widgets.status import StatusBar


UNANSWERED = "no answer — Ctrl+R to answer"
"""The note on a resumed chat's last question when its answer was never saved."""


class ChatCommands(Screen[None]):
    """The chat screen's commands (`ChatScreen` provides the rest)."""

    if TYPE_CHECKING:  # provided by ChatScreen
        engine: ChatEngine
        settings: Any
        history: History | None
        list_models: ListModels | None
        chat: ChatState
        _model_names: list[str] | None

        @property
        def conversation(self) -> ConversationView: ...
        @property
        def prompt(self) -> PromptInput: ...
        @property
        def status(self) -> StatusBar: ...
        def load_model(self, name: str, *, announce: bool = True) -> None: ...
        async def start_answer(self) -> None: ...
        def count_context(self) -> None: ...
        async def stop_and_wait(self, timeout: float = 3.0) -> None: ...
        async def run_command(self, text: str) -> bool: ...
        def _busy(self) -> bool: ...
        def _history_problem(self, problem: str | None) -> None: ...
        def default_sampling(self) -> Any: ...

    def theme_names(self) -> Sequence[str]:
        """Registered theme names."""
        return sorted(self.app.available_themes)

    def model_names(self) -> Sequence[str]:
        """Local model names (read once, then cached; /models reads them again)."""
        if self._model_names is None:
            try:
                self._model_names = [c.name for c in self._read_models()]
            except Exception:
                self._model_names = []
        return self._model_names

    def _read_models(self) -> list[ModelChoice]:
        if self.list_models is None:
            return []
        return choices_from(self.list_models())

    def show_help(self) -> None:
        """Open the help screen."""
        self.app.push_screen(HelpScreen(self.chat.params))

    def open_translate(self, wait_k: int | None) -> None:
        """/translate [K]: open the simultaneous-translation screen on the chat's model."""
        from mlxchat.translate.settings import WaitKSettings
        from mlxchat.ui.translate.screen import TranslateScreen

        if self._busy():
            return
        settings = WaitKSettings() if wait_k is None else WaitKSettings(wait_k=wait_k)
        self.app.push_screen(TranslateScreen(self.engine, settings))

    def switch_model(self, name: str) -> None:
        """Load another model; the conversation continues on it."""
        self.load_model(name)

    async def pick_model(self) -> None:
        """Open the model picker (reading the local models in a thread)."""
        error = ""
        try:
            choices = await asyncio.to_thread(self._read_models)
        except Exception as failure:
            choices, error = [], f"Cannot list the local models: {failure}"
        self._model_names = [c.name for c in choices]

        def chosen(name: str | None) -> None:
            if name:
                self.load_model(name)

        self.app.push_screen(ModelPicker(choices, self.status.model, error), chosen)

    def set_system_prompt(self, text: str | None) -> None:
        """Set ("-" removes) the system prompt, or show it when `text` is None."""
        if text is None:
            shown = sanitize(self.chat.system_prompt) or "(none)"
            self.notify(shown, title="System prompt", markup=False)
            return
        self.chat.system_prompt = "" if text.strip() == "-" else text
        self._history_problem(self.chat.save_settings())
        self.count_context()
        shown = "removed" if text.strip() == "-" else sanitize(text)
        self.notify(shown, title="System prompt", markup=False)

    def set_sampling(self, name: str, value: Any) -> None:
        """Change one sampling setting for the next answers."""
        self.chat.set_params(**{name: value})
        self._history_problem(self.chat.save_settings())
        shown = "off" if value is None else f"{value:g}" if isinstance(value, float) else value
        self.notify(f"{name.replace('_', '-')} = {shown}", title="Setting")

    async def retry(self) -> None:
        """Write the last answer again (the engine reuses the cached prompt)."""
        if self._busy():
            return
        if not self.chat.turns:
            raise CommandError("Nothing to retry yet — send a message first.")
        dropped, problem = self.chat.drop_last_answer()
        self._history_problem(problem)
        if not dropped and self.chat.turns[-1].role != "user":
            raise CommandError("Nothing to retry yet — send a message first.")
        views = self.conversation.messages
        if views and views[-1].kind == "assistant":  # the answer, or a failed one
            await views[-1].remove()
        elif views and views[-1].footer == UNANSWERED:
            views[-1].set_footer("")
        await self.start_answer()

    async def clear_chat(self) -> None:
        """Clear the screen and the context; the next message starts a new saved chat."""
        if self._busy():
            return
        old = self.chat.restart()
        await self._after_restart(old)
        self.notify("Chat cleared.", title="Clear")

    async def new_chat(self) -> None:
        """Start a new chat with the default settings."""
        if self._busy():
            return
        old = self.chat.restart(self.settings.system_prompt, self.default_sampling())
        await self._after_restart(old)
        self.notify("New chat.", title="New")

    async def _after_restart(self, old_session: str) -> None:
        await self.conversation.clear()
        self.status.set_stats(None)
        self.count_context()
        self.status.refresh()
        with contextlib.suppress(Exception):
            await self.engine.reset_session(old_session)

    def browse_history(self) -> None:
        """Open the saved-chats screen; choosing one resumes it."""
        if self.history is None:
            raise CommandError("History is off in this session.")
        if self._busy():
            return

        def search(text: str) -> Any:
            return self.history.list_conversations(limit=200, search=text or None)

        def chosen(conversation_id: int | None) -> None:
            if conversation_id is not None:
                self.run_worker(self.resume_chat(conversation_id), exit_on_error=False)

        self.app.push_screen(HistoryScreen(search, self.chat.conversation_id), chosen)

    async def resume_chat(self, conversation_id: int | str) -> bool:
        """Show a saved chat and continue it (its system prompt and settings come back).

        Args:
            conversation_id: Its id, or "latest" for the most recently updated chat.
        """
        if self.history is None:
            return False
        try:
            if conversation_id == "latest":
                newest = self.history.list_conversations(limit=1)
                if not newest:
                    self.notify("There is no saved chat to continue yet.", title="History")
                    return False
                conversation_id = newest[0].id
            conversation = self.history.get_conversation(int(conversation_id))
        except Exception as error:
            self.notify(str(error), title="History", severity="error")
            return False
        if conversation is None:
            self.notify(
                f"There is no saved chat {conversation_id}.", title="History", severity="error"
            )
            return False
        old = self.chat.resume(conversation)
        await self._after_restart(old)
        records = []
        for message in conversation.messages:
            if message.role == "user":
                records.append(MessageRecord("user", message.content))
            elif message.role == "assistant":
                records.append(
                    MessageRecord(
                        "assistant",
                        message.content,
                        label=message.model or "assistant",
                        footer=_saved_footer(message.finish_reason, message.stats, message.model),
                        stopped=message.finish_reason == "cancelled",
                    )
                )
        if records and records[-1].kind == "user":  # its answer was lost (e.g. to a kill)
            records[-1] = replace(records[-1], footer=UNANSWERED, stopped=True)
        await self.conversation.load(records)
        self.conversation.follow()
        self.prompt.set_recall([t.content for t in self.chat.turns if t.role == "user"])
        title = sanitize(conversation.title, one_line=True) or "(untitled)"
        self.notify(title, title="Resumed chat", markup=False)
        return True

    def export_chat(self, path: str | None) -> None:
        """Save the chat as Markdown (default: ./<title>.md, never overwriting)."""
        if self.history is None or self.chat.conversation_id is None:
            raise CommandError("Nothing to export yet — this chat has no saved messages.")
        try:
            text = self.history.export_markdown(self.chat.conversation_id)
            title = self.history.get_conversation(self.chat.conversation_id).title
        except Exception as error:
            self.notify(str(error), title="Export", severity="error")
            return
        target = Path(path).expanduser() if path else _free_path(Path.cwd(), safe_filename(title))
        if target.is_dir():
            target = _free_path(target, safe_filename(title))
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as error:
            self.notify(
                f"Cannot write {target}: {error.strerror or error}",
                title="Export",
                severity="error",
            )
            return
        self.notify(str(target), title="Exported", markup=False)

    def copy_answer(self) -> None:
        """Copy the last answer to the clipboard."""
        answer = self.chat.last_answer
        if not answer:
            raise CommandError("There is no answer to copy yet.")
        self.app.copy_to_clipboard(answer)
        self.notify(f"Copied the last answer ({len(answer):,} characters).", title="Copy")

    def set_theme(self, name: str | None) -> None:
        """Switch the theme, or list the themes when `name` is None."""
        if name is None:
            names = ", ".join(self.theme_names())
            self.notify(f"Now: {self.app.theme}. Available: {names}", title="Themes")
            return
        self.app.theme = name
        self.notify(name, title="Theme")

    async def quit_app(self) -> None:
        """Stop (and save) an answer being written, then leave."""
        await self.stop_and_wait()
        self.app.exit(0)

    def palette_command(self, command: Command) -> None:
        """Run a command from the palette, or start typing it when it needs an argument."""
        if command.needs_argument:
            self.prompt.reset(f"/{command.name} ")
            self.prompt.focus()
            return
        self.run_worker(self.run_command(f"/{command.name}"), group="command", exit_on_error=False)


def _saved_footer(finish: str | None, stats: Stats | None, model: str | None) -> str:
    summary = stats_summary(stats)  # the label names the model
    if finish == "cancelled":
        return f"stopped · {summary}" if summary else "stopped"
    if finish == "length":
        return f"cut at the token limit · {summary}" if summary else "cut at the token limit"
    return summary


def _free_path(folder: Path, stem: str) -> Path:
    """`folder/stem.md`, or `stem-2.md`, … when taken."""
    candidate = folder / f"{stem}.md"
    number = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{number}.md"
        number += 1
    return candidate
