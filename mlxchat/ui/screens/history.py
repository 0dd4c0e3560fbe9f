"""The /history screen: saved chats, newest first, searched as you type.

It returns the id of the chat to resume, or None when closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from mlxchat.store.records import ConversationSummary
from mlxchat.text import sanitize

Search = Callable[[str], Sequence[ConversationSummary]]
"""Returns the chats matching a search text ("" for all); may raise with a message."""


def format_when(when: datetime, now: datetime | None = None) -> str:
    """A short local time: "14:05" today, "Mar 3" this year, else "2024-03-03"."""
    local = when.astimezone()
    now = (now or datetime.now(local.tzinfo)).astimezone(local.tzinfo)
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return local.strftime("%b %d")
    return local.strftime("%Y-%m-%d")


class HistoryScreen(ModalScreen[int | None]):
    """Browse and search saved chats.

    Bindings:
        escape: Close without choosing.
        down/up: Move in the list while typing in the search box.
    """

    DEFAULT_CSS = """
    HistoryScreen {
        align: center middle;
    }
    HistoryScreen > Vertical {
        width: 90%;
        max-width: 110;
        height: 80%;
        border: round $primary;
        border-title-color: $primary;
        background: $surface;
        padding: 0 1;
    }
    HistoryScreen Input { margin: 0 0 1 0; }
    HistoryScreen OptionList { height: 1fr; background: $surface; }
    HistoryScreen .history--note { color: $text-muted; padding: 0 1; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    def __init__(self, search: Search, current: int | None = None, limit: int = 200) -> None:
        """Create the screen.

        Args:
            search: Looks chats up by text.
            current: The id of the chat on screen now (marked).
            limit: Most chats listed.
        """
        super().__init__()
        self.search = search
        self.current = current
        self.limit = limit
        self._shown: list[ConversationSummary] = []

    def compose(self) -> ComposeResult:
        """A search box, the list, a note line."""
        with Vertical() as box:
            box.border_title = "Saved chats"
            yield Input(placeholder="search titles and messages…", id="history-search")
            yield OptionList(id="history-list")
            yield Label("", classes="history--note")

    def on_mount(self) -> None:
        """List every chat and focus the search box."""
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, text: str) -> None:
        note = self.query_one(".history--note", Label)
        try:
            self._shown = list(self.search(text))[: self.limit]
        except Exception as error:  # a broken database must not close the app
            self._shown = []
            note.update(f"Cannot read the history: {error}")
        else:
            if self._shown:
                note.update(
                    "Enter resumes the highlighted chat (mlxchat --resume ID resumes one"
                    " from the shell, -c the latest) · Esc closes"
                )
            elif text.strip():
                note.update("No saved chat matches.")
            else:
                note.update("No saved chats yet.")
        options = self.query_one(OptionList)
        options.clear_options()
        for chat in self._shown:
            mark = "● " if chat.id == self.current else "  "
            noun = "message" if chat.message_count == 1 else "messages"
            label = Content.assemble(
                (mark, "$success"),
                (f"#{chat.id:<4} ", "$accent"),
                (f"{format_when(chat.updated_at):>10}  ", "$text-muted"),
                (sanitize(chat.title, one_line=True) or "(untitled)", "bold"),
                (f"  {chat.message_count} {noun}", "$text-muted"),
                (f"  {sanitize(chat.model, one_line=True)}" if chat.model else "", "$secondary"),
            )
            options.add_option(Option(label))
        if self._shown:
            options.highlighted = 0

    @on(Input.Changed, "#history-search")
    def _search(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#history-search")
    def _submit(self, event: Input.Submitted) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None and self._shown:
            self.dismiss(self._shown[highlighted].id)

    @on(OptionList.OptionSelected, "#history-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._shown[event.option_index].id)

    def action_move(self, delta: int) -> None:
        """Move the highlight while the search box has the focus."""
        options = self.query_one(OptionList)
        if not self._shown:
            return
        current = options.highlighted if options.highlighted is not None else 0
        options.highlighted = max(0, min(len(self._shown) - 1, current + delta))

    def action_close(self) -> None:
        """Close without choosing."""
        self.dismiss(None)
