"""The /help screen: every slash-command and key, straight from the command table."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from mlxchat.engine.types import SamplingParams
from mlxchat.settings import default, show
from mlxchat.ui.commands import COMMANDS

KEYS = (
    ("Enter", "send the message"),
    ("Shift+Enter, Ctrl+J", "new line in the message"),
    ("Up / Down", "earlier prompts (on an empty prompt)"),
    ("Tab", "complete a /command"),
    ("Esc", "stop the answer being written"),
    ("PageUp / PageDown", "scroll the conversation"),
    (
        "Ctrl+Up (or Tab)",
        "to the messages: Up/Down (k/j) move, c copy, y its code blocks"
        " in turn (1-9: the N-th), e edit yours, r write an answer again (both keep the"
        " earlier version: ← → switch), d delete, o unfold a tool's result, Esc back",
    ),
    ("Ctrl+F", "find in the chat (/find TEXT): n next, N previous, Esc ends"),
    ("mouse drag, Ctrl+C", "select text in the chat, copy it"),
    ("Ctrl+P", "command palette"),
    ("F1", "this help"),
    ("F2", "pick a model"),
    ("F3", "saved chats"),
    ("Ctrl+N", "new chat"),
    ("Ctrl+R", "write the last answer again"),
    ("Ctrl+L", "clear the chat"),
    ("Ctrl+Q", "quit"),
)
"""The keys listed in /help (the footer shows the main ones too)."""


def _cell(text: str) -> str:
    """`text` as a table cell: "|" would end the cell and "<title>" would be taken as HTML."""
    return text.replace("|", "\\|").replace("<", "\\<")


def sampling_line(params: SamplingParams) -> str:
    """The sampling settings in force, as /help shows them."""
    parts = []
    for name in ("temp", "top_p", "min_p", "top_k", "repetition_penalty", "max_tokens", "seed"):
        value = getattr(params, name)
        shown = "off" if value is None else show(value)
        parts.append(f"{name.replace('_', '-')} {shown}")
    return " · ".join(parts)


def help_markdown(params: SamplingParams | None = None) -> str:
    """The help text: commands (from `COMMANDS`), the sampling settings, then keys."""
    lines = [
        "# mlxchat help",
        "",
        "Type a message and press **Enter**. Start a line with `/` for a command;"
        " `//` sends a message that starts with `/`.",
        "",
        "## Commands",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for command in COMMANDS.values():
        lines.append(f"| `{_cell(command.usage)}` | {_cell(command.help)} |")
    lines += ["", "## Sampling", ""]
    if params is not None:
        lines += [f"Now: {sampling_line(params)}.", ""]
    lines += [
        "Built-in defaults: greedy (temp 0, top-p 1, no repetition penalty), at most"
        f" {default('max_tokens')} tokens per answer; the demo adds a repetition penalty of 1.1."
        " A model's own `generation_config.json` replaces them; `config.toml` and"
        " command-line flags replace those; a slash-command changes the current chat only.",
    ]
    lines += ["", "## Keys", "", "| key | what it does |", "|---|---|"]
    lines += [f"| {key} | {_cell(what)} |" for key, what in KEYS]
    lines += ["", "Press **Esc** to close."]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """A scrollable list of commands and keys over the chat.

    Bindings:
        escape, q, f1: Close the help.
    """

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 90%;
        max-width: 100;
        height: 90%;
        border: round $primary;
        background: $surface;
        padding: 0 2;
    }
    HelpScreen Markdown { background: transparent; }
    """

    BINDINGS = [
        Binding("escape,q,f1", "dismiss_help", "Close"),
    ]

    def __init__(self, params: SamplingParams | None = None) -> None:
        """Create the screen; `params` are the sampling settings in force."""
        super().__init__()
        self.params = params

    def compose(self) -> ComposeResult:
        """The help text in a scrolling box."""
        with VerticalScroll(can_focus=True):
            yield Markdown(help_markdown(self.params))

    def on_mount(self) -> None:
        """Focus the scroller so the arrow keys scroll."""
        self.query_one(VerticalScroll).focus()

    def action_dismiss_help(self) -> None:
        """Close the screen."""
        self.dismiss(None)
