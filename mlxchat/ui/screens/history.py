"""The /history screen: saved chats, newest first, searched as you type.

It returns the id of the chat to resume, or None when closed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from textual.content import Content

from mlxchat.store.records import ConversationSummary
from mlxchat.text import sanitize
from mlxchat.ui.screens.filter_list import FilterList

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


class HistoryScreen(FilterList[ConversationSummary, int]):
    """Browse and search saved chats (see `FilterList` for the keys)."""

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
    HistoryScreen .history--note { width: 100%; color: $text-muted; padding: 0 1; }
    """

    BOX_TITLE = "Saved chats"
    PLACEHOLDER = "search titles and messages…"
    INPUT_ID = "history-search"
    LIST_ID = "history-list"
    NOTE_CLASS = "history--note"

    def __init__(
        self,
        search: Search,
        current: int | None = None,
        limit: int = 200,
        answering: Collection[int] = (),
    ) -> None:
        """Create the screen.

        Args:
            search: Looks chats up by text.
            current: The id of the chat on screen now (marked).
            limit: Most chats listed.
            answering: Chats whose answer is being written in the background (marked).
        """
        super().__init__()
        self.search = search
        self.current = current
        self.limit = limit
        self.answering = set(answering)
        self._order: dict[int, int] = {}
        """Where each chat was first listed: the order stays while the list is open (an
        answer ending in the background would move its chat to the top)."""

    def find(self, text: str) -> tuple[list[ConversationSummary], str]:
        """The chats matching `text`, newest first."""
        try:
            shown = list(self.search(text))[: self.limit]
        except Exception as error:  # a broken database must not close the app
            return [], f"Cannot read the history: {error}"
        for chat in shown:
            self._order.setdefault(chat.id, len(self._order))
        shown.sort(key=lambda chat: self._order[chat.id])
        if shown:
            note = "Enter resumes · Esc closes · shell: mlxchat --resume ID, -c latest"
        elif text.strip():
            note = "No saved chat matches."
        else:
            note = "No saved chats yet."
        return shown, note

    def labels(self, items: Sequence[ConversationSummary]) -> list[Content]:
        """Id, time, title, message count and model of each chat; the one on screen and
        those answering in the background say so after their title."""
        return [
            Content.assemble(
                (f"#{chat.id:<4} ", "$accent"),
                (f"{format_when(chat.updated_at):>10}  ", "$text-muted"),
                (sanitize(chat.title, one_line=True) or "(untitled)", "bold"),
                ("  (on screen)" if chat.id == self.current else "", "italic $success"),
                ("  (answering…)" if chat.id in self.answering else "", "italic $warning"),
                (f"  {_messages(chat.message_count)}", "$text-muted"),
                (f"  {sanitize(chat.model, one_line=True)}" if chat.model else "", "$secondary"),
            )
            for chat in items
        ]

    def value(self, item: ConversationSummary) -> int:
        """The chat's id."""
        return item.id


def _messages(count: int) -> str:
    return f"{count} message" if count == 1 else f"{count} messages"
