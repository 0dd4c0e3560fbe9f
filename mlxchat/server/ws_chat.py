"""`/v1/ws/chat`: chat over one WebSocket, several requests per connection, cancel without closing.

Client events: `chat.request` (`id` plus the body of `/v1/chat/completions`) and
`chat.cancel` (`id`). Server events: `chat.delta` (`id`, `delta`), `chat.reasoning` (`id`,
`delta`: the model's thinking, never in `chat.delta`), `chat.progress` (`id`,
tokens so far, tok/s), `chat.done` (`id`, `finish_reason`, `usage`) and `error` (`id` when it
concerns a request, and OpenAI's error object). Requests queue on the engine like HTTP ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from mlxchat.engine.types import Chunk, Progress
from mlxchat.server.errors import APIError
from mlxchat.server.generation import Generation, progress_payload, served_model, start, usage
from mlxchat.server.openai_shapes import tool_call_payload
from mlxchat.server.schemas import ChatRequest, check_body, parse_json
from mlxchat.server.state import model_defaults, state_of
from mlxchat.server.ws_common import accept, received_texts

router = APIRouter()


class ChatConnection:
    """One client's WebSocket: its running requests by id and a lock for sending."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.state = state_of(websocket)
        self.running: dict[str, asyncio.Task[None]] = {}
        self.generations: dict[str, Generation] = {}
        self.send_lock = asyncio.Lock()

    async def send(self, event: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.websocket.send_json(event)

    async def send_error(self, error: APIError, request_id: str | None) -> None:
        await self.send({"type": "error", "id": request_id} | error.envelope())

    async def handle(self, text: str) -> None:
        """Act on one client event; a bad one gets an `error` event."""
        request_id = None
        try:
            message = parse_json(text)
            request_id = message.get("id")
            await self.dispatch(message)
        except APIError as error:
            await self.send_error(error, request_id if isinstance(request_id, str) else None)

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind, request_id = message.get("type"), message.get("id")
        if not isinstance(request_id, str) or not request_id:
            raise APIError(400, "every event needs a non-empty string 'id'", param="id")
        if kind == "chat.request":
            if request_id in self.running:
                raise APIError(400, f"request '{request_id}' is still running", param="id")
            body = check_body(message, ChatRequest)
            task = asyncio.create_task(self.answer(request_id, body))
            self.running[request_id] = task
            task.add_done_callback(lambda _: self.running.pop(request_id, None))
        elif kind == "chat.cancel":
            waiting = self.running.get(request_id)
            if waiting is None:
                raise APIError(400, f"no running request '{request_id}'", param="id")
            generation = self.generations.get(request_id)
            if generation is not None:
                generation.pump.stream.cancel()  # its chat.done says "cancelled"
            else:  # still waiting for the engine
                waiting.cancel()
                done = {"finish_reason": "cancelled", "usage": None}
                await self.send({"type": "chat.done", "id": request_id} | done)
        else:
            raise APIError(
                400, f"unknown event type {kind!r}; use chat.request or chat.cancel", param="type"
            )

    async def answer(self, request_id: str, body: ChatRequest) -> None:
        """Run one request, sending its events; errors go to the client as `error` events."""
        try:
            served_model(self.state, body.model)
            generation = await start(
                self.state,
                body.conversation(),
                body.sampling(self.state.config.defaults, model_defaults(self.state)),
                chat_template=True,
                progress=True,
                gone=_never,
                options=body.with_thinking(body.options(), self.state.config.defaults),
            )
            assert generation is not None
            self.generations[request_id] = generation
            try:
                await self.relay(request_id, generation)
            finally:
                self.generations.pop(request_id, None)
                generation.close()
        except APIError as error:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.send_error(error, request_id)

    async def relay(self, request_id: str, generation: Generation) -> None:
        item = generation.first
        while True:
            if isinstance(item, Progress):
                await self.send(
                    {"type": "chat.progress", "id": request_id} | progress_payload(item)
                )
            elif isinstance(item, Chunk):
                if item.text:
                    kind = "chat.reasoning" if item.channel == "reasoning" else "chat.delta"
                    await self.send({"type": kind, "id": request_id, "delta": item.text})
                if item.tool_call is not None:
                    call = tool_call_payload(item.tool_call)
                    await self.send({"type": "chat.tool_call", "id": request_id, "tool_call": call})
                if item.finish_reason is not None:
                    done = {"finish_reason": item.finish_reason, "usage": usage(item.stats)}
                    await self.send({"type": "chat.done", "id": request_id} | done)
            try:
                item = await generation.next(None)
            except StopAsyncIteration:
                return

    def close(self) -> None:
        """The client left: stop everything it asked for."""
        for task in self.running.values():
            task.cancel()


async def _never() -> bool:
    return False


@router.websocket("/v1/ws/chat")
async def ws_chat(websocket: WebSocket) -> None:
    """Serve one chat connection until the client closes it."""
    if not await accept(websocket):
        return
    connection = ChatConnection(websocket)
    try:
        async for text in received_texts(websocket):
            await connection.handle(text)
    except WebSocketDisconnect:
        pass
    finally:
        connection.close()
