"""The prompt: a multi-line text area where Enter sends.

Keys (besides the usual TextArea editing keys):

- Enter sends (`PromptSubmitted`); Shift+Enter, Ctrl+J and Alt+Enter insert a newline.
- Up on an empty prompt (or while stepping through them) recalls earlier prompts; Down
  steps forward again. A recalled slash-command opens no completion list: Up and Down
  keep stepping through the history until it is edited.
- PageUp / PageDown scroll the conversation (posted as a scroll of the conversation view).
- While the completion list is open: Up/Down move in it, Tab takes the highlighted item,
  Escape closes it (`CompletionMove`, `CompletionAccept`, `CompletionDismiss`).
"""

from __future__ import annotations

import asyncio
import contextlib

from textual import events
from textual.reactive import reactive
from textual.widgets import TextArea

from mlxchat.ui.key_order import run_binding
from mlxchat.ui.messages import (
    CompletionAccept,
    CompletionDismiss,
    CompletionMove,
    PromptSubmitted,
)

NEWLINE_KEYS = frozenset({"shift+enter", "ctrl+j", "alt+enter", "ctrl+enter"})
"""Keys that insert a newline instead of sending (terminals differ in what they send)."""

SEND_WAIT = 1.0
"""Seconds the keys typed right after Enter wait at most for the prompt to be sent."""


class PromptInput(TextArea):
    """The multi-line prompt.

    Reactives:
        completing: Whether the completion list is open (set by the screen); Up, Down, Tab
            and Escape then drive the list.
    """

    DEFAULT_CSS = """
    PromptInput {
        height: auto;
        min-height: 3;
        max-height: 12;
        border: tall $primary 40%;
        padding: 0 1;
        background: $surface;
    }
    PromptInput:focus {
        border: tall $primary;
    }
    """

    completing: reactive[bool] = reactive(False)

    def __init__(
        self,
        text: str = "",
        *,
        placeholder: str = "",
        id: str | None = None,
        recall_limit: int = 200,
    ) -> None:
        """Create the prompt.

        Args:
            text: Initial text.
            placeholder: Shown while empty.
            recall_limit: How many earlier prompts Up can recall.
        """
        super().__init__(
            text,
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            highlight_cursor_line=False,
            placeholder=placeholder,
            compact=False,
        )
        self.recall_limit = recall_limit
        self._recalled: list[str] = []
        self._recall_index: int | None = None
        self._draft = ""
        self._sending: asyncio.Event | None = None
        """Set once the screen has handled the prompt sent with Enter (None: none sent)."""

    # ----- recall -------------------------------------------------------------------------
    def remember(self, text: str) -> None:
        """Add a sent prompt to what Up recalls (a repeat of the last one is skipped)."""
        if text.strip() and (not self._recalled or self._recalled[-1] != text):
            self._recalled.append(text)
            del self._recalled[: -self.recall_limit]
        self._recall_index = None

    def set_recall(self, prompts: list[str]) -> None:
        """Replace what Up recalls (e.g. the user prompts of a resumed chat)."""
        self._recalled = [p for p in prompts if p.strip()][-self.recall_limit :]
        self._recall_index = None

    def _recall(self, step: int) -> bool:
        """Step through earlier prompts; False when there is nothing to do."""
        if not self._recalled:
            return False
        if self._recall_index is None:
            if step > 0 or self.text.strip():
                return False
            self._draft = self.text
            index = len(self._recalled) - 1
        else:
            index = self._recall_index + step
        if index >= len(self._recalled):
            self._recall_index = None
            self._load(self._draft)
            return True
        index = max(index, 0)
        self._recall_index = index
        self._load(self._recalled[index])
        return True

    @property
    def recalling(self) -> bool:
        """Whether the prompt shows an earlier prompt, unedited (Up/Down step through them
        and no completion list opens over it)."""
        index = self._recall_index
        return index is not None and self.text == self._recalled[index]

    def _load(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def reset(self, text: str = "") -> None:
        """Replace the text and stop stepping through earlier prompts."""
        self._recall_index = None
        self._load(text)

    # ----- keys ---------------------------------------------------------------------------
    async def take_key(self, event: events.Key) -> bool:
        """A key in the order typed (`key_order`): the prompt's own, text, or a binding.
        After Enter, the next key waits (a moment at most) until the prompt was sent."""
        await self._after_sending()
        if self.cursor_blink:  # the cursor shows at once, as TextArea shows it for a key
            self.cursor_blink = False
            self.cursor_blink = True
        if self._own_key(event.key):
            if event.key == "enter":
                self._sending = asyncio.Event()
            return True
        if event.is_printable and event.character is not None:
            if self.read_only:
                return False
            start, end = self.selection
            self.replace(event.character, start, end, maintain_selection_offset=False)
            return True
        return await run_binding(self, event.key)

    async def take_paste(self, text: str) -> bool:
        """Pasted text, inserted in the order it came among the keys (`key_order`)."""
        await self._after_sending()
        if self.read_only:
            return False
        if result := self._replace_via_keyboard(text, *self.selection):
            self.move_cursor(result.end_location)
        return True

    async def _after_sending(self) -> None:
        """Wait (a moment at most) until a prompt sent with Enter has been taken."""
        if self._sending is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sending.wait(), SEND_WAIT)
            self._sending = None

    def sent(self) -> None:
        """The screen has handled the prompt sent with Enter: keys typed after it go on."""
        if self._sending is not None:
            self._sending.set()

    def on_key(self, event: events.Key) -> None:
        """Handle the prompt's own keys; the rest go on to `TextArea` (not prevented)."""
        if self._own_key(event.key):
            event.stop()
            event.prevent_default()  # TextArea's own key handler does not run

    def _own_key(self, key: str) -> bool:
        """Do what the prompt itself does with `key`; whether it did."""
        handled = True
        if key in ("up", "down") and self.recalling:
            self._recall(-1 if key == "up" else +1)  # history first, even over a command
        elif self.completing and key in ("up", "down"):
            self.post_message(CompletionMove(-1 if key == "up" else 1))
        elif self.completing and key == "tab":
            self.post_message(CompletionAccept())
        elif self.completing and key == "escape":
            self.post_message(CompletionDismiss())
        elif key == "enter":
            self.post_message(PromptSubmitted(self.text))
        elif key in NEWLINE_KEYS:
            start, end = self.selection
            self.replace("\n", start, end, maintain_selection_offset=False)
        elif key == "up" and self.cursor_location[0] == 0 and self._recall(-1):
            pass  # an earlier prompt is in the box now
        elif key == "down" and self._recall_index is not None:
            self._recall(+1)
        elif key in ("pageup", "pagedown") and self.document.line_count <= 3:
            self._scroll_conversation(key)
        else:
            handled = False
        return handled

    def _scroll_conversation(self, key: str) -> None:
        from mlxchat.ui.widgets.transcript import Transcript

        for view in self.screen.query(Transcript):
            if key == "pageup":
                view.action_page_up()
            else:
                view.action_page_down()
