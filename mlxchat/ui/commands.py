"""The slash-commands: one table that /help, completion, the command palette and validation
all read.

Each `Command` names its argument, says how to use it, checks the argument text (`parse`,
which raises `CommandError` with the correct usage) and calls one method of a
`CommandContext` (the chat screen implements it). Nothing here touches widgets, so the
table is easy to test on its own.

    command, value = parse_command(ctx, "/temp 0.2")
    await command.handler(ctx, value)
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mlxchat.settings import SETTINGS, SettingError, clip


class CommandError(Exception):
    """A wrong command or argument; the message is one line fit to show, with the usage."""


class CommandContext(Protocol):
    """What the commands act on (implemented by the chat screen)."""

    def theme_names(self) -> Sequence[str]:
        """The names of the registered themes."""
        ...

    def model_names(self) -> Sequence[str]:
        """Names of the models available locally (for completion; may be empty)."""
        ...

    def show_help(self) -> Awaitable[None] | None: ...
    def switch_model(self, name: str) -> Awaitable[None] | None: ...
    def pick_model(self) -> Awaitable[None] | None: ...
    def set_system_prompt(self, text: str | None) -> Awaitable[None] | None: ...
    def set_sampling(self, name: str, value: Any) -> Awaitable[None] | None: ...
    def set_thinking(self, name: str, value: Any) -> Awaitable[None] | None: ...
    def retry(self) -> Awaitable[None] | None: ...
    def clear_chat(self) -> Awaitable[None] | None: ...
    def new_chat(self) -> Awaitable[None] | None: ...
    def browse_history(self) -> Awaitable[None] | None: ...
    def export_chat(self, path: str | None) -> Awaitable[None] | None: ...
    def copy_answer(self) -> Awaitable[None] | None: ...
    def copy_code(self, number: int | None) -> Awaitable[None] | None: ...
    def find_text(self, text: str) -> Awaitable[None] | None: ...
    def edit_message(self, number: int | None) -> Awaitable[None] | None: ...
    def set_theme(self, name: str | None) -> Awaitable[None] | None: ...
    def open_translate(self, wait_k: int | None) -> Awaitable[None] | None: ...
    def quit_app(self) -> Awaitable[None] | None: ...
    def tools_command(self, switch: tuple[bool, str] | None) -> Awaitable[None] | None: ...
    def call_tool(self, call: tuple[str, str]) -> Awaitable[None] | None: ...


Parser = Callable[[CommandContext, str], Any]
Handler = Callable[[CommandContext, Any], Awaitable[None] | None]


@dataclass(frozen=True)
class Command:
    """One slash-command.

    Attributes:
        name: The word after the slash, e.g. "top-p".
        args: The argument as shown in the usage ("NAME", "[PATH]", "" for none).
        help: One line saying what it does.
        handler: Calls the context with the parsed argument.
        parse: Checks the argument text and returns the value for the handler.
        complete: Candidate argument values for completion as you type, or None.
        key: The key binding that does the same, shown in /help ("" for none).
    """

    name: str
    args: str
    help: str
    handler: Handler
    parse: Parser
    complete: Callable[[CommandContext], Sequence[str]] | None = None
    key: str = ""

    @property
    def usage(self) -> str:
        """How to type it, e.g. "/temp X"."""
        return f"/{self.name} {self.args}".rstrip()

    @property
    def takes_argument(self) -> bool:
        """Whether it accepts an argument at all (required or optional)."""
        return bool(self.args)

    @property
    def needs_argument(self) -> bool:
        """Whether the argument is required."""
        return bool(self.args) and not self.args.startswith("[")

    def fail(self, problem: str) -> CommandError:
        """A CommandError for this command: the problem, then the usage."""
        return CommandError(f"{problem} — usage: {self.usage} ({self.help})")


# ----- argument parsers ---------------------------------------------------------------------


def _no_argument(name: str) -> Parser:
    def parse(ctx: CommandContext, text: str) -> None:
        if text:
            raise COMMANDS[name].fail(f"/{name} takes no argument")
        return None

    return parse


def _required_text(name: str, what: str) -> Parser:
    def parse(ctx: CommandContext, text: str) -> str:
        if not text:
            raise COMMANDS[name].fail(f"/{name} needs {what}")
        return text

    return parse


def _optional_text(ctx: CommandContext, text: str) -> str | None:
    return text or None


def _edit(ctx: CommandContext, text: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and int(text) >= 1):
        raise COMMANDS["edit"].fail(f"N counts your messages from 1, not '{clip(text)}'")
    return int(text)


def _setting(command: str, name: str, *, optional: bool = False) -> Parser:
    """A parser that checks the argument as setting `name` (see `mlxchat.settings`)."""
    setting = SETTINGS[name]

    def parse(ctx: CommandContext, text: str) -> Any:
        if not text:
            if optional:
                return None
            raise COMMANDS[command].fail(f"/{command} needs {setting.expects}")
        try:
            return setting.parse(text, f"/{command}")
        except SettingError as error:
            raise COMMANDS[command].fail(str(error)) from None

    return parse


def _on_off(command: str, name: str) -> Parser:
    """A parser for an on/off setting whose "off" means False, not unset."""
    parse_setting = _setting(command, name)

    def parse(ctx: CommandContext, text: str) -> bool:
        word = text.strip().lower()
        if word in ("off", "false", "no"):
            return False
        return bool(parse_setting(ctx, word))

    return parse


def _theme(ctx: CommandContext, text: str) -> str | None:
    if not text:
        return None
    names = list(ctx.theme_names())
    if text not in names:
        close = difflib.get_close_matches(text, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise COMMANDS["theme"].fail(
            f"no theme named '{clip(text)}'{hint}; available: {', '.join(sorted(names))}"
        )
    return text


def _copy(ctx: CommandContext, text: str) -> tuple[str, int | None]:
    """("answer", None), or ("code", N) for "code N" (N None: the last code block)."""
    what, _, number = text.partition(" ")
    if not what:
        return "answer", None
    if what.lower() != "code":
        raise COMMANDS["copy"].fail(f"/copy takes nothing or 'code N', not '{clip(text)}'")
    number = number.strip()
    if not number:
        return "code", None
    if not (number.isascii() and number.isdigit() and int(number) >= 1):
        raise COMMANDS["copy"].fail(f"N counts the code blocks from 1, not '{clip(number)}'")
    return "code", int(number)


def _tools(ctx: CommandContext, text: str) -> tuple[bool, str] | None:
    """None (list), or (on, NAME) for "on NAME" / "off NAME"."""
    if not text:
        return None
    word, _, name = text.partition(" ")
    if word.lower() not in ("on", "off") or not name.strip():
        raise COMMANDS["tools"].fail(
            f"/tools takes nothing, 'on NAME' or 'off NAME', not '{clip(text)}'"
        )
    return word.lower() == "on", name.strip()


def _tool(ctx: CommandContext, text: str) -> tuple[str, str]:
    """(NAME, JSON arguments text)."""
    if not text:
        raise COMMANDS["tool"].fail("/tool needs a tool name")
    name, _, arguments = text.partition(" ")
    return name, arguments.strip()


# ----- the table ----------------------------------------------------------------------------

_TABLE = (
    Command(
        "help",
        "",
        "list the commands and keys",
        lambda c, v: c.show_help(),
        _no_argument("help"),
        key="f1",
    ),
    Command(
        "model",
        "NAME",
        "switch to another model; the conversation continues on it",
        lambda c, v: c.switch_model(v),
        _required_text("model", "a model name or path"),
        complete=lambda c: c.model_names(),
    ),
    Command(
        "models",
        "",
        "pick one of the models on this machine",
        lambda c, v: c.pick_model(),
        _no_argument("models"),
        key="f2",
    ),
    Command(
        "system",
        "[TEXT]",
        'set the system prompt ("-" removes it; no text shows it)',
        lambda c, v: c.set_system_prompt(v),
        _optional_text,
    ),
    Command(
        "temp",
        "X",
        "sampling temperature, 0 (always the likeliest token) to 5",
        lambda c, v: c.set_sampling("temp", v),
        _setting("temp", "temp"),
    ),
    Command(
        "top-p",
        "X",
        "nucleus sampling mass, 0 to 1 (1 turns it off)",
        lambda c, v: c.set_sampling("top_p", v),
        _setting("top-p", "top_p"),
    ),
    Command(
        "max-tokens",
        "N",
        "the longest answer in tokens",
        lambda c, v: c.set_sampling("max_tokens", v),
        _setting("max-tokens", "max_tokens"),
    ),
    Command(
        "seed",
        "N|off",
        "random seed for repeatable answers (off: random)",
        lambda c, v: c.set_sampling("seed", v),
        _setting("seed", "seed"),
    ),
    Command(
        "think",
        "on|off",
        "let a thinking model reason before it answers (enable_thinking)",
        lambda c, v: c.set_thinking("enable_thinking", v),
        _on_off("think", "enable_thinking"),
        complete=lambda c: ["on", "off"],
    ),
    Command(
        "thinking-budget",
        "N|off",
        "most reasoning tokens before the answer begins (off: no cap)",
        lambda c, v: c.set_thinking("thinking_budget", v),
        _setting("thinking-budget", "thinking_budget"),
    ),
    Command(
        "retry",
        "",
        "write the last answer again",
        lambda c, v: c.retry(),
        _no_argument("retry"),
        key="ctrl+r",
    ),
    Command(
        "clear",
        "",
        "clear the screen and the model's memory of this chat (it stays saved)",
        lambda c, v: c.clear_chat(),
        _no_argument("clear"),
        key="ctrl+l",
    ),
    Command(
        "new",
        "",
        "start a new chat with the default settings",
        lambda c, v: c.new_chat(),
        _no_argument("new"),
        key="ctrl+n",
    ),
    Command(
        "history",
        "",
        "browse, search and resume saved chats",
        lambda c, v: c.browse_history(),
        _no_argument("history"),
        key="f3",
    ),
    Command(
        "export",
        "[PATH]",
        "save this chat as Markdown (default: ./<title>.md)",
        lambda c, v: c.export_chat(v),
        _optional_text,
    ),
    Command(
        "copy",
        "[code [N]]",
        "copy the last answer, or with code its N-th code block, by default the last",
        lambda c, v: c.copy_code(v[1]) if v[0] == "code" else c.copy_answer(),
        _copy,
        complete=lambda c: ["code"],
    ),
    Command(
        "edit",
        "[N]",
        "put your N-th message (default: your last) back into the prompt; sending it starts"
        " a new branch from there (the earlier one is kept)",
        lambda c, v: c.edit_message(v),
        _edit,
    ),
    Command(
        "find",
        "TEXT",
        "highlight TEXT in the chat (n next, N previous, Esc ends)",
        lambda c, v: c.find_text(v),
        _required_text("find", "the text to look for"),
        key="ctrl+f",
    ),
    Command(
        "theme",
        "[NAME]",
        "switch the colour theme (no name lists them)",
        lambda c, v: c.set_theme(v),
        _theme,
        complete=lambda c: sorted(c.theme_names()),
    ),
    Command(
        "translate",
        "[K]",
        "simultaneous translation (wait-k, default 3) with live latency metrics",
        lambda c, v: c.open_translate(v),
        _setting("translate", "wait_k", optional=True),
    ),
    Command(
        "tools",
        "[on|off NAME]",
        "list the MCP tool servers and tools; turn one on or off for this chat",
        lambda c, v: c.tools_command(v),
        _tools,
    ),
    Command(
        "tool",
        "NAME [JSON]",
        'call a tool by hand, e.g. /tool get_current_time {"timezone": "UTC"}',
        lambda c, v: c.call_tool(v),
        _tool,
    ),
    Command(
        "quit", "", "leave mlxchat", lambda c, v: c.quit_app(), _no_argument("quit"), key="ctrl+q"
    ),
)

COMMANDS: dict[str, Command] = {command.name: command for command in _TABLE}
"""Every command by name, in the order /help lists them."""


def split_command(text: str) -> tuple[str, str]:
    """Split "/name argument text" into ("name", "argument text") (both stripped)."""
    body = text.strip()[1:]
    name, _, argument = body.partition(" ")
    if "\n" in name:  # "/system\nline two": the argument may start on the next line
        name, _, rest = name.partition("\n")
        argument = rest + (" " + argument if argument else "")
    return name.strip().lower(), argument.strip()


def is_command(text: str) -> bool:
    """Whether `text` is a slash-command ("//" escapes a message that starts with "/")."""
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//")


SUGGEST_CUTOFF = 0.7
"""How alike (difflib ratio) a mistyped name must be to a command to be suggested:
"tmp" -> /temp and "hlep" -> /help are, "frobnicate" -> /translate (0.53) is not. A name
that starts a command, or that a command starts ("temperature"), is always suggested."""


def find_command(name: str) -> Command:
    """The command called `name`.

    Raises:
        CommandError: No such command; names the closest ones and /help.
    """
    command = COMMANDS.get(name)
    if command is not None:
        return command
    close = difflib.get_close_matches(name, list(COMMANDS), n=2, cutoff=SUGGEST_CUTOFF)
    prefixed = [n for n in COMMANDS if name and (n.startswith(name) or name.startswith(n))]
    hints = list(dict.fromkeys(prefixed + close))[:3]
    hint = f" Did you mean {' or '.join('/' + h for h in hints)}?" if hints else ""
    shown = clip(name) or ""
    raise CommandError(f"Unknown command /{shown}.{hint} Type /help for the list.")


def parse_command(ctx: CommandContext, text: str) -> tuple[Command, Any]:
    """Find the command in `text` and check its argument.

    Returns:
        The command and the value to pass to its handler.

    Raises:
        CommandError: Unknown command or a bad argument (with the usage).
    """
    name, argument = split_command(text)
    command = find_command(name)
    return command, command.parse(ctx, argument)


async def run_command(ctx: CommandContext, text: str) -> None:
    """Parse `text` and run the command.

    Raises:
        CommandError: Unknown command or a bad argument; nothing was done.
    """
    command, value = parse_command(ctx, text)
    result = command.handler(ctx, value)
    if result is not None:
        await result


def completions(ctx: CommandContext, text: str, limit: int = 12) -> list[tuple[str, str]]:
    """Completions for what is typed so far: (text to put in the prompt, description).

    While the command word is being typed: the commands starting with it (then those that
    merely contain it). After "/name ": the argument candidates that start with what follows.
    """
    if not text.startswith("/") or "\n" in text:
        return []
    body = text[1:]
    if " " not in body:
        word = body.lower()
        starts = [c for c in COMMANDS.values() if c.name.startswith(word)]
        inside = [c for c in COMMANDS.values() if word in c.name and c not in starts]
        return [(c.usage, c.help) for c in starts + inside][:limit]
    name, _, partial = body.partition(" ")
    command = COMMANDS.get(name.lower())
    if command is None or command.complete is None:
        return []
    try:
        candidates = list(command.complete(ctx))
    except Exception:  # a completion source failing must never break typing
        return []
    lowered = partial.strip().lower()
    found = [v for v in candidates if v.lower().startswith(lowered)]
    found += [v for v in candidates if lowered in v.lower() and v not in found]
    return [(f"/{command.name} {value}", "") for value in found][:limit]


def completion_text(usage_or_value: str) -> str:
    """What to put in the prompt when a completion is accepted.

    For a command ("/model NAME"): the name and a space when it takes an argument
    ("/model "), else just the name ("/help"). For an argument value: the whole line.
    """
    name, _, rest = usage_or_value[1:].partition(" ")
    command = COMMANDS.get(name)
    if command is not None and rest == command.args:
        return f"/{name} " if command.takes_argument else f"/{name}"
    return usage_or_value
