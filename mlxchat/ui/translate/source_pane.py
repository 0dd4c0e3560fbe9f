"""The source pane: the source words, read ones highlighted, and (live mode) the input.

Each sentence is a line of words in one of these states: ``pending`` (played back later),
``queued`` (arrived, waiting for the translator), ``read``, ``dropped`` (cancelled before
being read). The word being read (the last one read in the sentence being translated) is
marked. In live mode the user types below: a word is sent when followed by a space, and
Enter ends the sentence (`SourcePane.Typed`).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Static

from mlxchat.text import sanitize

STYLES = {
    "pending": "$text-muted",
    "queued": "italic $warning",
    "read": "$success",
    "dropped": "strike $text-muted",
}
"""How each word state is shown."""
CURRENT_STYLE = "bold reverse $accent"
"""The word being read."""


def split_typed(value: str) -> tuple[list[str], str]:
    """Split what is in the input into words that are complete (followed by whitespace) and
    the word still being typed."""
    if not value or not any(ch.isspace() for ch in value):
        return [], value
    cut = max(i for i, ch in enumerate(value) if ch.isspace())
    return value[:cut].split(), value[cut + 1 :]


class SourceLine(Static):
    """One source sentence, its words coloured by state."""

    DEFAULT_CSS = """
    SourceLine {
        width: 1fr;
        height: auto;
    }
    """

    def __init__(self, sentence: int, words: list[str], state: str) -> None:
        """A line for `sentence` with `words`, all in `state`."""
        super().__init__("", markup=False)
        self.sentence = sentence
        self.words = list(words)
        self.states = [state] * len(words)
        self.current: int | None = None

    def on_mount(self) -> None:
        """Paint the words."""
        self.redraw()

    def redraw(self) -> None:
        """Repaint after words or states changed."""
        pieces: list[tuple[str, str] | str] = []
        for i, (word, state) in enumerate(zip(self.words, self.states, strict=True)):
            if i:
                pieces.append(" ")
            style = CURRENT_STYLE if i == self.current else STYLES[state]
            pieces.append((sanitize(word), style))
        self.update(Content.assemble(*pieces))


class SourceInput(Input):
    """The live source: words leave the box as they are completed, in the order typed.

    Words are taken when the value changes, while the key that completed them is handled,
    not later in a message handler: keys that arrive in one burst (fast typing, SSH) are
    all typed before the first message is handled, and taking words from a stale value
    sent them twice and cut the keys typed since.
    """

    TYPING_HINT = "Type the source; space sends a word, Enter ends the sentence"
    AWAY_HINT = "Press i (or Tab) to type the source again"

    def on_focus(self) -> None:
        """Typing: say how words are sent."""
        self.placeholder = self.TYPING_HINT

    def on_blur(self) -> None:
        """Not typing (e.g. after Esc): say how to come back."""
        self.placeholder = self.AWAY_HINT

    def watch_value(self, value: str) -> None:
        """Send the complete words; keep the word being typed."""
        words, rest = split_typed(value)
        if words:
            self.post_message(SourcePane.Typed(words, end=False))
            self.value = rest

    async def action_submit(self) -> None:
        """Enter: send the words in the box and end the sentence."""
        words = self.value.split()
        self.value = ""
        self.post_message(SourcePane.Typed(words, end=True))


class SourcePane(Vertical):
    """The source words and, in live mode, the input where they are typed.

    Args:
        live: Show the input (live typing) rather than only a played-back source.
    """

    DEFAULT_CSS = """
    SourcePane {
        height: 1fr;
    }
    SourcePane > #source-words {
        height: 1fr;
        padding: 0 1;
    }
    SourcePane > #source-input {
        margin: 0 0;
    }
    """

    @dataclass
    class Typed(Message):
        """The user typed complete words, or pressed Enter.

        Attributes:
            words: The words, in order (may be empty on Enter).
            end: Enter was pressed: the sentence ends after these words.
        """

        words: list[str]
        end: bool

    def __init__(self, *, live: bool, id: str | None = None) -> None:
        """An empty pane."""
        super().__init__(id=id)
        self.live = live
        self._lines: dict[int, SourceLine] = {}

    def compose(self) -> ComposeResult:
        """The words and (live) the input."""
        yield VerticalScroll(id="source-words")
        if self.live:
            yield SourceInput(
                placeholder=SourceInput.TYPING_HINT,
                id="source-input",
            )

    @property
    def words_view(self) -> VerticalScroll:
        """The scrolling list of sentences."""
        return self.query_one("#source-words", VerticalScroll)

    @property
    def text(self) -> str:
        """The source words shown, a line per sentence."""
        return "\n".join(" ".join(line.words) for line in self._lines.values())

    def line(self, sentence: int) -> SourceLine:
        """The line of `sentence`, added at the end if new."""
        line = self._lines.get(sentence)
        if line is None:
            line = self._lines[sentence] = SourceLine(sentence, [], "pending")
            self.words_view.mount(line)
        return line

    def set_sentences(self, sentences: list[list[str]]) -> None:
        """Show a whole source to be played back (every word pending)."""
        for index, words in enumerate(sentences):
            line = self._lines[index] = SourceLine(index, words, "pending")
            self.words_view.mount(line)

    def add_word(self, sentence: int, word: str, state: str = "queued") -> int:
        """Add a typed word to a sentence; returns its index there."""
        line = self.line(sentence)
        line.words.append(word)
        line.states.append(state)
        line.redraw()
        self._follow(line)
        return len(line.words) - 1

    def set_state(self, sentence: int, index: int, state: str, *, current: bool = False) -> None:
        """Change a word's state (and make it the word being read, or not)."""
        line = self._lines.get(sentence)
        if line is None or index >= len(line.words):
            return
        line.states[index] = state
        if current:
            self.clear_current()
            line.current = index
            self._follow(line)
        line.redraw()

    def drop_queued(self, sentence: int) -> bool:
        """Mark a sentence's queued words dropped (cancelled); returns whether there were any."""
        line = self._lines.get(sentence)
        if line is None or "queued" not in line.states:
            return False
        line.states = ["dropped" if state == "queued" else state for state in line.states]
        line.redraw()
        return True

    def clear_current(self) -> None:
        """No word is being read."""
        for line in self._lines.values():
            if line.current is not None:
                line.current = None
                line.redraw()

    async def clear(self) -> None:
        """Remove every sentence (a restart)."""
        self._lines.clear()
        await self.words_view.remove_children()

    def _follow(self, line: SourceLine) -> None:
        if line.is_mounted:
            self.words_view.call_after_refresh(
                self.words_view.scroll_to_widget, line, animate=False
            )
