"""One message of the conversation as the transcript holds it: plain data, not a widget.

A `Message` has a header (the author: "you", the model's name; dimmed after it the answer's
numbers, "42 tok · 18.3 tok/s · ttft 0.12s"; a stopped answer says so in the warning colour,
a failed one shows the error in the error colour) and its text, a `MarkdownBody` (the
user's own messages are shown as typed, not as Markdown). The transcript
(`widgets.transcript.Transcript`) lays messages out as runs of lines in one document and
draws them; a message tells the transcript showing it when its header changes. The answer
being written is a `StreamingMessage` (streaming.py) until it ends.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal, Protocol

from textual.content import Content

from mlxchat.text import sanitize
from mlxchat.ui.widgets.markdown_body import MarkdownBody
from mlxchat.ui.widgets.thinking import Thinking

Kind = Literal["user", "assistant", "error", "info", "tool"]

LABELS = {
    "user": "you",
    "assistant": "assistant",
    "error": "error",
    "info": "mlxchat",
    "tool": "tool",
}
LABEL_STYLES = {
    "user": "bold $primary",
    "assistant": "bold $accent",
    "error": "bold $error",
    "info": "bold $secondary",
    "tool": "bold $warning",
}
BAR_STYLES = {
    "user": "$primary",
    "assistant": "$accent",
    "error": "$error",
    "info": "$secondary",
    "tool": "$warning",
}
"""The colour of the bar at the left of each of a message's lines."""

_SERIALS = itertools.count(1)


@dataclass(frozen=True)
class MessageRecord:
    """What it takes to show a message again (e.g. a saved message of a resumed chat).

    Attributes:
        kind: user, assistant, error or info.
        text: The message text (raw; escaped when shown).
        label: The header text (None: the default for the kind).
        footer: The numbers or note after the label.
        stopped: The answer was stopped by the user.
        failed: The answer failed.
        thinking: The answer's reasoning (None: none).
    """

    kind: Kind
    text: str
    label: str | None = None
    footer: str = ""
    stopped: bool = False
    failed: bool = False
    thinking: Thinking | None = None


class MessageOwner(Protocol):
    """What shows a message (the transcript): told when the message changes."""

    def message_changed(self, message: Message, *, header: bool = False) -> None: ...


def header_content(kind: str, label: str, note: str, *, stopped: bool, failed: bool) -> Content:
    """The header: the label, then the note (muted; warning when stopped, error when failed)."""
    style = "$warning" if stopped else "$error" if failed else "$text-muted"
    parts: list[tuple[str, str]] = [(label, LABEL_STYLES.get(kind, "bold"))]
    if note:
        parts.append(("  " + sanitize(note, one_line=True), style))
    return Content.assemble(*parts)


class Message:
    """A message: header (label and note) and Markdown text.

    Attributes:
        kind: user, assistant, error (an error line) or info (a note from mlxchat).
        label: The header text ("you", the model's name, …).
        footer: The numbers or a note shown after the label ("" for none).
        stopped: A stopped answer (the note in the warning colour).
        failed: A failed answer (the note in the error colour).
        body: The text and its lines.
        owner: The transcript showing it (None: not shown).
        serial: A number no other message has (the transcript's caches go by it).
    """

    def __init__(
        self,
        kind: Kind,
        text: str = "",
        *,
        label: str | None = None,
        footer: str = "",
        stopped: bool = False,
        failed: bool = False,
    ) -> None:
        """Create a message.

        Args:
            kind: user, assistant, error or info.
            text: The text as sent or received (shown escaped where unsafe; a user's text is
                shown as typed, not as Markdown, and cut when very long).
            label: The header text (default: "you", "assistant", …).
            footer: The numbers or a note shown after the label.
            stopped: Mark it as a stopped answer.
            failed: Mark it as a failed answer.
        """
        self.kind: Kind = kind
        self.label = label if label is not None else LABELS[kind]
        self.footer = footer
        self.stopped = stopped
        self.failed = failed
        self.body = MarkdownBody(text, plain=kind in ("user", "tool"))  # a tool's result: data
        self.owner: MessageOwner | None = None
        self.serial = next(_SERIALS)
        self.thinking: Thinking | None = None
        """The answer's reasoning, shown as a line under the header (thinking.py)."""
        self._status = ""
        self._header: tuple[int, list[Content]] | None = None

    @classmethod
    def from_record(cls, record: MessageRecord) -> Message:
        """A message showing a kept one."""
        message = cls(
            record.kind,
            record.text,
            label=record.label,
            footer=record.footer,
            stopped=record.stopped,
            failed=record.failed,
        )
        message.thinking = record.thinking
        return message

    def record(self) -> MessageRecord:
        """What it takes to show this message again."""
        return MessageRecord(
            self.kind, self.text, self.label, self.footer, self.stopped, self.failed, self.thinking
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.text[:30]!r}>"

    # ----- text -------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The whole text, as written."""
        return self.body.text

    @property
    def source(self) -> str:
        """The text as shown (control characters escaped)."""
        return self.body.source

    # ----- header -----------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """Shown after the label while there is no footer ("thinking…", "stopped", …)."""
        return self._status

    @status.setter
    def status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self._header_changed()

    def set_footer(self, text: str, *, stopped: bool = False, failed: bool = False) -> None:
        """Show `text` after the label (warning colour when stopped, error when failed)."""
        self.footer, self.stopped, self.failed = text, stopped, failed
        self._header_changed()

    def header_content(self) -> Content:
        """The header: label, then the footer (or the status)."""
        return header_content(
            self.kind,
            self.label,
            self.footer or self.status,
            stopped=self.stopped,
            failed=self.failed,
        )

    @property
    def header_text(self) -> str:
        """The header as plain text."""
        return self.header_content().plain

    def header_lines(self, width: int) -> list[Content]:
        """The header, wrapped to `width` (cached until it changes)."""
        cached = self._header
        if cached is not None and cached[0] == width:
            return cached[1]
        header = self.header_content()
        lines = header.wrap(width) if header.cell_length > width else [header]
        if self.thinking is not None:
            lines = lines + self.thinking.lines(width)
        self._header = (width, lines)
        return lines

    def thinking_changed(self) -> None:
        """The reasoning line changed (its numbers, folded or not): draw it again."""
        self._header_changed()

    def toggle_thinking(self) -> bool:
        """Unfold or fold the reasoning (once thinking ended); whether there was any."""
        thinking = self.thinking
        if thinking is None or not thinking.done:
            return False
        thinking.unfolded = not thinking.unfolded
        self._header_changed()
        return True

    def thinking_line(self, width: int) -> int | None:
        """The line of the message that holds the reasoning line (None: none)."""
        if self.thinking is None:
            return None
        return len(self.header_lines(width)) - len(self.thinking.lines(width))

    def _header_changed(self) -> None:
        self._header = None
        if self.owner is not None:
            self.owner.message_changed(self, header=True)

    # ----- lines ------------------------------------------------------------------------------
    def rendered_text(self, width: int = 80) -> str:
        """The message as drawn at `width` (plain): header, then text."""
        lines = [*self.header_lines(width), *self.body.lines(width)]
        return "\n".join(line.plain for line in lines)

    async def prepare(self, width: int) -> None:
        """Lay the text out for `width` in a worker thread (before showing a long text)."""
        await self.body.prepare(width)


__all__ = [
    "BAR_STYLES",
    "LABELS",
    "Kind",
    "Message",
    "MessageOwner",
    "MessageRecord",
    "header_content",
]
