"""One answer being written: the chat it belongs to, its view, its stream and its worker.

The chat screen starts an `Answer` for every message it sends (and for /retry). While its chat
is on screen (`shown`) the answer streams into its view and the status bar. When the user
leaves that chat while it is written (/new, /clear, another chat resumed), the screen
`detach`es it: it goes on in the background, touching no widget, and when it ends it is
saved to ITS chat (the `ChatState` it was asked in), whatever chat the screen shows by then.

    answer = Answer(screen, screen.chat, view)
    answer.worker = screen.run_worker(answer.run(), group="answer", exit_on_error=False)
    answer.stop()                  # Esc: ends within a token, the partial answer is saved
    answer.detach()                # the user left its chat: it goes on unseen
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from mlxchat.engine.types import (
    Chunk,
    EngineError,
    FinishReason,
    Progress,
    RequestOptions,
    Stats,
    ToolCall,
)
from mlxchat.ui.display import answer_footer, stats_summary
from mlxchat.ui.widgets.message import Message
from mlxchat.ui.widgets.thinking import LIVE_INTERVAL, Thinking

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

    from mlxchat.engine.contract import ChatEngine, EventStream
    from mlxchat.ui.chat_state import ChatState
    from mlxchat.ui.tools.controller import ChatTools
    from mlxchat.ui.widgets.status import StatusBar
    from mlxchat.ui.widgets.streaming import StreamingMessage
    from mlxchat.ui.widgets.transcript import Transcript


class AnswerHost(Protocol):
    """What an answer needs of the chat screen."""

    engine: ChatEngine
    settings: Any
    tools: ChatTools

    @property
    def app(self) -> App[Any]: ...
    @property
    def conversation(self) -> Transcript: ...
    @property
    def status(self) -> StatusBar: ...
    def history_problem(self, problem: str | None) -> None: ...
    async def answer_ended(self, answer: Answer) -> None: ...


class Answer:
    """An answer being written for one chat.

    Attributes:
        chat: The conversation it answers (and is saved to).
        view: Where it streams while shown.
        shown: Whether its chat is on screen (False once detached: it goes on unseen).
        got_tokens: Whether its first token came.
        stream: The engine's stream while it runs.
        worker: The worker running `run`.
        finishing: Whether it ended and is being shown finished and saved.
        done: Set once it ended and was saved.
        finish: Why it ended, once it did; `stats` and `error` with it.
        tool_calls: The tools the model called (run after it ends, see `ui/tools`).
    """

    def __init__(self, host: AnswerHost, chat: ChatState, view: StreamingMessage) -> None:
        """Prepare the answer to `chat`'s last message, streamed into `view`."""
        self.host = host
        self.chat = chat
        self.view = view
        self.params = chat.params  # the settings it was asked with (the chat may change them)
        self.shown = True
        self.got_tokens = False
        self.stream: EventStream | None = None
        self.worker: Worker[None] | None = None
        self.finishing = False
        self.done = asyncio.Event()
        self.finish: FinishReason | None = None
        self.stats: Stats | None = None
        self.error: str | None = None
        self.tool_calls: tuple[ToolCall, ...] = ()
        self._unseen: list[str] = []
        """The text so far once detached (until then it is the view's)."""
        self.thinking: Thinking | None = None
        """Its reasoning, when the model thinks (shown as the view's thinking line)."""
        self._ticker: Any = None  # redraws the live thinking line every LIVE_INTERVAL

    @property
    def text(self) -> str:
        """The text written so far."""
        return self.view.text if self.shown else "".join(self._unseen)

    def detach(self) -> None:
        """Its chat left the screen: go on in the background, touching no widget."""
        if self.shown:
            self._unseen = [self.view.text]
            self.shown = False

    def stop(self) -> None:
        """Stop it within a token (before the first token: at once); what came is saved."""
        if self.got_tokens and self.stream is not None:
            self.stream.cancel()
        elif self.worker is not None:
            self.worker.cancel()

    async def run(self) -> None:
        """Stream the answer, then show it finished (when shown), save it, tell the host."""
        stats: Stats | None = None
        finish: FinishReason | None = None
        error: str | None = None
        view, status = self.view, self.host.status  # looked up once, not per token
        try:
            self.stream = stream = self._request()
            async for event in stream:
                if isinstance(event, Chunk):
                    stats = event.stats
                    if event.tool_call is not None:
                        self.tool_calls += (event.tool_call,)
                    thought = event.channel == "reasoning"
                    if thought:
                        self._think(event)
                    elif event.text and self.thinking is not None:
                        self._end_thinking()
                    if self.shown:
                        if not self.got_tokens or (event.text and not thought):
                            self._show_phase(thought)
                        if not thought:
                            view.append(event.text)
                        status.set_stats(stats)
                    elif event.text and not thought:
                        self._unseen.append(event.text)
                    self.got_tokens = True
                    if event.finish_reason is not None:
                        finish = event.finish_reason
                        error = event.error
                elif isinstance(event, Progress) and self.shown and status.state != "stopping":
                    status.set_progress(event)
        except asyncio.CancelledError:
            finish = "cancelled"
            with contextlib.suppress(Exception):
                self.stream.cancel()  # type: ignore[union-attr]
        except EngineError as failure:
            finish, error = "error", str(failure)
        except Exception as failure:  # never let an answer take the app down
            finish, error = "error", f"{type(failure).__name__}: {failure}"
        finally:
            self.stream = None
        if finish is None:  # the stream ended without a last chunk: it was cancelled early
            finish = "cancelled"
        self._end_thinking()
        self.finish, self.stats, self.error = finish, stats, error
        self.finishing = True
        try:
            await self._finished()
        finally:  # whatever happens, the screen must learn that it ended
            self.done.set()
            await self.host.answer_ended(self)

    def _think(self, chunk: Chunk) -> None:
        """A piece of reasoning: counted; the live line is redrawn a few times a second."""
        first = self.thinking is None
        if self.thinking is None:
            self.thinking = Thinking()
        self.thinking.add(chunk.text, 0 if chunk.token is None else 1)
        if first and self.shown:
            self.view.thinking = self.thinking
            self.view.thinking_changed()
            self._ticker = self.host.app.set_interval(LIVE_INTERVAL, self._tick)

    def _tick(self) -> None:
        if self.shown and self.thinking is not None and not self.thinking.done:
            self.view.thinking_changed()

    def _end_thinking(self) -> None:
        """The answer began (or ended): the thinking line folds."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        if self.thinking is not None and not self.thinking.done:
            self.thinking.end()
            if self.shown:
                self.view.thinking_changed()

    def _show_phase(self, thought: bool) -> None:
        """Tell thinking from writing in the view's header and the status bar."""
        self.view.status = "thinking…" if thought else "writing…"
        status = self.host.status
        if status.state != "stopping":
            phase: Any = "thinking" if thought else "generating"
            if status.state != phase:
                status.set_state(phase)

    def _request(self) -> EventStream:
        settings = self.host.settings
        max_context = getattr(settings, "max_context", None) or None
        request_options = getattr(settings, "request_options", None)
        return self.host.engine.stream(
            self.chat.messages(),
            self.params,
            session=self.chat.session,
            max_context=max_context,
            options=_joined(
                request_options() if request_options is not None else None,
                self.host.tools.request_options(self.chat),
            ),
        )

    def model(self) -> str:
        """The model that wrote it."""
        info = getattr(self.host.engine, "model_info", None)
        return info.name if info is not None else self.chat.model or self.host.status.model

    async def _finished(self) -> None:
        """Replace the streaming view by the finished message (when shown), save the answer."""
        text, finish, stats = self.text, self.finish or "cancelled", self.stats
        model = self.model()
        if self.shown:
            await self._show_finished(self.host.tools.answer_text(text, self.tool_calls), model)
        reasoning = self.thinking.text if self.thinking is not None else ""
        if text or reasoning or self.tool_calls:
            problem = self.chat.add_answer(
                text, finish, stats, model, self.tool_calls, reasoning=reasoning
            )
            if problem:
                self.host.history_problem(problem)
        if stats is not None and self.shown:
            self.host.status.set_stats(stats)

    async def _show_finished(self, text: str, model: str) -> None:
        view = self.view
        with contextlib.suppress(Exception):  # the view may be gone
            view.flush()
            await after_paint(self.host.app)  # the last tokens reach the screen first
        # the label already names the model; say it again only when it changed meanwhile
        summary = stats_summary(self.stats, "" if model == view.label else model)
        stopped, failed = self.finish == "cancelled", self.finish == "error"
        if failed:
            footer = self.error or "the answer failed"
        else:
            limit = self.params.max_tokens
            footer = answer_footer(self.finish, summary, limit=limit, empty=not text)
        final = Message(
            "assistant", text, label=view.label, footer=footer, stopped=stopped, failed=failed
        )
        final.status = "stopped" if stopped else "failed" if failed else ""
        final.thinking = self.thinking
        with contextlib.suppress(Exception):
            transcript = self.host.conversation
            await final.prepare(transcript.text_width)  # the full render, off the event loop
            if self.shown:  # not if its chat left the screen meanwhile
                transcript.replace(view, final)


def _joined(thinking: RequestOptions | None, tools: RequestOptions | None) -> RequestOptions | None:
    """The chat's thinking settings and the tools on in it, as one request's options."""
    if thinking is None or tools is None:
        return thinking or tools
    return replace(thinking, tools=tools.tools, tool_choice=tools.tool_choice)


async def after_paint(app: App[Any], timeout: float = 0.5) -> None:
    """Wait until the screen has been refreshed (at most `timeout` seconds)."""
    painted = asyncio.get_running_loop().create_future()

    def done() -> None:
        if not painted.done():
            painted.set_result(None)

    app.call_after_refresh(done)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(painted, timeout)


__all__ = ["Answer", "AnswerHost", "after_paint"]
