"""`FilterList`: a modal list filtered as you type (the model picker, the saved chats).

A subclass says what it lists (`find`), how a line looks (`labels`) and what choosing one
returns (`value`); typing filters, Up/Down move, Enter or a click chooses, Esc closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Generic, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class FilterList(ModalScreen[ResultT | None], Generic[ItemT, ResultT]):
    """Choose one item of a list filtered as you type.

    Bindings:
        escape: Close without choosing.
        down/up: Move in the list while typing in the filter box.
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    BOX_TITLE: ClassVar[str] = ""
    """The title on the box's border."""
    PLACEHOLDER: ClassVar[str] = "filter…"
    """The filter box's placeholder."""
    INPUT_ID: ClassVar[str] = "filter"
    """The filter box's id."""
    LIST_ID: ClassVar[str] = "list"
    """The list's id."""
    NOTE_CLASS: ClassVar[str] = "note"
    """The class of the note line below the list."""

    def __init__(self) -> None:
        """Create the screen (the list is filled when it is mounted)."""
        super().__init__()
        self._shown: list[ItemT] = []

    def find(self, text: str) -> tuple[Sequence[ItemT], str]:
        """The items matching the filter `text`, and the note to show below them."""
        raise NotImplementedError

    def labels(self, items: Sequence[ItemT]) -> list[Content]:
        """One line (or more) of the list for each item."""
        raise NotImplementedError

    def value(self, item: ItemT) -> ResultT:
        """What choosing `item` returns."""
        raise NotImplementedError

    def typed(self, text: str) -> ResultT | None:
        """What Enter gives when nothing is listed: the typed text taken as a value (None:
        nothing)."""
        return None

    def compose(self) -> ComposeResult:
        """A filter box, the list, a note line."""
        with Vertical() as box:
            box.border_title = self.BOX_TITLE
            yield Input(placeholder=self.PLACEHOLDER, id=self.INPUT_ID)
            yield OptionList(id=self.LIST_ID)
            yield Label("", classes=self.NOTE_CLASS)

    def on_mount(self) -> None:
        """Fill the list and focus the filter box."""
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, text: str) -> None:
        shown, note = self.find(text)
        self._shown = list(shown)
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(label) for label in self.labels(self._shown)])
        if self._shown:
            options.highlighted = 0
        self.query_one(f".{self.NOTE_CLASS}", Label).update(note)

    @on(Input.Changed)
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None and self._shown:
            self.dismiss(self.value(self._shown[highlighted]))
        elif (typed := self.typed(event.value.strip())) is not None:
            self.dismiss(typed)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.value(self._shown[event.option_index]))

    def action_move(self, delta: int) -> None:
        """Move the highlight while the filter box has the focus."""
        options = self.query_one(OptionList)
        if not self._shown:
            return
        current = options.highlighted if options.highlighted is not None else 0
        options.highlighted = max(0, min(len(self._shown) - 1, current + delta))

    def action_close(self) -> None:
        """Close without choosing."""
        self.dismiss(None)
