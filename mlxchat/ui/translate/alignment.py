"""The alignment table: each target word of the sentence and the source it was written after.

One row per target word: its number t, the word, dₜ (source words read when it was
written) and the last of those source words. Rows are only added while a sentence runs;
the table starts afresh with the next sentence.
"""

from __future__ import annotations

from textual.widgets import DataTable

from mlxchat.text import sanitize

CELL_WIDTH = 14
"""Longer words are cut to this many characters (the panel is narrow)."""


def _clip(text: str) -> str:
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


class AlignmentTable(DataTable[str]):
    """Target word → source words read when it was written, for one sentence."""

    DEFAULT_CSS = """
    AlignmentTable {
        height: 1fr;
        min-height: 4;
        overflow-x: hidden;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        """An empty table (no cursor, zebra stripes)."""
        super().__init__(id=id, show_cursor=False, zebra_stripes=True, cursor_type="none")
        self.sentence = -1
        """The sentence whose words are listed (-1: none yet)."""

    def on_mount(self) -> None:
        """Add the columns."""
        self.add_column("t", key="t")
        self.add_column("target", key="target")
        self.add_column("d", key="d")
        self.add_column("last read", key="source")

    def start(self, sentence: int) -> None:
        """List the words of `sentence` from now on (clears the table if it is another)."""
        if sentence != self.sentence:
            self.sentence = sentence
            self.clear()

    def add_word(self, word: str, delay: int, source_word: str) -> None:
        """Add a target word with its delay and the last source word read before it."""
        self.add_row(
            str(self.row_count + 1),
            _clip(sanitize(word)),
            str(delay),
            _clip(sanitize(source_word)),
        )
        self.scroll_end(animate=False, immediate=False)

    @property
    def rows_text(self) -> list[tuple[str, ...]]:
        """The rows as text (t, target word, d, last source word read), as shown."""
        return [tuple(str(cell) for cell in self.get_row_at(i)) for i in range(self.row_count)]
