"""How tool calls and results look in the transcript.

An answer that calls tools shows, after its text, one block per call: the server, the tool
and its arguments as indented JSON. Each result is a message of its own (kind "tool"),
shown folded to its first lines; `o` on the message cursor unfolds it (and folds it again).
A result is data: shown as plain, escaped text, never as Markdown or markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlxchat.engine.types import ToolCall
from mlxchat.text import sanitize
from mlxchat.tools.toolbox import pretty_arguments
from mlxchat.ui.widgets.message import Message, MessageRecord

FOLDED_LINES = 4
"""Lines of a result shown while it is folded."""


def _code(text: str) -> str:
    """`text` as inline code (backticks inside it cannot end the span)."""
    text = sanitize(text, one_line=True).replace("`", "'")
    return f"`{text}`"


def call_block(call: ToolCall, server: str | None) -> str:
    """One call as Markdown: "tool call `server` · `tool`", then its arguments."""
    where = f"{_code(server)} · " if server else ""
    arguments = sanitize(pretty_arguments(call.arguments)).replace("```", "`\u200b``")
    return f"**tool call** {where}{_code(call.name)}\n\n```json\n{arguments}\n```"


def answer_with_calls(
    text: str, calls: Sequence[ToolCall], server_of: dict[str, str] | None = None
) -> str:
    """An answer's text followed by the blocks of its calls."""
    server_of = server_of or {}
    blocks = [call_block(call, server_of.get(call.name)) for call in calls]
    return "\n\n".join(part for part in (text.strip(), *blocks) if part)


def folded(text: str, lines: int = FOLDED_LINES) -> tuple[str, bool]:
    """`text` cut to its first `lines` lines with a note of what is left; whether it was."""
    rows = text.splitlines() or [""]
    if len(rows) <= lines:
        return text, False
    hidden = len(rows) - lines
    more = f"… {hidden} more line{'s' if hidden != 1 else ''} (o on the message unfolds)"
    return "\n".join([*rows[:lines], more]), True


class ToolResultMessage(Message):
    """A tool's result in the transcript (kind "tool"), folded or not.

    Attributes:
        result: The whole result.
        is_folded: Whether only its first lines are shown.
    """

    def __init__(
        self, name: str, result: str, *, footer: str = "", failed: bool = False, fold: bool = True
    ) -> None:
        """Show `result` of tool `name` (folded when `fold` and it is long)."""
        shown, cut = folded(result) if fold else (result, False)
        super().__init__("tool", shown, label=f"tool: {name}", footer=footer, failed=failed)
        self.tool = name
        self.result = result
        self.is_folded = cut

    @property
    def foldable(self) -> bool:
        """Whether it is long enough to fold."""
        return folded(self.result)[1]

    def toggled(self) -> ToolResultMessage:
        """The same result, unfolded (or folded again)."""
        return ToolResultMessage(
            self.tool, self.result, footer=self.footer, failed=self.failed, fold=not self.is_folded
        )

    def record(self) -> MessageRecord:
        """Shown again (a theme change, a resize) as it is now."""
        return MessageRecord("tool", self.text, self.label, self.footer, False, self.failed)


def result_record(name: str | None, result: str) -> MessageRecord:
    """A saved tool result as the transcript shows it again (folded)."""
    shown, _ = folded(result)
    return MessageRecord("tool", shown, label=f"tool: {name or 'tool'}")


__all__ = [
    "FOLDED_LINES",
    "ToolResultMessage",
    "answer_with_calls",
    "call_block",
    "folded",
    "result_record",
]
