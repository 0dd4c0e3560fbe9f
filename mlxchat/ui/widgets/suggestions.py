"""The completion list shown above the prompt while a slash-command is typed.

It never takes the focus: the prompt keeps it and forwards Up, Down, Tab and Escape (see
`PromptInput`). Each item is (text to put in the prompt, description).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option


class CompletionList(OptionList, can_focus=False):
    """Matching commands (or argument values) for what is typed in the prompt."""

    DEFAULT_CSS = """
    CompletionList {
        display: none;
        height: auto;
        max-height: 10;
        border: round $primary 60%;
        background: $surface;
        padding: 0 1;
        margin: 0 1;
    }
    CompletionList.-open { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        """Create the (closed) list."""
        super().__init__(id=id)
        self._items: list[tuple[str, str]] = []

    @property
    def is_open(self) -> bool:
        """Whether it is shown."""
        return self.has_class("-open")

    @property
    def items(self) -> list[tuple[str, str]]:
        """What it offers now."""
        return list(self._items)

    def show(self, items: Sequence[tuple[str, str]]) -> None:
        """Offer `items` (closes the list when there are none)."""
        items = list(items)
        if items == self._items and self.is_open:
            return
        self._items = items
        self.clear_options()
        if not items:
            self.set_class(False, "-open")
            return
        width = max(len(text) for text, _ in items)
        options = []
        for text, help_text in items:
            label = Content.assemble((text.ljust(width + 2), "bold"), (help_text, "$text-muted"))
            options.append(Option(label))
        self.add_options(options)
        self.highlighted = 0
        self.set_class(True, "-open")

    def close(self) -> None:
        """Hide the list."""
        self.show([])

    def move(self, delta: int) -> None:
        """Move the highlight by `delta` (wrapping around)."""
        if not self._items:
            return
        current = self.highlighted if self.highlighted is not None else 0
        self.highlighted = (current + delta) % len(self._items)

    def chosen(self) -> str | None:
        """The text of the highlighted item, or None."""
        if not self._items or self.highlighted is None:
            return None
        return self._items[self.highlighted][0]
