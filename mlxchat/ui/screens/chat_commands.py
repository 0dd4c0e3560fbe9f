"""What the chat screen's slash-commands do: `ChatCommands`, a `commands.CommandContext`.

The chat screen owns one and hands it itself as a `ChatHost`: the commands, the palette and
the F-keys act through it on the screen's chat state, history, conversation view, prompt and
status bar. `commands.py` parses and checks the arguments before any of them runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from markdown_it import MarkdownIt

from mlxchat.engine.types import SamplingParams
from mlxchat.locations import data_dir
from mlxchat.text import sanitize
from mlxchat.ui.commands import CommandError
from mlxchat.ui.display import answer_footer, safe_filename, stats_summary
from mlxchat.ui.screens.help import HelpScreen
from mlxchat.ui.screens.history import HistoryScreen
from mlxchat.ui.screens.models import ListModels, ModelChoice, ModelPicker, choices_from
from mlxchat.ui.tools.blocks import result_record
from mlxchat.ui.unfenced_code import TOKEN as UNFENCED_CODE
from mlxchat.ui.unfenced_code import add_unfenced_code
from mlxchat.ui.widgets.message import Message, MessageRecord
from mlxchat.ui.widgets.thinking import saved_thinking

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel

    from mlxchat.engine.contract import ChatEngine
    from mlxchat.store.history import History
    from mlxchat.ui.answer import Answer
    from mlxchat.ui.chat_state import ChatState
    from mlxchat.ui.tools.controller import ChatTools
    from mlxchat.ui.widgets.prompt import PromptInput
    from mlxchat.ui.widgets.status import StatusBar
    from mlxchat.ui.widgets.transcript import Transcript


UNANSWERED = "no answer — Ctrl+R to answer"
"""The note on a resumed chat's last question when its answer was never saved."""


class ChatHost(Protocol):
    """What the commands act on: the chat screen's state, widgets and answer loop."""

    engine: ChatEngine
    settings: Any
    history: History | None
    chat: ChatState
    tools: ChatTools

    @property
    def app(self) -> App[Any]: ...
    @property
    def conversation(self) -> Transcript: ...
    @property
    def prompt(self) -> PromptInput: ...
    @property
    def status(self) -> StatusBar: ...
    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...
    def run_worker(self, work: Any, *, exit_on_error: bool = True) -> Any: ...
    def load_model(self, name: str, *, announce: bool = True) -> None: ...
    async def start_answer(self) -> None: ...
    async def answer_to_background(self) -> bool: ...
    def running_answer(self, conversation_id: int) -> Answer | None: ...
    def background_chats(self) -> set[int]: ...
    def count_context(self) -> None: ...
    async def stop_and_wait(self, timeout: float = 3.0) -> None: ...
    def busy(self) -> bool: ...
    def history_problem(self, problem: str | None) -> None: ...
    def default_sampling(self) -> SamplingParams: ...
    def find(self, text: str) -> int: ...
    def message_of(self, turn: int) -> Message | None: ...
    def start_edit(self, message: Message, turn: int) -> None: ...
    async def regenerate(self, turn: int) -> None: ...


class ChatCommands:
    """The chat screen's commands, acting on its `ChatHost`."""

    def __init__(self, screen: ChatHost, list_models: ListModels | None = None) -> None:
        """Create the commands of `screen`.

        Args:
            screen: The chat screen they act on.
            list_models: Lists local models for /models and completion.
        """
        self.screen = screen
        self.list_models = list_models
        self._model_names: list[str] | None = None

    def theme_names(self) -> Sequence[str]:
        """Registered theme names."""
        return sorted(self.screen.app.available_themes)

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
        self.screen.app.push_screen(HelpScreen(self.screen.chat.params))

    def open_translate(self, wait_k: int | None) -> None:
        """/translate [K]: open the simultaneous-translation screen on the chat's model."""
        from mlxchat.translate.settings import WaitKSettings
        from mlxchat.ui.translate.screen import TranslateScreen

        if self.screen.busy():
            return
        settings = WaitKSettings.from_values({} if wait_k is None else {"wait_k": wait_k})
        base = self.screen.settings
        self.screen.app.push_screen(TranslateScreen(self.screen.engine, settings, base=base))

    def switch_model(self, name: str) -> None:
        """Load another model; the conversation continues on it."""
        self.screen.load_model(name)

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
                self.screen.load_model(name)

        self.screen.app.push_screen(ModelPicker(choices, self.screen.status.model, error), chosen)

    def set_system_prompt(self, text: str | None) -> None:
        """Set ("-" removes) the system prompt, or show it when `text` is None."""
        if text is None:
            shown = sanitize(self.screen.chat.system_prompt) or "(none)"
            self.screen.notify(shown, title="System prompt", markup=False)
            return
        self.screen.chat.system_prompt = "" if text.strip() == "-" else text
        self.screen.history_problem(self.screen.chat.save_settings())
        self.screen.count_context()
        shown = "removed" if text.strip() == "-" else sanitize(text)
        self.screen.notify(shown, title="System prompt", markup=False)

    def set_sampling(self, name: str, value: Any) -> None:
        """Change one sampling setting for the next answers."""
        self.screen.chat.set_params(**{name: value})
        self.screen.history_problem(self.screen.chat.save_settings())
        shown = "off" if value is None else f"{value:g}" if isinstance(value, float) else value
        self.screen.notify(f"{name.replace('_', '-')} = {shown}", title="Setting")

    def set_thinking(self, name: str, value: Any) -> None:
        """Change a thinking setting (enable_thinking, thinking_budget) for the next answers."""
        from mlxchat.ui.thinking_settings import describe_thinking

        self.screen.settings = replace(self.screen.settings, **{name: value})
        self.screen.notify(describe_thinking(name, value), title="Setting")

    async def retry(self) -> None:
        """Write the last answer again (the engine reuses the cached prompt); a saved one
        stays as the other version (← → on it switch)."""
        if self.screen.busy():
            return
        turns = self.screen.chat.turns
        if not turns:
            raise CommandError("Nothing to retry yet — send a message first.")
        if turns[-1].role == "assistant" and turns[-1].message_id is not None:
            await self.screen.regenerate(len(turns) - 1)
            return
        dropped, problem = self.screen.chat.drop_last_answer()
        self.screen.history_problem(problem)
        if not dropped and self.screen.chat.turns[-1].role != "user":
            raise CommandError("Nothing to retry yet — send a message first.")
        views = self.screen.conversation.messages
        if views and views[-1].kind == "assistant":  # the answer, or a failed one
            self.screen.conversation.remove_messages(views[-1])
        elif views and views[-1].footer == UNANSWERED:
            views[-1].set_footer("")
        await self.screen.start_answer()

    async def clear_chat(self) -> None:
        """Clear the screen and the context; the next message starts a new saved chat (an
        answer being written goes on in the background, saved to the chat it was asked in)."""
        await self._switch_to(self.screen.chat.started_over())
        self.screen.notify("Chat cleared.", title="Clear")

    async def new_chat(self) -> None:
        """Start a new chat with the default settings (an answer being written goes on in
        the background, saved to the chat it was asked in)."""
        fresh = self.screen.chat.started_over(
            self.screen.settings.system_prompt, self.screen.default_sampling()
        )
        await self._switch_to(fresh)
        self.screen.notify("New chat.", title="New")

    async def _switch_to(self, chat: ChatState) -> None:
        """Put `chat` on screen in place of the current one (left as it is)."""
        old = self.screen.chat
        still_answered = await self.screen.answer_to_background()
        self.screen.chat = chat
        self.screen.conversation.clear()
        self.screen.status.set_stats(None)
        self.screen.count_context()
        self.screen.status.refresh()
        if not still_answered:  # else the answer frees it when it ends
            with contextlib.suppress(Exception):
                await self.screen.engine.reset_session(old.session)

    def browse_history(self) -> None:
        """Open the saved-chats screen; choosing one resumes it."""
        history = self.screen.history
        if history is None:
            raise CommandError("History is off in this session.")

        def search(text: str) -> Any:
            return history.list_conversations(limit=200, search=text or None)

        def chosen(conversation_id: int | None) -> None:
            if conversation_id is not None:
                self.screen.run_worker(self.resume_chat(conversation_id), exit_on_error=False)

        answering = self.screen.background_chats()
        screen = HistoryScreen(search, self.screen.chat.conversation_id, answering=answering)
        self.screen.app.push_screen(screen, chosen)

    async def resume_chat(self, conversation_id: int | str) -> bool:
        """Show a saved chat and continue it (its system prompt and settings come back).

        Args:
            conversation_id: Its id, or "latest" for the most recently updated chat.
        """
        if self.screen.history is None:
            return False
        try:
            if conversation_id == "latest":
                newest = self.screen.history.list_conversations(limit=1)
                if not newest:
                    self.screen.notify("There is no saved chat to continue yet.", title="History")
                    return False
                conversation_id = newest[0].id
            conversation = self.screen.history.get_conversation(int(conversation_id))
        except Exception as error:
            self.screen.notify(str(error), title="History", severity="error")
            return False
        if conversation is None:
            self.screen.notify(
                f"There is no saved chat {conversation_id}.", title="History", severity="error"
            )
            return False
        running = self.screen.running_answer(conversation.id)
        if running is not None:  # it is opened once its answer is saved, not before
            self.screen.notify(
                "This chat's answer is still being written (Esc stops it)."
                if running.shown
                else "That chat's answer is still being written in the background; open it"
                " again when it ends (a notice says so).",
                title="Not yet",
                severity="warning",
            )
            return False
        await self._switch_to(self.screen.chat.resumed(conversation))
        self.show_branch(conversation.messages)
        self.screen.prompt.set_recall(
            [t.content for t in self.screen.chat.turns if t.role == "user"]
        )
        title = sanitize(conversation.title, one_line=True) or "(untitled)"
        self.screen.notify(title, title="Resumed chat", markup=False)
        return True

    def show_branch(
        self, messages: Sequence[Any] | None = None, *, answering: bool = False
    ) -> None:
        """Show the chat's branch (its saved `messages`, default: read again): a message with
        other versions says which one it is in its header ("you · 2/3"); a last question
        says it has no answer unless one is about to be written (`answering`)."""
        chat = self.screen.chat
        if messages is None:
            conversation = None
            if self.screen.history is not None and chat.conversation_id is not None:
                with contextlib.suppress(Exception):
                    conversation = self.screen.history.get_conversation(chat.conversation_id)
            messages = conversation.messages if conversation is not None else chat.turns
        records: list[MessageRecord] = []
        turn = 0
        for message in messages:
            if message.role not in ("user", "assistant", "tool"):
                continue
            position, count = chat.alternative_position(turn) if turn < len(chat.turns) else (1, 1)
            version = f" · {position}/{count}" if count > 1 else ""
            turn += 1
            if message.role == "user":
                records.append(MessageRecord("user", message.content, label=f"you{version}"))
                continue
            if message.role == "tool":
                records.append(result_record(getattr(message, "tool_name", None), message.content))
                continue
            reason = getattr(message, "finish_reason", None)
            calls = tuple(getattr(message, "tool_calls", ()) or ())
            records.append(
                MessageRecord(
                    "assistant",
                    self.screen.tools.answer_text(message.content, calls),
                    label=(getattr(message, "model", None) or "assistant") + version,
                    footer=answer_footer(reason, stats_summary(getattr(message, "stats", None))),
                    stopped=reason == "cancelled",
                    thinking=saved_thinking(getattr(message, "reasoning", "")),
                )
            )
        if records and records[-1].kind == "user" and not answering:  # its answer was lost
            records[-1] = replace(records[-1], footer=UNANSWERED, stopped=True)
        self.screen.conversation.clear()
        self.screen.conversation.load(records)
        self.screen.conversation.follow()

    def export_chat(self, path: str | None) -> None:
        """Save the chat as Markdown (default: <data dir>/exports/<title>.md, never
        overwriting; a relative PATH is from the current directory)."""
        history, conversation_id = self.screen.history, self.screen.chat.conversation_id
        if history is None or conversation_id is None:
            raise CommandError("Nothing to export yet — this chat has no saved messages.")
        try:
            text = history.export_markdown(conversation_id)
            title = history.get_conversation(conversation_id).title  # type: ignore[union-attr]
        except Exception as error:
            self.screen.notify(str(error), title="Export", severity="error")
            return
        if path:
            target = Path(path).expanduser().absolute()
        else:
            exports = data_dir() / "exports"
            try:
                exports.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise CommandError(
                    f"Cannot create {exports}: {error.strerror or error}; give a PATH."
                ) from None
            target = _free_path(exports, safe_filename(title))
        if target.is_dir():
            target = _free_path(target, safe_filename(title))
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as error:
            self.screen.notify(
                f"Cannot write {target}: {error.strerror or error}",
                title="Export",
                severity="error",
            )
            return
        self.screen.notify(f"Wrote {target}", title="Exported", markup=False)

    def copy_answer(self) -> None:
        """Copy the last answer to the clipboard."""
        answer = self.screen.chat.last_answer
        if not answer:
            raise CommandError("There is no answer to copy yet.")
        self.to_clipboard(answer, "the last answer")

    def copy_code(self, number: int | None) -> None:
        """Copy the `number`-th (1-based; None: the last) code block of the last answer."""
        answer = self.screen.chat.last_answer
        if not answer:
            raise CommandError("There is no answer to copy code from yet.")
        blocks = code_blocks(answer)
        if not blocks:
            raise CommandError("The last answer has no code block.")
        if number is not None and number > len(blocks):
            count = "1 code block" if len(blocks) == 1 else f"{len(blocks)} code blocks"
            raise CommandError(f"The last answer has {count}, not {number}.")
        number = number or len(blocks)
        self.to_clipboard(blocks[number - 1], f"code block {number} of {len(blocks)}")

    def to_clipboard(self, text: str, what: str) -> None:
        """Send `text` to the terminal's clipboard (OSC 52) and say so, honestly."""
        self.screen.app.copy_to_clipboard(text)
        notice = (
            f"Sent {what} ({len(text):,} characters) to the terminal's clipboard (OSC 52);"
            " some terminals ignore it."
        )
        if os.environ.get("TMUX") and tmux_option("set-clipboard") != "on":
            notice += " In tmux it arrives only with: set -g set-clipboard on"
        self.screen.notify(notice, title="Copy", markup=False)

    def edit_message(self, number: int | None) -> None:
        """/edit [N]: your N-th message of the chat shown (default: the last) goes back into
        the prompt; sending it starts a new branch from there."""
        if self.screen.busy():
            return
        questions = [i for i, t in enumerate(self.screen.chat.turns) if t.role == "user"]
        if not questions:
            raise CommandError("Nothing to edit yet — send a message first.")
        if number is not None and number > len(questions):
            count = "1 message" if len(questions) == 1 else f"{len(questions)} messages"
            raise CommandError(f"This chat has {count} of yours, not {number}.")
        turn = questions[-1 if number is None else number - 1]
        message = self.screen.message_of(turn)
        if message is not None:  # after the command line is cleared from the prompt
            self.screen.app.call_later(self.screen.start_edit, message, turn)

    def find_text(self, text: str) -> None:
        """/find TEXT: highlight every place the transcript shows `text`; n and N move
        between them, Esc ends."""
        self.screen.find(text)

    def set_theme(self, name: str | None) -> None:
        """Switch the theme, or list the themes when `name` is None."""
        if name is None:
            names = ", ".join(self.theme_names())
            self.screen.notify(f"Now: {self.screen.app.theme}. Available: {names}", title="Themes")
            return
        self.screen.app.theme = name
        self.screen.notify(name, title="Theme")

    async def tools_command(self, switch: tuple[bool, str] | None) -> None:
        """/tools: list the servers and tools (in the chat); /tools on|off NAME."""
        tools = self.screen.tools
        if switch is None:
            await tools.toolbox.wait_ready(0.2)  # a server just started may be a moment away
            self.screen.conversation.add(Message("info", tools.listing(), label="tools"))
            self.screen.conversation.follow()
            return
        try:
            done = tools.switch(*switch)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.screen.notify(done, title="Tools", markup=False)

    async def call_tool(self, call: tuple[str, str]) -> None:
        """/tool NAME {json}: run a tool by hand; the call and result go into the chat."""
        if self.screen.busy():
            return
        try:
            await self.screen.tools.call_by_hand(*call)
        except ValueError as error:
            raise CommandError(f"{error} — usage: /tool NAME {{json arguments}}") from None

    async def quit_app(self) -> None:
        """Stop (and save) the answers being written, then leave."""
        await self.screen.stop_and_wait()
        self.screen.app.exit(0)


def code_blocks(markdown: str) -> list[str]:
    """The code blocks of `markdown` as the chat shows them (fenced, indented or unfenced),
    in order, without their fences and trailing newlines."""
    tokens = add_unfenced_code(MarkdownIt("gfm-like")).parse(markdown)
    kinds = ("fence", "code_block", UNFENCED_CODE)
    return [token.content.rstrip("\n") for token in tokens if token.type in kinds]


def _free_path(folder: Path, stem: str) -> Path:
    """`folder/stem.md`, or `stem-2.md`, … when taken."""
    candidate = folder / f"{stem}.md"
    number = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{number}.md"
        number += 1
    return candidate


def tmux_option(name: str) -> str | None:
    """The value of a global tmux option of the tmux this runs in (None: cannot tell)."""
    try:
        found = subprocess.run(
            ["tmux", "show-options", "-gv", name], capture_output=True, text=True, timeout=2
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() if found.returncode == 0 else None
