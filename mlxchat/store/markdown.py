"""A conversation as a Markdown transcript: title, model, date, then each message of the
branch shown (other branches are left out).

Stored text goes through `mlxchat.text.sanitize`, so a transcript shown in a terminal
(`cat chat.md`) cannot act on it or reorder its text.
"""

from __future__ import annotations

import re
from datetime import datetime

from mlxchat.store.records import Conversation, StoredMessage
from mlxchat.text import sanitize

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ROLE_HEADINGS = {
    "system": "System",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool result",
}
_ENDINGS = {
    "length": "cut off at the token limit",
    "cancelled": "stopped",
    "error": "ended by an error",
}


def open_fence(text: str) -> str | None:
    """The fence (e.g. "```") left open at the end of `text`, or None if all are closed."""
    fence: str | None = None
    for line in text.splitlines():
        fence = _fence_after(fence, line)
    return fence


def _fence_after(fence: str | None, line: str) -> str | None:
    """The fence open after `line`, given the one open before it (None: none)."""
    match = _FENCE.match(line)
    if not match:
        return fence
    marker = match.group(1)
    if fence is None:
        return marker
    closes = marker[0] == fence[0] and len(marker) >= len(fence)
    return None if closes and not line.strip()[len(marker) :] else fence


def _body(content: str) -> str:
    """The message text (escaped), with a closing fence added if the answer stopped in code
    and a blank line after each code block that text follows at once."""
    if not content.strip():
        return "*(no text)*"
    body = _space_after_code(sanitize(content).rstrip("\n"))
    fence = open_fence(body)
    return f"{body}\n{fence}" if fence else body


def _space_after_code(text: str) -> str:
    """`text` with a blank line between a closing fence and a line of text right after it."""
    out: list[str] = []
    fence: str | None = None
    closed = False
    for line in text.split("\n"):
        if closed and line.strip():
            out.append("")
        out.append(line)
        before, fence = fence, _fence_after(fence, line)
        closed = before is not None and fence is None
    return "\n".join(out)


def _reasoning(reasoning: str | None) -> str:
    """An answer's reasoning as a folded `<details>` block before its text ("" for none)."""
    if not reasoning or not reasoning.strip():
        return ""
    body = sanitize(reasoning.strip())
    fence = open_fence(body)
    body = f"{body}\n{fence}" if fence else body
    return f"<details>\n<summary>Thinking</summary>\n\n{body}\n\n</details>\n\n"


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def _footer(message: StoredMessage) -> str | None:
    parts: list[str] = []
    stats = message.stats
    if stats is not None and stats.generation_tokens:
        parts.append(f"{stats.generation_tokens} tokens")
        if stats.generation_tps:
            parts.append(f"{stats.generation_tps:.1f} tok/s")
        if stats.ttft:
            parts.append(f"first token after {stats.ttft:.2f} s")
    ending = _ENDINGS.get(message.finish_reason or "")
    if ending:
        parts.append(ending)
    return f"*{' · '.join(parts)}*" if parts else None


def _message_section(message: StoredMessage, conversation_model: str) -> str:
    heading = _ROLE_HEADINGS.get(message.role, message.role.title())
    if message.role == "assistant" and message.model and message.model != conversation_model:
        heading += f" ({sanitize(message.model, one_line=True)})"
    if message.role == "tool" and message.tool_name:
        heading += f" ({sanitize(message.tool_name, one_line=True)})"
    body = _body(message.content) if message.content or not message.tool_calls else ""
    for call in message.tool_calls:
        arguments = sanitize(call.arguments or "{}").replace("```", "`​``")
        name = sanitize(call.name, one_line=True)
        body += f"\n\n**Tool call** `{name}`\n\n```json\n{arguments}\n```"
    section = f"## {heading}\n\n{_reasoning(message.reasoning)}{body.strip()}\n"
    footer = _footer(message)
    return f"{section}\n{footer}\n" if footer else section


def conversation_markdown(conversation: Conversation) -> str:
    """The conversation (its branch shown) as Markdown; text and code are kept as written."""
    title = sanitize(conversation.title, one_line=True) or "Untitled conversation"
    lines = [f"# {title}", ""]
    if conversation.model:
        lines.append(f"- **Model:** `{sanitize(conversation.model, one_line=True)}`")
    lines.append(f"- **Started:** {_when(conversation.created_at)}")
    lines.append(f"- **Messages:** {len(conversation.turns)}")
    sections = ["\n".join(lines) + "\n"]
    if conversation.opening_system_prompt:
        sections.append(_system_section(conversation.opening_system_prompt))
    sections += [
        _system_section(m.content, changed=True)
        if m.role == "system"
        else _message_section(m, conversation.model)
        for m in conversation.messages
    ]
    return "\n".join(sections)


def _system_section(prompt: str, *, changed: bool = False) -> str:
    """The system prompt; `changed`: set (or removed) at this point of the conversation."""
    if not prompt:
        return "## System prompt removed\n"
    heading = "System prompt changed" if changed else "System prompt"
    return f"## {heading}\n\n{_body(prompt)}\n"
