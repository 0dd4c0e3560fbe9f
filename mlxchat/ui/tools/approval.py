"""The question asked before a tool runs, shown above the prompt until it is answered.

    Run get_current_time (time)?  y/Enter once · a always · n refuse · Esc stop

`n` asks for an optional reason (Enter sends it, empty is none), which goes back to the model
as the call's result. Esc is the chat screen's: it stops the whole loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar, Literal

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input, Static

from mlxchat.text import sanitize

Choice = Literal["once", "always", "refuse"]


@dataclass(frozen=True)
class Decision:
    """The user's answer: run `once`, `always` (this tool, this chat), or `refuse` (with a
    `reason`, "" for none)."""

    choice: Choice
    reason: str = ""


class ApprovalBar(Vertical, can_focus=True):
    """Asks whether to run one call; `decision` is resolved by a key."""

    DEFAULT_CSS = """
    ApprovalBar {
        height: auto;
        margin: 0 1;
        padding: 0 1;
        background: $warning 15%;
        border-left: thick $warning;
    }
    ApprovalBar:focus { background: $warning 25%; }
    ApprovalBar > Input { display: none; border: none; height: 1; padding: 0; }
    ApprovalBar.reason > Input { display: block; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "decide('once')", "Run once", show=False),
        Binding("a", "decide('always')", "Always", show=False),
        Binding("n", "refuse", "Refuse", show=False),
    ]

    def __init__(self, tool: str, server: str, *, id: str | None = None) -> None:
        """Ask about `tool` of `server`."""
        super().__init__(id=id)
        self.tool = tool
        self.server = server
        self.decision: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()

    @property
    def question(self) -> str:
        """The question as shown."""
        name = sanitize(self.tool, one_line=True)
        server = sanitize(self.server, one_line=True)
        return f"Run {name} ({server})?  y/Enter once · a always · n refuse · Esc stop"

    def compose(self):  # noqa: ANN201 - Textual's ComposeResult
        """The question, and the reason's input (shown after `n`)."""
        yield Static(Content(self.question), id="approval-question")
        yield Input(placeholder="Why? (optional, sent to the model; Enter)", id="approval-reason")

    def on_mount(self) -> None:
        """Take the keys."""
        self.focus()

    def action_decide(self, choice: Choice) -> None:
        """y / Enter / a."""
        if not self.decision.done():
            self.decision.set_result(Decision(choice))

    def action_refuse(self) -> None:
        """n: ask for a reason."""
        self.add_class("reason")
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _reason(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.decision.done():
            self.decision.set_result(Decision("refuse", event.value.strip()))


__all__ = ["ApprovalBar", "Choice", "Decision"]
