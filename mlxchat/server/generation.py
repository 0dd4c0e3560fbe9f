"""One request's generation as the server runs it: model check, admission, engine stream.

Shared by the HTTP routes and the WebSocket chat: both start a generation with `start` and
read its events from the returned `Generation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxchat.engine.engine import Prompt
from mlxchat.engine.types import (
    EngineError,
    Progress,
    PromptTooLongError,
    RequestOptions,
    SamplingParams,
    Stats,
)
from mlxchat.server.access_log import count_tokens
from mlxchat.server.errors import APIError, internal_error
from mlxchat.server.pump import TIMEOUT, EventPump
from mlxchat.server.queue import Slot
from mlxchat.server.state import ServerState

log = logging.getLogger("mlxchat.server")

WATCH_INTERVAL = 0.25
"""Seconds between checks that a client still waits while its request is queued."""


def served_model(state: ServerState, requested: str | None) -> str:
    """The id of the loaded model, if `requested` names it (or names nothing).

    Raises:
        APIError: 404 when `requested` is another model.
    """
    info = state.engine.model_info
    if info is None:
        raise APIError(503, "no model is loaded", code="model_not_loaded")
    names = {info.name, info.path, Path(info.name).name}
    wanted = (requested or "").lower()
    aliases = state.config.model_aliases
    aliased = any(fnmatch.fnmatchcase(wanted, alias.lower()) for alias in aliases)
    if requested and not aliased and requested not in names:
        raise APIError(
            404,
            f"model '{requested}' is not served here; this server serves '{info.name}'",
            param="model",
            code="model_not_found",
        )
    return info.name


def usage(stats: Stats) -> dict[str, Any]:
    """OpenAI's `usage` object; cached tokens are the prompt prefix reused from the cache
    (noted for the access log line)."""
    count_tokens(stats)
    prompt = stats.cached_tokens + stats.prompt_tokens
    counts = {
        "prompt_tokens": prompt,
        "completion_tokens": stats.generation_tokens,
        "total_tokens": prompt + stats.generation_tokens,
        "prompt_tokens_details": {"cached_tokens": stats.cached_tokens},
    }
    if stats.draft_tokens:  # mlxchat's own: speculative decoding's guesses and hits
        counts["speculative"] = {
            "draft_tokens": stats.draft_tokens,
            "accepted_tokens": stats.accepted_tokens,
        }
    return counts


def progress_payload(event: Progress) -> dict[str, Any]:
    """A `Progress` event for clients: tokens so far and speeds (prompt counts in prefill)."""
    stats = event.stats
    payload: dict[str, Any] = {"object": "chat.completion.progress", "phase": event.phase}
    if event.phase == "prefill":
        payload |= {
            "prompt_tokens_done": event.prompt_done,
            "prompt_tokens_total": event.prompt_total,
        }
    return payload | {
        "completion_tokens": stats.generation_tokens,
        "tokens_per_second": round(stats.generation_tps, 2),
        "prompt_tokens_per_second": round(stats.prompt_tps, 2),
    }


def api_error(error: BaseException, prompt_param: str = "messages") -> APIError:
    """What the client is told about an engine failure (`prompt_param`: the request field
    that holds the prompt, named when it is too long)."""
    if isinstance(error, PromptTooLongError):
        return APIError(400, str(error), param=prompt_param, code="context_length_exceeded")
    if isinstance(error, EngineError):
        return APIError(400, str(error), param=getattr(error, "param", None))
    log.error("generation failed", exc_info=error)
    return internal_error()


@dataclass
class Generation:
    """A running request: its events (`pump`), the first one, and its queue place."""

    pump: EventPump
    first: Any
    slot: Slot
    prompt_param: str = "messages"

    async def next(self, timeout: float | None) -> Any:
        """The next event, `TIMEOUT`, or StopAsyncIteration at the end (errors as APIError)."""
        try:
            return await self.pump.next(timeout)
        except StopAsyncIteration:
            raise
        except Exception as error:
            raise api_error(error, self.prompt_param) from None

    def close(self) -> None:
        """Stop the request if it still runs and give its queue place back."""
        self.pump.close()
        self.slot.release()


async def _wait_turn(slot: Slot, gone: Callable[[], Awaitable[bool]]) -> bool:
    """Wait for a running place; False when the client left meanwhile."""
    turn = asyncio.ensure_future(slot.turn())
    try:
        while True:
            done, _ = await asyncio.wait({turn}, timeout=WATCH_INTERVAL)
            if done:
                turn.result()
                return True
            if await gone():
                return False
    finally:
        if not turn.done():
            turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await turn


async def start(
    state: ServerState,
    prompt: Prompt,
    params: SamplingParams,
    *,
    chat_template: bool,
    progress: bool,
    gone: Callable[[], Awaitable[bool]],
    prompt_param: str = "messages",
    options: RequestOptions | None = None,
) -> Generation | None:
    """Queue a generation and wait for its first event.

    Waiting for the first event lets a refused request (a prompt longer than the context)
    still answer with an error status. Returns None when the client went away meanwhile.

    Raises:
        APIError: 429 when the queue is full, 400 for a prompt the engine refuses.
    """
    slot = state.queue.admit()
    try:
        if not await _wait_turn(slot, gone):
            slot.release()
            return None
    except BaseException:
        slot.release()
        raise
    stream = state.engine.stream(
        prompt,
        params,
        session=None,  # the prompt cache's entry with the longest shared prefix
        chat_template=chat_template,
        max_context=state.config.defaults.max_context,
        progress=progress,
        options=options,
    )
    generation = Generation(EventPump(stream), None, slot, prompt_param)
    try:
        while (first := await generation.next(WATCH_INTERVAL)) is TIMEOUT:
            if await gone():
                generation.close()
                return None
    except BaseException:
        generation.close()
        raise
    generation.first = first
    return generation
