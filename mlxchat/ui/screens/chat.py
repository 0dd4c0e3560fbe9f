"""The chat screen: the conversation, the prompt, completion, the status bar and the footer.

It drives the engine: loads models in the background (a message sent meanwhile waits in the
engine's queue and then runs), streams answers token by token into the conversation view
(each an `Answer`, see `answer.py`), stops them on Esc, and runs the slash-commands (what
they do is in `chat_commands.py`). Leaving a chat while its answer is written (/new, /clear,
a resumed chat) does not wait: the answer goes on in the background and is saved to its own
chat when it ends, while the new chat takes messages (the engine answers both at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from typing import Any

from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import TextArea

from mlxchat.config import effective_sampling
from mlxchat.engine.contract import ChatEngine
from mlxchat.engine.types import LoadProgress, SamplingParams
from mlxchat.ui import commands
from mlxchat.ui.answer import Answer
from mlxchat.ui.chat_state import ChatState, Deletion
from mlxchat.ui.commands import Command, CommandError
from mlxchat.ui.messages import (
    AnswerFinished,
    CompletionAccept,
    CompletionDismiss,
    CompletionMove,
    ModelFailed,
    ModelReady,
    PromptSubmitted,
)
from mlxchat.ui.model_load import load_model
from mlxchat.ui.model_notice import show_base_model_notice, show_model_notice
from mlxchat.ui.remember import model_to_remember, remember
from mlxchat.ui.screens.chat_commands import ChatCommands, code_blocks
from mlxchat.ui.screens.models import ListModels
from mlxchat.ui.tools.controller import ChatTools
from mlxchat.ui.widgets.footer import FittingFooter
from mlxchat.ui.widgets.message import Message
from mlxchat.ui.widgets.prompt import PromptInput
from mlxchat.ui.widgets.status import StatusBar
from mlxchat.ui.widgets.streaming import StreamingMessage
from mlxchat.ui.widgets.suggestions import CompletionList
from mlxchat.ui.widgets.transcript import Transcript, TranscriptBar

BUSY_NOTICE_SECONDS = 5.0

CONFIRM_SECONDS = 5.0
"""How long a second `d` confirms a deletion the first one asked about."""
"""How long the "Busy" notice shows; it is not shown again meanwhile."""

WELCOME = (
    "[b]mlxchat[/b] — chat with a local model.\n\n"
    "Type a message and press [b]Enter[/b] (Shift+Enter or Ctrl+J for a new line).\n"
    "Type [b]/[/b] for commands, [b]F1[/b] for help, [b]Ctrl+P[/b] for the command palette."
)


class Pane(Vertical):
    """A container that draws nothing of its own (its children cover it): a repaint of the
    screen's rows costs it nothing."""

    BLANK = True


class ChatScreen(Screen[None]):
    """The main screen.

    Bindings:
        escape: Stop the answer being written (the partial answer stays, marked stopped);
            with none, end a find.
        f1: Help. f2: Pick a model. f3: Saved chats.
        ctrl+n: New chat. ctrl+r: Write the last answer again. ctrl+l: Clear the chat.
        ctrl+up: To the transcript (its message cursor; Tab and Shift+Tab go there too).
        ctrl+f: Find in the transcript (starts "/find " in the prompt).
        ctrl+c: Copy the text selected with the mouse (else Textual's own meaning).

    The transcript's keys act on the message under its cursor (`Transcript.Act`): copy it,
    copy a code block, edit a message of yours (`edit_and_resend` when sent), write an
    answer again (`regenerate`), delete one (`delete_turn`).

    Reactives:
        answering: Whether an answer is being written in the chat on screen (or waits for
            the model); answers in the background do not count.
    """

    BINDINGS = [
        Binding("escape", "stop", "Stop", show=True),
        Binding("f1", "help", "Help"),
        Binding("f2", "models", "Models"),
        Binding("f3", "history", "History"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("ctrl+l", "clear_chat", "Clear", show=False),
        Binding("ctrl+up", "to_transcript", "Messages", show=False),
        Binding("tab,shift+tab", "switch_focus", "Messages", show=False),
        Binding("ctrl+f", "find", "Find", show=False),
    ]

    answering: reactive[bool] = reactive(False)

    BLANK = True  # covered by its panes: nothing of its own to draw

    def __init__(
        self,
        engine: ChatEngine,
        settings: Any,
        history: Any | None = None,
        *,
        list_models: ListModels | None = None,
        resume: int | str | None = None,
    ) -> None:
        """Create the screen.

        Args:
            engine: The `Engine` (or anything with the same async API).
            settings: The `Settings` (model, system prompt, sampling, max_context, …).
            history: The `History` to save to, or None to save nothing.
            list_models: Lists local models for /models and completion.
            resume: The id of a saved chat to open at start, or "latest".
        """
        super().__init__()
        self.engine = engine
        self.settings = settings
        self.history = history
        self.resume_id = resume
        self.chat = ChatState(history, settings.system_prompt, self.default_sampling())
        self.answer: Answer | None = None
        """The answer being written in the chat on screen."""
        self._answers: set[Answer] = set()
        """Every answer being written: this chat's and those in the background."""
        self._loading = 0
        self._downloading = False
        """A load is downloading from the Hub (Esc or another /model cancels it)."""
        self.commands = ChatCommands(self, list_models)
        self.tools = ChatTools(self, settings)
        """The MCP servers and the loop of tool calls (ui/tools)."""
        self._dismissed_completion: str | None = None
        self._history_warned = False
        self._busy_notice_until = 0.0
        self._editing: int | None = None
        self._confirm_delete: tuple[int, Deletion, float] | None = None
        """The message `d` was pressed on, what it would delete, and until when a second
        `d` confirms it."""
        """The turn the prompt holds an edit of (sent with `edit_and_resend`), or None."""
        self._code_pick: tuple[int, int] = (0, 0)
        """(message serial, code block) last copied with the transcript's `y`."""

    # ----- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        """Transcript, its key line, completion list, prompt, status bar, footer."""
        # Textual repaints every widget whose container meets a changed row (from its
        # cache), so each part is in a pane of its own: a streamed line repaints the
        # transcript, the status bar's numbers the input area, never both
        with Pane(id="transcript-pane"):
            yield Transcript(WELCOME, id="conversation")
        with Pane(id="input-area"):
            yield TranscriptBar(id="transcript-bar")
            yield CompletionList(id="completions")
            yield PromptInput(placeholder="Message (/ for commands)", id="prompt")
            yield StatusBar(
                refresh_interval=max(0.1, min(0.5, float(self.settings.progress_interval))),
                id="status",
            )
            yield FittingFooter()

    @property
    def conversation(self) -> Transcript:
        """The transcript (every message)."""
        return self.query_one(Transcript)

    @property
    def prompt(self) -> PromptInput:
        """The prompt."""
        return self.query_one(PromptInput)

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.query_one(StatusBar)

    @property
    def completion(self) -> CompletionList:
        """The completion list."""
        return self.query_one(CompletionList)

    def watch_answering(self, answering: bool) -> None:
        """A steady prompt cursor while an answer streams: no repaints of its own."""
        if self.is_mounted:
            self.prompt.cursor_blink = not answering

    async def on_mount(self) -> None:
        """Focus the prompt, start loading the model, open a chat to resume."""
        self.conversation.bar = self.query_one(TranscriptBar)
        self.conversation.back_to = self.prompt
        self.prompt.focus()
        info = getattr(self.engine, "model_info", None)
        if info is not None:
            self.chat.model = info.name
            self.status.set_model(info.name, info.context_length)
            show_model_notice(self.app, info)
            show_base_model_notice(self.app, info)
        if self.settings.model and (info is None or info.name != self.settings.model):
            self.load_model(self.settings.model, announce=False)
        elif not self.settings.model and info is None:
            self.status.set_state("idle", "no model — /model NAME or F2")
        if self.resume_id is not None:
            await self.commands.resume_chat(self.resume_id)
        self.tools.start()  # in the background: a slow server never delays the first prompt

    async def on_unmount(self) -> None:
        """Stop the tool servers."""
        await self.tools.close()

    # ----- models ---------------------------------------------------------------------------
    def default_sampling(self) -> SamplingParams:
        """The sampling defaults for the loaded model: the user's choices (flags and
        config.toml), else the model's generation_config.json, else the built-in ones."""
        info = getattr(self.engine, "model_info", None)
        return effective_sampling(self.settings, info.sampling_defaults if info else None)

    def load_model(self, name: str, *, announce: bool = True) -> None:
        """Load `name` in the background, showing progress; the chat continues on it."""
        if self._downloading:  # another model asked for: the download stops (kept to resume)
            self.cancel_download()
        self._loading += 1
        self.status.set_model(name)
        self.status.set_state("loading")
        self.run_worker(self._load(name, announce), group="load", exit_on_error=False)

    def cancel_download(self) -> None:
        """Stop the Hub download of a model being loaded; what arrived is kept."""
        self.workers.cancel_group(self, "load")
        self.notify("Download stopped; /model with its name again resumes it", title="Model")

    def _load_progress(self, event: LoadProgress) -> None:
        self._downloading = event.phase == "download" and (event.fraction or 0) < 1

    async def _load(self, name: str, announce: bool) -> None:
        try:
            info = await load_model(self.engine, name, self.status, self._load_progress)
        except asyncio.CancelledError:
            self._loading -= 1
            self._downloading = False
            current = getattr(self.engine, "model_info", None)
            self.status.set_model(current.name if current else "", None)
            self._settle_status(error=self._loading == 0 and current is None)
            raise
        self._loading -= 1
        self._downloading = False
        if isinstance(info, str):  # why it failed: the chat goes on
            current = getattr(self.engine, "model_info", None)
            self.status.set_model(current.name if current else "", None)
            self._settle_status(error=self._loading == 0 and current is None)
            self.notify(info, title="Model not loaded", severity="error", timeout=10)
            self.post_message(ModelFailed(name, info))
            return
        if self._loading == 0:
            self.status.set_model(info.name, info.context_length or 0)
            self.chat.model = info.name
            self.chat.use_defaults(self.default_sampling())
            problem = self.chat.save_settings()
            if problem:
                self.history_problem(problem)
            self.count_context()
        self._settle_status()
        show_model_notice(self.app, info)
        show_base_model_notice(self.app, info)
        if announce:
            self.notify(f"Now chatting with {info.name}", title="Model ready")
            remember(self.app, "model", model_to_remember(name))
        self.post_message(ModelReady(info))

    def count_context(self) -> None:
        """Show the context the next request will hold (counted in the background)."""
        # mypy cannot solve Textual's WorkType union for an async method (it infers Never)
        self.run_worker(self._count_context, group="context", exclusive=True, exit_on_error=False)  # type: ignore[arg-type]

    async def _count_context(self) -> None:
        messages = self.chat.messages()
        try:
            tokens = await self.engine.count_tokens(messages) if messages else 0
        except Exception:  # no model yet, or a remote one that can't count: the answer will tell
            return
        if not self.answering:
            self.status.set_context(tokens)

    def _settle_status(self, error: bool = False) -> None:
        """Put the status back to what is going on after a load or an answer ended."""
        if self._loading:
            self.status.set_state("loading")
        elif self.answer is not None:
            self.status.set_state("generating" if self.answer.got_tokens else "prefill")
        elif error:
            self.status.set_state("error", "no model — /model NAME or F2")
        else:
            self.status.set_state("idle")

    # ----- the prompt -----------------------------------------------------------------------
    @on(PromptSubmitted)
    async def _submitted(self, event: PromptSubmitted) -> None:
        event.stop()
        text = event.text
        try:
            if self.completion.is_open and self._complete_on_enter(text):
                return
            await self.submit(text)
        finally:
            self.prompt.sent()

    async def submit(self, text: str) -> bool:
        """Handle a submitted prompt: run a command or send a message.

        Returns:
            Whether it was taken (the prompt is then cleared).
        """
        if not text.strip():
            return False
        if commands.is_command(text):
            return await self.run_command(text)
        if text.lstrip().startswith("//"):
            text = text.lstrip()[1:]
        return await self.send(text)

    async def run_command(self, text: str) -> bool:
        """Run a slash-command; a wrong one is shown as an error and nothing is sent."""
        self._close_completion()
        try:
            await commands.run_command(self.commands, text)
        except CommandError as error:
            self.notify(str(error), title="Command", severity="error", timeout=8, markup=False)
            if self.is_attached:  # kept to fix, selected so that typing replaces it
                self.prompt.select_all()
            return False
        if self.is_attached:
            self.prompt.remember(text.strip())
            self.prompt.reset()
        return True

    async def send(self, text: str) -> bool:
        """Send a message: show it, save it, and start the answer (an edited message goes
        in place of the one edited: `edit_and_resend`)."""
        if self._editing is not None:
            turn, self._editing = self._editing, None
            return await self.edit_and_resend(turn, text)
        if self.busy():
            return False
        self.prompt.remember(text)
        self.prompt.reset()
        self.conversation.add(Message("user", text))
        self.conversation.follow()
        problem = self.chat.add_user(text)
        if problem:
            self.history_problem(problem)
        await self.start_answer()
        return True

    def palette_command(self, command: Command) -> None:
        """Run a command from the palette, or start typing it when it needs an argument."""
        if command.needs_argument:
            self.prompt.reset(f"/{command.name} ")
            self.prompt.focus()
            return
        self.run_worker(self.run_command(f"/{command.name}"), group="command", exit_on_error=False)

    # ----- answers --------------------------------------------------------------------------
    async def start_answer(self) -> None:
        """Add an answer view and stream the model's answer into it."""
        label = self.status.model or "assistant"
        view = StreamingMessage(label)
        view.on_flush = self.status.repaint_if_due  # the numbers go out with the text
        self.conversation.add(view)
        self.conversation.follow()
        answer = Answer(self, self.chat, view)
        self.answer = answer
        self._answers.add(answer)
        self.answering = True
        if self._loading:
            view.status = "waiting for the model…"
            self.status.set_state("waiting")
        else:
            view.status = "thinking…"
            self.status.set_state("prefill")
        _quiet_gc(True)
        # one worker per answer: one in the background goes on beside this chat's
        answer.worker = self.run_worker(answer.run(), group="answer", exit_on_error=False)

    async def answer_ended(self, answer: Answer) -> None:
        """An answer ended and was saved (on screen, or in the background)."""
        self._answers.discard(answer)
        self._count_background()
        if not self._answers:
            _quiet_gc(False)
        if self.answer is answer:
            self.answer = None
            self.answering = False
            self._settle_status()
        if not answer.shown:
            await self._ended_unseen(answer)
            return
        finish, error = answer.finish or "cancelled", answer.error
        turns = answer.chat.turns
        last = len(turns) - 1
        mine = answer.chat is self.chat and turns and turns[-1].role == "assistant"
        if mine and self.chat.alternative_position(last)[1] > 1:
            self.commands.show_branch()  # its header says which version it is: "2/2"
        if finish == "error" and error:
            self.notify(error, title="Answer failed", severity="error", timeout=8)
        self.post_message(AnswerFinished(answer.text, finish, answer.stats, error))
        if answer.chat is self.chat:
            self.tools.after_answer(answer)  # it called tools: ask, run them, go on

    async def _ended_unseen(self, answer: Answer) -> None:
        self.tools.after_answer(answer)  # its calls are not run: answered as stopped
        if answer.finish == "error":
            self.notify(
                f"The answer in an earlier chat failed: {answer.error or 'no reason given'}",
                title="Background answer",
                severity="error",
                timeout=8,
            )
        elif answer.chat.conversation_id is not None and self.is_attached:
            self.notify(
                "The answer in an earlier chat has ended and is saved (F3 opens it).",
                title="Background answer",
            )
        with contextlib.suppress(Exception):  # its chat left the screen: free its cache
            await self.engine.reset_session(answer.chat.session)

    async def answer_to_background(self) -> bool:
        """Leave the chat on screen while its answer is written: the answer goes on in the
        background and is saved to its chat when it ends (one that cannot be saved, as the
        history is off, is stopped instead).

        Returns:
            Whether an answer of the chat left still runs (it frees its cache when it ends).
        """
        self.tools.stop()  # calls waiting or running for the chat left: stopped, kept
        answer = self.answer
        if answer is None:
            return False
        if answer.finishing:  # it ends in a moment: let it end here
            with contextlib.suppress(Exception):
                await asyncio.wait_for(answer.done.wait(), 3.0)
            return False
        self.answer = None
        self.answering = False
        answer.detach()
        self._count_background()
        self._settle_status()
        if answer.chat.conversation_id is None:  # nowhere to keep it
            answer.stop()
            self.notify("The answer in the previous chat was stopped.", title="Answer")
        else:
            self.notify(
                "The answer in the previous chat goes on in the background;"
                " it is saved when it ends.",
                title="Background answer",
            )
        return True

    def background_chats(self) -> set[int]:
        """The saved chats whose answer is being written off screen."""
        return {
            a.chat.conversation_id
            for a in self._answers
            if not a.shown and a.chat.conversation_id is not None
        }

    def _count_background(self) -> None:
        """The status bar counts the answers being written off screen."""
        self.status.set_background(sum(1 for a in self._answers if not a.shown))

    def running_answer(self, conversation_id: int) -> Answer | None:
        """The answer being written for saved chat `conversation_id`, if any."""
        for answer in self._answers:
            if answer.chat.conversation_id == conversation_id:
                return answer
        return None

    def action_stop(self) -> None:
        """Stop the answer being written (within one token); the partial answer stays."""
        if self.completion.is_open:
            self._close_completion()
            return
        if self.answer is None and self.tools.running:
            self.tools.stop()  # the tool running is cancelled, what was done stays
            return
        if self.answer is None and self._downloading:
            self.cancel_download()
            return
        if self.answer is None:
            self.conversation.clear_find()
            return
        self.status.set_state("stopping")
        self.answer.stop()

    async def stop_and_wait(self, timeout: float = 3.0) -> None:
        """Stop every answer being written (this chat's and those in the background) and
        wait until they are saved."""
        self.tools.stop()
        answers = list(self._answers)
        if not answers:
            return
        if self.answer is not None:
            self.status.set_state("stopping")
        for answer in answers:
            answer.stop()
        waits = asyncio.gather(*(answer.done.wait() for answer in answers))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(waits, timeout)

    def busy(self) -> bool:
        """Whether an answer is being written in this chat; says so once, however often it
        is asked (Enter held down, or a paste whose every line arrives as an Enter)."""
        if not self.answering:
            return False
        now = time.monotonic()
        if now >= self._busy_notice_until:
            self._busy_notice_until = now + BUSY_NOTICE_SECONDS
            self.notify(
                "An answer is being written; press Esc to stop it first"
                " (or Ctrl+N for a new chat beside it).",
                title="Busy",
                severity="warning",
                timeout=BUSY_NOTICE_SECONDS,
            )
        return True

    # ----- completion -----------------------------------------------------------------------
    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self, event: TextArea.Changed) -> None:
        text = self.prompt.text
        if not text.strip():
            self._editing = None  # the edit was thrown away
        if self.prompt.recalling:  # stepping through history: no list over it
            self._close_completion()
            return
        if text == self._dismissed_completion:
            return
        self._dismissed_completion = None
        items = commands.completions(self.commands, text) if text.startswith("/") else []
        if len(items) == 1 and items[0][0] == text:
            items = []
        self.completion.show(items)
        self.prompt.completing = self.completion.is_open

    def _close_completion(self) -> None:
        self.completion.close()
        self.prompt.completing = False

    def _take_completion(self) -> str | None:
        chosen = self.completion.chosen()
        if chosen is None:
            return None
        text = commands.completion_text(chosen)
        self.prompt.reset(text)
        return text

    @on(CompletionMove)
    def _completion_move(self, event: CompletionMove) -> None:
        self.completion.move(event.delta)

    @on(CompletionAccept)
    def _completion_accept(self, event: CompletionAccept) -> None:
        self._take_completion()

    @on(CompletionDismiss)
    def _completion_dismiss(self, event: CompletionDismiss) -> None:
        self._dismissed_completion = self.prompt.text
        self._close_completion()

    def _complete_on_enter(self, text: str) -> bool:
        """Enter with the list open: complete a half-typed command instead of running it.

        Returns:
            True when the prompt was completed (and nothing should run yet).
        """
        chosen = self.completion.chosen()
        if chosen is None:
            return False
        completed = commands.completion_text(chosen)
        if completed.strip() == text.strip():
            return False
        name, argument = commands.split_command(completed)
        command = commands.COMMANDS.get(name)
        if command is not None and (argument or not command.takes_argument):
            return False if completed == text else self._run_completed(completed)
        self.prompt.reset(completed)
        return True

    def _run_completed(self, text: str) -> bool:
        self.prompt.reset(text)
        self._close_completion()
        self.run_worker(self.submit(text), group="command", exit_on_error=False)
        return True

    # ----- the transcript's keys ------------------------------------------------------------
    def action_to_transcript(self) -> None:
        """Ctrl+Up: to the transcript, its cursor on the newest message (at once: the next
        key typed acts on it)."""
        transcript = self.conversation
        if transcript.messages:
            self.set_focus(transcript)
            transcript.set_cursor(transcript.messages[-1])

    def action_switch_focus(self) -> None:
        """Tab / Shift+Tab: from the prompt to the transcript as Ctrl+Up goes, and back."""
        if self.focused is self.prompt:
            self.action_to_transcript()
        elif self.focused is self.conversation:
            self.set_focus(self.prompt)
        else:
            raise SkipAction()

    def action_find(self) -> None:
        """Ctrl+F: start typing /find."""
        self.prompt.reset("/find ")
        self.prompt.focus()

    def action_copy_text(self) -> None:
        """Ctrl+C: copy the text selected with the mouse (none: the key goes on)."""
        text = self.get_selected_text()
        if not text:
            raise SkipAction()
        self.commands.to_clipboard(text, "the selection")

    def find(self, text: str) -> int:
        """/find TEXT: highlight every hit in the transcript and move to the newest; the
        transcript takes the keys (n next, N previous, Esc ends). Returns the hit count."""
        count = self.conversation.find(text)
        if count:
            self.conversation.focus()
        else:
            self.notify(f"“{text}” is not in this chat.", title="Find", markup=False)
        return count

    @on(Transcript.Left)
    def _left_transcript(self, event: Transcript.Left) -> None:
        self.prompt.focus()

    @on(Transcript.Act)
    async def _transcript_act(self, event: Transcript.Act) -> None:
        message, action = event.message, event.action
        if action != "delete":
            self._confirm_delete = None
        if action == "open":
            if not self.tools.toggle_fold(message):
                self.notify("o unfolds a tool's result: move to one first.")
        elif action == "copy":
            self.commands.to_clipboard(message.text, "the message")
        elif action == "code":
            self._copy_code(message, event.number)
        elif action in ("edit", "regenerate", "delete", "version") and not self.busy():
            turn = self.turn_of(message)
            if action == "version":
                self.show_version(turn, event.number or 1)
                self._cursor_on_turn(turn)
            elif action == "edit":
                self.start_edit(message, turn)
            elif action == "regenerate":
                await self.regenerate(turn)
            else:
                self.delete_turn(message, turn)

    def _copy_code(self, message: Message, number: int | None) -> None:
        """Copy code block `number` of `message` (None: the next one after the last `y`)."""
        blocks = code_blocks(message.text)
        if not blocks:
            self.notify("This message has no code block.", title="Copy", severity="warning")
            return
        if number is None:
            serial, last = self._code_pick
            number = last % len(blocks) + 1 if serial == message.serial else 1
        if number > len(blocks):
            count = "1 code block" if len(blocks) == 1 else f"{len(blocks)} code blocks"
            self.notify(f"This message has {count}, not {number}.", title="Copy")
            return
        self._code_pick = (message.serial, number)
        self.commands.to_clipboard(blocks[number - 1], f"code block {number} of {len(blocks)}")

    def turn_of(self, message: Message) -> int:
        """The index in `chat.turns` of a message in the transcript (for one not saved as a
        turn, an answer stopped before any text: where its turn would be)."""
        turn = 0
        for shown in self.conversation.messages:
            if shown is message:
                return turn
            if shown.kind in ("user", "tool") or (shown.kind == "assistant" and shown.text):
                turn += 1
        return turn

    def start_edit(self, message: Message, turn: int) -> None:
        """`e`: a message of the user's goes into the prompt; sending it calls
        `edit_and_resend`."""
        if message.kind != "user":
            self.notify("Only your own messages can be edited (r writes an answer again).")
            return
        self.prompt.reset(message.text)
        self.prompt.focus()
        self._editing = turn
        self.notify(
            "Enter sends it in place of the message and what came after it"
            " (clear the prompt to cancel).",
            title="Editing",
        )

    async def edit_and_resend(self, turn: int, text: str) -> bool:
        """Send `text` in place of user turn `turn`: a new branch from there (the earlier
        question and what followed it stay saved, as the other version)."""
        if self.busy():
            return False
        self.prompt.remember(text)
        self.prompt.reset()
        self.history_problem(self.chat.branch_from(turn, text))
        self.commands.show_branch(answering=True)
        self.count_context()
        await self.start_answer()
        return True

    async def regenerate(self, turn: int) -> None:
        """`r` on an answer: write answer `turn` again as another version of it (the one
        shown before stays saved; ← → switch between them)."""
        turns = self.chat.turns
        if turn >= len(turns) or turns[turn].role != "assistant":
            self.notify("r writes an answer again: move to an answer first.")
            return
        self.history_problem(self.chat.regenerate_from(turn))
        self.commands.show_branch(answering=True)
        self.count_context()
        await self.start_answer()

    def _cursor_on_turn(self, turn: int) -> None:
        """Keep the message cursor on turn `turn` after the transcript was shown again."""
        message = self.message_of(turn)
        if message is not None:
            self.conversation.set_cursor(message)

    def show_version(self, turn: int, step: int) -> None:
        """← / →: show the previous or next version of message `turn` (and the branch that
        continues from it); the chat goes on from what is shown."""
        if self.busy():
            return
        if self.chat.alternative_position(turn)[1] < 2:
            self.notify("This message has no other version (e edits a question, r an answer).")
            return
        self.history_problem(self.chat.show_alternative(turn, step))
        self.commands.show_branch()
        self.count_context()

    def delete_turn(self, message: Message, turn: int) -> None:
        """`d`, then `d` again to confirm: delete what the cursor is on (`ChatState.deletion`
        says what), from the saved chat too, and say what went."""
        if turn >= len(self.chat.turns):  # an answer stopped before any text
            self.conversation.remove_messages(message)
            return
        deletion = self.chat.deletion(turn)
        asked = self._confirm_delete
        now = time.monotonic()
        if asked is None or asked[:2] != (message.serial, deletion) or now > asked[2]:
            self._confirm_delete = (message.serial, deletion, now + CONFIRM_SECONDS)
            self.notify(f"Press d again to delete {deletion.what}.", title="Delete?")
            return
        self._confirm_delete = None
        self.history_problem(self.chat.delete(deletion))
        self.commands.show_branch()
        self.count_context()
        shown = min(deletion.first, len(self.chat.turns) - 1)
        if shown >= 0:
            self._cursor_on_turn(shown)
        self.notify(f"Deleted {deletion.what}.", title="Deleted")

    def drop_turns(self, turn: int) -> None:
        """Take turn `turn` and every one after it out of the chat and the transcript."""
        first = self.message_of(turn)
        if first is not None:
            messages = self.conversation.messages
            self.conversation.remove_messages(*messages[messages.index(first) :])
        del self.chat.turns[turn:]
        self.count_context()

    def message_of(self, turn: int) -> Message | None:
        """The transcript's message of turn `turn` (see `turn_of`)."""
        count = 0
        for message in self.conversation.messages:
            if message.kind in ("user", "tool") or (message.kind == "assistant" and message.text):
                if count == turn:
                    return message
                count += 1
            elif message.kind == "assistant" and count == turn:
                return message
        return None

    # ----- history ------------------------------------------------------------------------
    def history_problem(self, problem: str | None) -> None:
        """Show a history failure (once per kind; the chat goes on in memory)."""
        if problem and not self._history_warned:
            self._history_warned = True
            self.notify(problem, title="History", severity="warning", timeout=10)

    # ----- key actions ----------------------------------------------------------------------
    def action_help(self) -> None:
        """F1."""
        self.commands.show_help()

    async def action_models(self) -> None:
        """F2."""
        await self.commands.pick_model()

    def action_history(self) -> None:
        """F3."""
        try:
            self.commands.browse_history()
        except CommandError as error:
            self.notify(str(error), severity="error")

    async def action_new_chat(self) -> None:
        """Ctrl+N."""
        await self.commands.new_chat()

    async def action_clear_chat(self) -> None:
        """Ctrl+L."""
        await self.commands.clear_chat()

    async def action_retry(self) -> None:
        """Ctrl+R."""
        try:
            await self.commands.retry()
        except CommandError as error:
            self.notify(str(error), severity="error")


_GC_THRESHOLDS: tuple[int, int, int] | None = None


def _quiet_gc(on: bool) -> None:
    """Keep full garbage collections (tens of ms, a visible stall) out of a streaming answer.

    On: objects alive now are frozen (full collections skip them) and full collections
    become rare. Off: both undone; the next collection catches up.
    """
    global _GC_THRESHOLDS
    if on and _GC_THRESHOLDS is None:
        _GC_THRESHOLDS = gc.get_threshold()
        gc.freeze()
        first, second, third = _GC_THRESHOLDS
        gc.set_threshold(first, second, max(third, 1000))
    elif not on and _GC_THRESHOLDS is not None:
        gc.set_threshold(*_GC_THRESHOLDS)
        _GC_THRESHOLDS = None
        gc.unfreeze()


__all__ = ["ChatScreen"]
