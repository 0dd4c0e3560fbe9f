"""What the history hands back: plain frozen dataclasses, plus row and JSON conversions."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlxchat.engine.types import Message, Role, Stats, ToolCall

STATS_FIELDS = (
    "prompt_tokens",
    "prompt_tps",
    "generation_tokens",
    "generation_tps",
    "ttft",
    "peak_memory",
)
"""The `Stats` fields kept with each answer (the rest are momentary)."""

TITLE_LIMIT = 60


@dataclass(frozen=True)
class StoredMessage:
    """One saved message.

    Attributes:
        id: Row id (increases in the order messages were added).
        conversation_id: The conversation it belongs to.
        role: "system", "user" or "assistant".
        content: The text, exactly as shown.
        created_at: When it was saved (UTC).
        model: The model that wrote it (assistant messages), else None.
        finish_reason: Why the answer ended ("stop", "length", "cancelled", "error").
        stats: Speed and size numbers of the answer, or None.
        parent_id: The message it follows (None: the first of its conversation). Messages
            sharing a parent are alternatives: an edited question or a regenerated answer.
        reasoning: The model's thinking before the answer ("" for none).
        tool_calls: The calls an assistant message made.
        tool_call_id: On a "tool" message (a tool's result): the call it answers.
        tool_name: On a "tool" message: the tool's name.
    """

    id: int
    conversation_id: int
    role: Role
    content: str
    created_at: datetime
    model: str | None = None
    finish_reason: str | None = None
    stats: Stats | None = None
    parent_id: int | None = None
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None

    def as_message(self) -> Message:
        """The engine message (reasoning included; the prompt builder decides if it goes)."""
        return Message(
            self.role,
            self.content,
            self.reasoning,
            self.tool_calls,
            self.tool_call_id,
            self.tool_name,
        )


@dataclass(frozen=True)
class ConversationSummary:
    """A line of the conversation list (`message_count`: the user and assistant messages of
    the branch shown)."""

    id: int
    title: str
    model: str
    created_at: datetime
    updated_at: datetime
    message_count: int


@dataclass(frozen=True)
class Conversation:
    """A conversation with its settings and the messages of the branch shown, oldest first.

    Messages form a tree (each has a `parent_id`); `messages` is the path from the first
    message to `current_message_id`, the end of the branch last shown. Other branches are
    read with `History.branch`.

    `system_prompt` is the prompt in force now. When it was changed after the first message,
    `first_system_prompt` is the one it started with and each change is a `system` message
    (its content the new prompt, "" when removed) in the order things happened.
    """

    id: int
    title: str
    created_at: datetime
    updated_at: datetime
    model: str
    system_prompt: str
    settings: dict[str, Any] = field(default_factory=dict)
    messages: tuple[StoredMessage, ...] = ()
    first_system_prompt: str | None = None
    current_message_id: int | None = None

    @property
    def opening_system_prompt(self) -> str:
        """The system prompt the conversation started with."""
        return self.system_prompt if self.first_system_prompt is None else self.first_system_prompt

    @property
    def turns(self) -> tuple[StoredMessage, ...]:
        """The user and assistant messages (without the system prompt changes)."""
        return tuple(m for m in self.messages if m.role != "system")

    def chat_messages(self) -> list[Message]:
        """The conversation as engine messages: the system prompt in force (if any), then
        each user and assistant message."""
        head = [Message("system", self.system_prompt)] if self.system_prompt else []
        return head + [m.as_message() for m in self.turns]


def now_text() -> str:
    """The current UTC time as stored (ISO 8601, fixed width, so text order is time order)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    """A stored timestamp back as an aware datetime."""
    return datetime.fromisoformat(text)


def make_title(text: str, limit: int = TITLE_LIMIT) -> str:
    """A one-line title from a message: whitespace collapsed, cut at a word with "…"."""
    line = re.sub(r"\s+", " ", text).strip()
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "…"


def stats_to_json(stats: Stats | None) -> str | None:
    """The kept stats fields as JSON text."""
    if stats is None:
        return None
    return json.dumps({name: getattr(stats, name) for name in STATS_FIELDS})


def stats_from_json(text: str | None) -> Stats | None:
    """Stats back from JSON text; unknown keys (from a later version) are ignored."""
    if not text:
        return None
    data = json.loads(text)
    return Stats(**{k: v for k, v in data.items() if k in STATS_FIELDS})


def message_from_row(row: sqlite3.Row) -> StoredMessage:
    """A `messages` row as a StoredMessage."""
    return StoredMessage(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=row["role"],
        content=row["content"],
        created_at=parse_time(row["created_at"]),
        model=row["model"],
        finish_reason=row["finish_reason"],
        stats=stats_from_json(row["stats"]),
        parent_id=row["parent_id"],
        reasoning=row["reasoning"],
        tool_calls=tool_calls_from_json(row["tool_calls"]),
        tool_call_id=row["tool_call_id"],
        tool_name=row["tool_name"],
    )


def tool_calls_to_json(calls: tuple[ToolCall, ...] | list[ToolCall]) -> str | None:
    """Tool calls as stored (None for none)."""
    if not calls:
        return None
    return json.dumps([{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls])


def tool_calls_from_json(text: str | None) -> tuple[ToolCall, ...]:
    """Stored tool calls back as `ToolCall`s."""
    if not text:
        return ()
    return tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in json.loads(text))
