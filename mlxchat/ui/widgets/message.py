"""One finished message of the conversation: a header line and the Markdown text, one widget.

The header holds the author ("you", the model's name) and, dimmed after it, the answer's
numbers ("42 tok · 18.3 tok/s · ttft 0.12s"); a stopped answer says so in the warning
colour, a failed one shows the error in the error colour. The text is a `MarkdownView`
(drawn line by line, parsed once), so a long chat costs one widget per message; the user's
own messages are shown as typed, not as Markdown. The answer being written is a
`StreamingView` until it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.content import Content
from textual.reactive import reactive

from mlxchat.text import sanitize
from mlxchat.ui.widgets.markdown_view import MarkdownView

Kind = Literal["user", "assistant", "error", "info"]

LABELS = {"user": "you", "assistant": "assistant", "error": "error", "info": "mlxchat"}
LABEL_STYLES = {
    "user": "bold $primary",
    "assistant": "bold $accent",
    "error": "bold $error",
    "info": "bold $secondary",
}


@dataclass(frozen=True)
class MessageRecord:
    """What it takes to show a message again (messages scrolled far away are kept as this).

    Attributes:
        kind: user, assistant, error or info.
        text: The message text (raw; escaped when shown).
        label: The header text (None: the default for the kind).
        footer: The numbers or note after the label.
        stopped: The answer was stopped by the user.
        failed: The answer failed.
    """

    kind: Kind
    text: str
    label: str | None = None
    footer: str = ""
    stopped: bool = False
    failed: bool = False


def header_content(kind: str, label: str, note: str, *, stopped: bool, failed: bool) -> Content:
    """The header: the label, then the note (muted; warning when stopped, error when failed)."""
    style = "$warning" if stopped else "$error" if failed else "$text-muted"
    parts: list[tuple[str, str]] = [(label, LABEL_STYLES.get(kind, "bold"))]
    if note:
        parts.append(("  " + sanitize(note, one_line=True), style))
    return Content.assemble(*parts)


class HeaderedMarkdown(MarkdownView):
    """A `MarkdownView` with a header line (label and note) above the text.

    Reactives:
        status: Shown after the label while there is no footer.
    """

    DEFAULT_CSS = """
    HeaderedMarkdown {
        margin: 0 0 1 0;
        padding: 0 1 0 1;
    }
    HeaderedMarkdown.-user { border-left: outer $primary; }
    HeaderedMarkdown.-assistant { border-left: outer $accent; }
    HeaderedMarkdown.-error { border-left: outer $error; }
    HeaderedMarkdown.-info { border-left: outer $secondary; }
    """

    status: reactive[str] = reactive("")

    kind: Kind = "assistant"
    label = "assistant"
    footer = ""

    def _header_content(self) -> Content:
        return header_content(
            self.kind,
            self.label,
            self.footer or self.status,
            stopped=self.has_class("-stopped"),
            failed=self.has_class("-failed"),
        )

    @property
    def header_text(self) -> str:
        """The header as plain text."""
        return self._header_content().plain

    def header_lines(self, width: int) -> list[Content]:
        """The header, wrapped to `width` (cached until it changes)."""
        cached = self.__dict__.get("_header_cache")
        if cached is not None and cached[0] == width:
            return cached[1]
        header = self._header_content()
        lines = header.wrap(width) if header.cell_length > width else [header]
        self.__dict__["_header_cache"] = (width, lines)
        return lines

    def forget_header(self) -> None:
        """The header changed: draw it again (only its lines, when it keeps its height)."""
        cached = self.__dict__.pop("_header_cache", None)
        width = self._width
        if (
            cached is not None
            and cached[0] == width
            and self.is_mounted
            and len(self.header_lines(width)) == len(cached[1])
        ):
            self.repaint_lines(0, len(cached[1]))
        else:
            super().forget_header()

    def record(self) -> MessageRecord:
        """What it takes to show this message again."""
        return MessageRecord(
            self.kind,
            self.text,
            self.label,
            self.footer,
            self.has_class("-stopped"),
            self.has_class("-failed"),
        )

    def watch_status(self, status: str) -> None:
        """Repaint the header."""
        self.forget_header()

    def set_footer(self, text: str, *, stopped: bool = False, failed: bool = False) -> None:
        """Show `text` after the label (warning colour when stopped, error when failed)."""
        self.footer = text
        self.set_class(stopped, "-stopped")
        self.set_class(failed, "-failed")
        self.forget_header()


class MessageView(HeaderedMarkdown):
    """A finished message (or a user message): header and Markdown text in one widget."""

    def __init__(
        self,
        kind: Kind,
        text: str = "",
        *,
        label: str | None = None,
        footer: str = "",
        stopped: bool = False,
        failed: bool = False,
        id: str | None = None,
    ) -> None:
        """Create a message.

        Args:
            kind: user, assistant, error (an error line) or info (a note from mlxchat).
            text: The text as sent or received (shown escaped where unsafe; a user's text is
                shown as typed, not as Markdown, and cut when very long).
            label: The header text (default: "you", "assistant", …).
            footer: The numbers or a note shown after the label.
            stopped: Mark it as a stopped answer.
            failed: Mark it as a failed answer.
        """
        super().__init__(text, plain=kind == "user", id=id, classes=f"-{kind}")
        self.kind = kind
        self.label = label if label is not None else LABELS[kind]
        self.footer = footer
        """The numbers or note after the label ("" for none)."""
        self.set_class(stopped, "-stopped")
        self.set_class(failed, "-failed")

    @classmethod
    def from_record(cls, record: MessageRecord) -> MessageView:
        """A view of a kept message."""
        return cls(
            record.kind,
            record.text,
            label=record.label,
            footer=record.footer,
            stopped=record.stopped,
            failed=record.failed,
        )
