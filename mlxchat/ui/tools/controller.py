"""The chat's tools: the servers started with the chat, the options sent with each answer,
and the loop that runs the calls an answer made (asking first) and lets the model go on.

    tools = ChatTools(screen, settings)       # the screen's; `start()` on mount
    options = tools.request_options(chat)     # with every answer (None: no tool on)
    tools.after_answer(answer)                # an answer ended with tool calls: run them
    tools.stop()                              # Esc: the running call is cancelled

A round: each call of the answer is shown (its block is in the answer), asked about (unless
the config's `auto_approve` or an earlier "always" says yes), run with the status bar saying
so, and its result (or the refusal, or the error) is shown folded and saved; then the model
answers again with the results, up to `max_tool_steps` rounds after the user's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import TYPE_CHECKING, Any, Protocol

from textual.worker import Worker

from mlxchat.engine.types import RequestOptions, ToolCall
from mlxchat.tools.server import ToolResult, ToolSpec
from mlxchat.tools.toolbox import Toolbox, key, parse_arguments
from mlxchat.ui.tools.approval import ApprovalBar, Decision
from mlxchat.ui.tools.blocks import ToolResultMessage, answer_with_calls
from mlxchat.ui.widgets.message import Message

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel

    from mlxchat.tools.server import McpServer
    from mlxchat.ui.answer import Answer
    from mlxchat.ui.chat_state import ChatState
    from mlxchat.ui.widgets.status import StatusBar
    from mlxchat.ui.widgets.transcript import Transcript

STOPPED = "error: the user stopped this call"
"""The result of a call Esc stopped (or never started)."""

_MANUAL_IDS = itertools.count(1)


class ToolsHost(Protocol):
    """What the tools need of the chat screen."""

    chat: ChatState
    settings: Any
    answering: bool

    @property
    def app(self) -> App[Any]: ...
    @property
    def conversation(self) -> Transcript: ...
    @property
    def status(self) -> StatusBar: ...
    def history_problem(self, problem: str | None) -> None: ...
    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...
    def query_one(self, selector: str) -> Any: ...
    def run_worker(self, work: Any, *, group: str = "", exit_on_error: bool = True) -> Any: ...
    def set_interval(self, interval: float, callback: Any) -> Any: ...
    async def start_answer(self) -> None: ...
    def turn_of(self, message: Message) -> int: ...


class ChatTools:
    """The tools of one chat screen.

    Attributes:
        toolbox: The configured servers.
        worker: The round running now (None: none).
    """

    def __init__(self, host: ToolsHost, settings: Any) -> None:
        """Prepare the servers of `settings.mcp_servers` (started by `start`)."""
        self.host = host
        self.settings = settings
        self.toolbox = Toolbox(
            getattr(settings, "mcp_servers", ()), float(getattr(settings, "tool_timeout", 60))
        )
        self.toolbox.on_failure = self._server_failed
        self.worker: Worker[None] | None = None
        self._bar: ApprovalBar | None = None

    @property
    def max_steps(self) -> int:
        """Rounds of calls allowed after one message of the user's."""
        return int(getattr(self.settings, "max_tool_steps", 10))

    @property
    def running(self) -> bool:
        """Whether a round is going on (asking, or running a call)."""
        return self.worker is not None and not self.worker.is_finished

    def start(self) -> None:
        """Start the servers in the background (a slow one never delays the chat)."""
        problem = self.toolbox.start()
        if problem:
            self.host.notify(problem, title="Tools", severity="warning", timeout=10, markup=False)

    async def close(self) -> None:
        """Stop the servers."""
        await self.toolbox.close()

    def _server_failed(self, server: McpServer) -> None:
        with contextlib.suppress(Exception):
            self.host.notify(
                f"The tool server '{server.name}' failed: {server.error}. Its tools are off; "
                "a call to one returns an error to the model.",
                title="Tools",
                severity="error",
                timeout=10,
                markup=False,
            )

    # ----- what goes with an answer -----------------------------------------------------------
    def request_options(self, chat: ChatState) -> RequestOptions | None:
        """The tools on in `chat` for the engine (None: none)."""
        return self.toolbox.request_options(chat.tool_choices) if self.toolbox else None

    def answer_text(self, text: str, calls: tuple[ToolCall, ...]) -> str:
        """An answer's text as shown: with a block for each call it made."""
        if not calls:
            return text
        servers = {
            exposed: spec.server
            for exposed, spec in self.toolbox.tools(self.host.chat.tool_choices)
        }
        return answer_with_calls(text, calls, servers)

    # ----- a round of calls -------------------------------------------------------------------
    def after_answer(self, answer: Answer) -> None:
        """An answer ended: run its calls (a stopped or failed one's calls are not run)."""
        calls = answer.tool_calls
        if not calls:
            return
        if answer.finish in ("cancelled", "error") or not answer.shown:
            for call in calls:  # the conversation stays well formed: every call answered
                self.host.history_problem(answer.chat.add_tool_result(call, STOPPED))
            return
        self.host.answering = True
        self.worker = self.host.run_worker(
            self._round(answer.chat, calls), group="tools", exit_on_error=False
        )

    def stop(self) -> None:
        """Esc: stop the round (the call running is cancelled; what was done stays)."""
        if self.worker is not None:
            self.worker.cancel()

    def _rounds_since_question(self, chat: ChatState) -> int:
        rounds = 0
        for turn in reversed(chat.turns):
            if turn.role == "user":
                break
            rounds += bool(turn.role == "assistant" and turn.tool_calls)
        return rounds

    async def _round(self, chat: ChatState, calls: tuple[ToolCall, ...]) -> None:
        done = 0
        go_on = False
        try:
            for call in calls:
                result = await self._one(chat, call)
                self._show_result(chat, call, result)
                done += 1
            go_on = True
        except asyncio.CancelledError:
            for call in calls[done:]:
                self._show_result(chat, call, ToolResult(STOPPED, True))
            self.host.notify("Tool calls stopped; what was done is kept.", title="Tools")
        finally:
            self._drop_bar()
            self.host.answering = False
            self.host.status.set_state("idle")
            self.worker = None
        if not go_on or chat is not self.host.chat:
            return
        if self._rounds_since_question(chat) >= self.max_steps:
            self.host.notify(
                f"Stopped after {self.max_steps} rounds of tool calls (max_tool_steps);"
                " send a message to go on.",
                title="Tools",
                severity="warning",
                timeout=10,
            )
            return
        await self.host.start_answer()

    async def _one(self, chat: ChatState, call: ToolCall) -> ToolResult:
        spec = self.toolbox.find(call.name, chat.tool_choices)
        if spec is None:
            return ToolResult(f"error: there is no tool named '{call.name}' (or it is off)", True)
        try:
            arguments = parse_arguments(call.arguments)
        except ValueError as error:
            return ToolResult(f"error: {error}", True)
        if self.toolbox.needs_approval(spec, chat.tool_choices):
            decision = await self._ask(spec)
            if decision.choice == "refuse":
                why = f": {decision.reason}" if decision.reason else ""
                return ToolResult(f"The user refused to run this tool{why}.", True)
            if decision.choice == "always":
                chat.tool_choices.always.add(key(spec))
        return await self.run_tool(spec, arguments)

    async def _ask(self, spec: ToolSpec) -> Decision:
        self._drop_bar()
        bar = ApprovalBar(spec.name, spec.server, id="approval")
        self._bar = bar
        area = self.host.query_one("#input-area")
        await area.mount(bar, before=self.host.query_one("#prompt"))
        self.host.status.set_state("waiting", f"approval of {spec.name}")
        try:
            return await bar.decision
        finally:
            self._drop_bar()

    def _drop_bar(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            with contextlib.suppress(Exception):
                bar.remove()
            with contextlib.suppress(Exception):
                self.host.query_one("#prompt").focus()

    async def run_tool(self, spec: ToolSpec, arguments: dict[str, Any]) -> ToolResult:
        """Run one tool, the status bar saying "tool: NAME · 2.1 s" meanwhile."""
        status = self.host.status
        started = time.monotonic()

        def tick() -> None:
            status.set_state("tool", f"{spec.name} · {time.monotonic() - started:.1f} s")

        tick()
        timer = self.host.set_interval(0.1, tick)
        try:
            return await self.toolbox.call(spec, arguments)
        finally:
            timer.stop()

    def _show_result(self, chat: ChatState, call: ToolCall, result: ToolResult) -> None:
        self.host.history_problem(chat.add_tool_result(call, result.text))
        if chat is self.host.chat:
            message = ToolResultMessage(call.name, result.text, failed=result.is_error)
            self.host.conversation.add(message)
            self.host.conversation.follow()

    # ----- the transcript's `o` ------------------------------------------------------------------
    def toggle_fold(self, message: Message) -> bool:
        """Unfold a tool's result (or fold it again); whether `message` was one."""
        if message.kind != "tool":
            return False
        turns = self.host.chat.turns
        turn = self.host.turn_of(message)
        if turn >= len(turns) or turns[turn].role != "tool":
            return False
        full = turns[turn].content
        fold = (
            message.text == full or isinstance(message, ToolResultMessage) and not message.is_folded
        )
        name = turns[turn].tool_name or "tool"
        new = ToolResultMessage(name, full, failed=message.failed, fold=fold)
        if new.text == message.text:
            return True
        transcript = self.host.conversation
        transcript.replace(message, new)
        transcript.set_cursor(new)
        return True

    # ----- /tools and /tool ---------------------------------------------------------------------
    def listing(self) -> str:
        """Each server's state and tools, with what is off in this chat."""
        if not self.toolbox:
            return (
                "No tool server is configured. Add one to config.toml (`mlxchat locate config`):"
                '\n\n    [mcp.servers.time]\n    command = "mcp-server-time"'
            )
        choices = self.host.chat.tool_choices
        lines = []
        for server in self.toolbox.servers.values():
            state = {"ready": "ready", "off": "off (enabled = false)"}.get(
                server.state, server.state
            )
            if server.state == "failed":
                state = f"failed: {server.error}"
            if server.name in choices.servers_off:
                state += " · off in this chat"
            lines.append(f"{server.name}: {state}")
            for spec in server.tools:
                marks = []
                if key(spec) in choices.tools_off:
                    marks.append("off")
                if not self.toolbox.needs_approval(spec, choices):
                    marks.append("runs without asking")
                mark = f" ({', '.join(marks)})" if marks else ""
                lines.append(f"  {spec.name}{mark}")
        lines.append("")
        lines.append("/tools off NAME and /tools on NAME (a server, or SERVER.TOOL) for this chat.")
        return "\n".join(lines)

    def switch(self, on: bool, name: str) -> str:
        """Turn server or tool `name` on or off in this chat; what was done, in words.

        Raises:
            ValueError: No such server or tool.
        """
        choices = self.host.chat.tool_choices
        if name in self.toolbox.servers:
            (choices.servers_off.discard if on else choices.servers_off.add)(name)
            return f"The tools of '{name}' are {'on' if on else 'off'} in this chat."
        specs = [
            spec
            for server in self.toolbox.servers.values()
            for spec in server.tools
            if name in (spec.name, key(spec))
        ]
        if not specs:
            raise ValueError(f"no tool server or tool named '{name}' (/tools lists them)")
        for spec in specs:
            (choices.tools_off.discard if on else choices.tools_off.add)(key(spec))
        return f"The tool '{name}' is {'on' if on else 'off'} in this chat."

    async def call_by_hand(self, name: str, arguments_text: str) -> None:
        """/tool NAME {json}: run a tool now (no question: the user typed it); the call and
        its result go into the chat, so the model sees them with the next message.

        Raises:
            ValueError: No such tool on, or bad arguments (one line).
        """
        chat = self.host.chat
        spec = self.toolbox.find(name, chat.tool_choices)
        if spec is None:
            raise ValueError(f"no tool named '{name}' is on (/tools lists them)")
        arguments = parse_arguments(arguments_text)
        import json

        call = ToolCall(f"manual-{next(_MANUAL_IDS)}", spec.name, json.dumps(arguments))
        self.host.answering = True
        try:
            result = await self.run_tool(spec, arguments)
        finally:
            self.host.answering = False
            self.host.status.set_state("idle")
        if chat.conversation_id is None and chat.history is not None:
            # a chat is saved from its first message: the call is one
            self.host.history_problem(chat.add_user(f"/tool {spec.name} {call.arguments}"))
            self.host.conversation.add(Message("user", f"/tool {spec.name} {call.arguments}"))
        self.host.history_problem(chat.add_answer("", "tool_calls", None, "", (call,)))
        shown = answer_with_calls("", (call,), {spec.name: spec.server})
        self.host.conversation.add(Message("assistant", shown, label="/tool"))
        self._show_result(chat, call, result)


__all__ = ["STOPPED", "ChatTools", "ToolsHost"]
