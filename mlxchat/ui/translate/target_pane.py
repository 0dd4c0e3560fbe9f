"""The target pane: the translation streaming in, one paragraph per source sentence.

Append-only, like plain wait-k itself: text is only ever added to the end of the latest
paragraph, so nothing shown is erased (a stopped sentence gets a marker after its text).
Only the paragraph that grows is re-rendered; the view follows the end while the user has
not scrolled up.
"""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from mlxchat.text import sanitize

MARKS = {
    "cancelled": ("  ⏹ stopped", "$warning"),
    "error": ("  ✗ failed", "$error"),
    "length": ("  ✂ cut at the word limit", "$text-muted"),
}
"""What is appended after a sentence that did not end normally (text, style)."""


class Paragraph(Static):
    """The translation of one sentence (class ``-running`` until it ends, then ``-done``)."""

    DEFAULT_CSS = """
    Paragraph {
        width: 1fr;
        height: auto;
        margin: 0 0 1 0;
    }
    """

    def __init__(self, sentence: int) -> None:
        """A paragraph for sentence number `sentence`."""
        super().__init__("", classes="-running", markup=False)
        self.sentence = sentence
        self.text = ""
        """The target text shown (sanitized, leading whitespace removed)."""
        self.mark = ""
        self._mark_style = ""

    def append(self, text: str) -> None:
        """Add `text` (model output: control characters are escaped) at the end."""
        if not text:
            return
        self.text = (self.text + sanitize(text)).lstrip()
        self._show()

    def end(self, reason: str) -> None:
        """The sentence is over; mark it if it did not end normally."""
        self.set_class(False, "-running")
        self.set_class(True, "-done")
        if reason in MARKS and not self.mark:
            self.mark, self._mark_style = MARKS[reason]
            self._show()

    def _show(self) -> None:
        content = Content(self.text.rstrip("\n"))
        if self.mark:
            content = content.append(Content.styled(self.mark, self._mark_style))
        self.update(content)


class TargetPane(VerticalScroll):
    """The translation so far, a paragraph per sentence."""

    DEFAULT_CSS = """
    TargetPane {
        height: 1fr;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        """An empty pane."""
        super().__init__(id=id, classes=classes)
        self._paragraphs: dict[int, Paragraph] = {}

    @property
    def text(self) -> str:
        """Everything shown, a line per sentence (marks included)."""
        return "\n".join(p.text + p.mark for p in self._paragraphs.values())

    def paragraph(self, sentence: int) -> Paragraph:
        """The paragraph of `sentence`, added at the end if new."""
        paragraph = self._paragraphs.get(sentence)
        if paragraph is None:
            paragraph = self._paragraphs[sentence] = Paragraph(sentence)
            self.mount(paragraph)
        return paragraph

    def append(self, sentence: int, text: str) -> None:
        """Add target text to a sentence's paragraph."""
        if not text:
            return
        following = self.is_vertical_scroll_end or self.max_scroll_y == 0
        self.paragraph(sentence).append(text)
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def end(self, sentence: int, reason: str) -> None:
        """Mark a sentence's paragraph done (with a marker if stopped, failed or cut)."""
        if sentence in self._paragraphs or reason in MARKS:
            self.paragraph(sentence).end(reason)

    async def clear(self) -> None:
        """Remove every paragraph (a restart)."""
        self._paragraphs.clear()
        await self.remove_children()
