"""`/v1/ws/translate`: simultaneous (wait-k) translation of a source that arrives as a stream.

Client events: `session.start` (first; `wait_k`, `source_lang`, `target_lang`, `temp`,
`top_p`, `max_new_words`, `max_tokens_per_word`), `source.append` (`text`: words, or a chunk
of text; a word is complete when whitespace follows it) and `source.end` (the sentence is
complete). Server events: `session.started` (the settings in force), `target.word` (`text`,
`delay` = source words read when it was written, the running `metrics`), `segment.done`
(the sentence's translation, delays and metrics) and `error` (OpenAI's error object).

Words are fed one at a time to a `LiveTranslation` on the engine (the exact incremental KV
cache) by the same `Runner` the translation TUI uses, so each word gets the wait-k
decision of its own: delays are g(t) = min(k + t - 1, |x|) however fast words arrive.
Closing the connection cancels the translation within one model call.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import fields
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import Field

from mlxchat.server.errors import APIError
from mlxchat.server.generation import api_error
from mlxchat.server.schemas import _Body, check_body, parse_json
from mlxchat.server.state import model_defaults, state_of
from mlxchat.server.ws_common import accept, received_texts
from mlxchat.settings import SettingError
from mlxchat.translate.events import SegmentDone, TargetWord, TranslationEvent
from mlxchat.translate.runner import EndSentence, Item, Runner, SourceWord
from mlxchat.translate.settings import WaitKSettings
from mlxchat.translate.translation import open_translation

router = APIRouter()


class SessionStart(_Body):
    """The body of `session.start`: the wait-k policy, languages and sampling."""

    wait_k: int = 3
    source_lang: str = Field("English", min_length=1)
    target_lang: str = Field("French", min_length=1)
    temp: float = 0.0
    top_p: float = 1.0
    max_new_words: int | None = None
    max_tokens_per_word: int = 16

    def settings(self) -> WaitKSettings:
        """The translator's settings, checked by the rules of the config file and the CLI.

        Raises:
            APIError: 400 naming the field whose value is out of range.
        """
        try:
            return WaitKSettings.from_values(self.model_dump())
        except SettingError as error:
            raise APIError(400, str(error), param=error.name) from None


def settings_in_force(settings: WaitKSettings) -> dict[str, Any]:
    """Every setting of a translation, flat, by the names `session.start` takes."""
    policy = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "sampling"}
    sampling = settings.sampling
    return policy | {
        "temp": sampling.temp,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
        "repetition_context_size": sampling.repetition_context_size,
    }


MAX_WAITING_WORDS = 2048
"""Source words a connection may have waiting to be read (more are refused)."""

MAX_WORD_CHARS = 256
"""The longest source word accepted (longer ones are refused, not queued)."""


class TranslateConnection:
    """One client's translation: its settings, the word feeder and the outgoing events."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.state = state_of(websocket)
        self.runner: Runner | None = None
        self.task: asyncio.Task[None] | None = None
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.fragment = ""  # the start of a word whose end has not arrived yet
        self.words = 0  # words sent in the open sentence
        self.sentence = 0

    async def handle(self, text: str) -> None:
        """Act on one client event; a bad one gets an `error` event."""
        try:
            await self.dispatch(parse_json(text))
        except APIError as error:
            self.outbox.put_nowait({"type": "error"} | error.envelope())

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "session.start":
            if self.runner is not None:
                raise APIError(400, "the session has already started", param="type")
            settings = check_body(message, SessionStart).settings()
            self.start(settings.resolved(self.state.config.defaults, model_defaults(self.state)))
        elif kind in ("source.append", "source.end"):
            if self.runner is None:
                raise APIError(400, "send session.start first", param="type")
            if kind == "source.append":
                self.append(message.get("text"))
            else:
                self.end()
        else:
            known = "session.start, source.append or source.end"
            raise APIError(400, f"unknown event type {kind!r}; use {known}", param="type")

    def start(self, settings: WaitKSettings) -> None:
        engine = self.state.engine
        self.runner = Runner(
            lambda s: open_translation(engine, s, auto_segment=False),
            settings,
            self.on_event,
            on_error=self.on_error,
        )
        self.runner.set_ready()
        self.task = asyncio.create_task(self.runner.run())
        self.outbox.put_nowait({"type": "session.started", "settings": settings_in_force(settings)})

    def append(self, text: object) -> None:
        if not isinstance(text, str):
            raise APIError(400, "'text' must be a string of source words", param="text")
        assert self.runner is not None
        combined = self.fragment + text
        words = combined.split()
        fragment = words.pop() if words and not combined[-1].isspace() else ""
        if len(fragment) > MAX_WORD_CHARS or any(len(word) > MAX_WORD_CHARS for word in words):
            self.fragment = ""
            raise APIError(
                400, f"a source word is longer than {MAX_WORD_CHARS} characters", param="text"
            )
        if self.runner.queued + len(words) > MAX_WAITING_WORDS:
            raise APIError(
                400,
                f"{self.runner.queued} source words wait to be read and these {len(words)} "
                f"would pass the limit of {MAX_WAITING_WORDS}: send more as words are read "
                "(target.word events say how many)",
                param="text",
                code="source_buffer_full",
            )
        self.fragment = fragment
        for word in words:
            self.runner.put(SourceWord(self.sentence, self.words, word))
            self.words += 1

    def end(self) -> None:
        assert self.runner is not None
        if self.fragment:
            self.runner.put(SourceWord(self.sentence, self.words, self.fragment, last=True))
            self.words += 1
        elif self.words:
            self.runner.put(EndSentence(self.sentence))
        else:
            raise APIError(400, "source.end without any source words", param="type")
        self.fragment, self.words = "", 0
        self.sentence += 1

    def on_event(self, item: Item, event: TranslationEvent) -> None:
        if isinstance(event, TargetWord):
            self.outbox.put_nowait(
                {
                    "type": "target.word",
                    "segment": item.sentence,
                    "index": event.target_words_generated - 1,
                    "text": event.word,
                    "delay": event.delay,
                    "source_words_read": event.source_words_read,
                    "metrics": _finite(event.metrics),
                }
            )
        elif isinstance(event, SegmentDone):
            self.outbox.put_nowait(
                {
                    "type": "segment.done",
                    "segment": item.sentence,
                    "source": event.source,
                    "translation": event.translation.strip(),
                    "words": list(event.target_words),
                    "delays": list(event.delays),
                    "metrics": _finite(event.metrics),
                    "finish_reason": event.finish_reason,
                    "time_to_first_word": _finite_number(event.time_to_first_word),
                    "mean_word_wait": _finite_number(event.mean_word_wait),
                }
            )

    def on_error(self, item: Item | None, error: Exception) -> None:
        event = {"type": "error", "segment": item.sentence if item else None}
        self.outbox.put_nowait(event | api_error(error).envelope())

    async def send_all(self) -> None:
        """Send the outgoing events in order (runs as a task for the connection's life)."""
        while True:
            await self.websocket.send_json(await self.outbox.get())

    def close(self) -> None:
        """The client left: stop the translation (the engine is free within one model call)."""
        if self.runner is not None:
            self.runner.cancel()
        if self.task is not None:
            self.task.cancel()


def _finite_number(value: float) -> float | None:
    """JSON has no NaN: an undefined number is null."""
    return None if math.isnan(value) else value


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {name: _finite_number(value) for name, value in metrics.items()}


@router.websocket("/v1/ws/translate")
async def ws_translate(websocket: WebSocket) -> None:
    """Serve one translation connection until the client closes it."""
    if not await accept(websocket):
        return
    connection = TranslateConnection(websocket)
    sender = asyncio.create_task(connection.send_all())
    try:
        async for text in received_texts(websocket):
            await connection.handle(text)
    except WebSocketDisconnect:
        pass
    finally:
        connection.close()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await sender
