"""Saved chat history in SQLite: conversations and their messages.

Every write is its own transaction, committed (and synced) before the call returns, so
killing the program loses nothing already added. The UI calls it from the asyncio thread;
a lock makes it safe from other threads too (calls are short: one small transaction).

    history = History.open(locations.data_dir() / "history.sqlite3")
    if history.notice:
        show(history.notice)  # e.g. "history is not saved: ..."
    cid = history.new_conversation(model="demo", system_prompt="Be brief.")
    history.add_message(cid, "user", "Hello")
    history.add_message(cid, "assistant", "Hi!", model="demo", finish_reason="stop")
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlxchat.engine.types import Role, Stats
from mlxchat.store.markdown import conversation_markdown
from mlxchat.store.opening import connect_memory, open_database, reason
from mlxchat.store.records import (
    Conversation,
    ConversationSummary,
    StoredMessage,
    make_title,
    message_from_row,
    now_text,
    parse_time,
    stats_to_json,
)

HISTORY_FILE = "history.sqlite3"


class HistoryError(Exception):
    """A history operation failed; the message is one line fit to show the user."""


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with % _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class History:
    """The chat history database (a file, or memory when the file cannot be used).

    Attributes:
        path: The database file, or None when history lives in memory only.
        notice: One line for the user when something went wrong opening the file
            (moved a damaged file aside, or history is not saved), else None.
    """

    def __init__(
        self, conn: sqlite3.Connection, path: Path | None = None, notice: str | None = None
    ) -> None:
        """Wrap an open, migrated connection; use `History.open` or `History.in_memory`."""
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path
        self.notice = notice

    @classmethod
    def open(cls, path: Path | str) -> History:
        """Open (creating or migrating) the history file at `path`; never raises for a bad file.

        A damaged file is renamed to `<name>.corrupt-<timestamp>` and a new one started; a
        file that cannot be written, or one from a newer mlxchat, is left alone and history
        is kept in memory. Either way `notice` says what happened.
        """
        path = Path(path).expanduser()
        conn, on_disk, notice = open_database(path)
        return cls(conn, path if on_disk else None, notice)

    @classmethod
    def in_memory(cls, notice: str | None = None) -> History:
        """A history that lives only as long as this process."""
        return cls(connect_memory(), None, notice)

    @property
    def persistent(self) -> bool:
        """Whether history is saved to a file."""
        return self.path is not None

    def close(self) -> None:
        """Close the database (a WAL checkpoint happens on close)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; sqlite errors become HistoryError."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as error:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(error, sqlite3.Error):
                    raise HistoryError(f"history could not be saved: {reason(error)}") from error
                raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as error:
                raise HistoryError(f"history could not be read: {reason(error)}") from error

    def new_conversation(
        self,
        *,
        title: str = "",
        model: str = "",
        system_prompt: str = "",
        settings: Mapping[str, Any] | None = None,
    ) -> int:
        """Start a conversation and return its id.

        Args:
            title: Its title; left empty, the first user message sets it.
            model: The model it is held with.
            system_prompt: The system prompt in force.
            settings: Sampling and other settings to remember (JSON-serialisable).
        """
        stamp = now_text()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO conversations (title, created_at, updated_at, model, system_prompt,"
                " settings) VALUES (?, ?, ?, ?, ?, ?)",
                (make_title(title), stamp, stamp, model, system_prompt, json.dumps(settings or {})),
            )
            return int(cursor.lastrowid or 0)

    def add_message(
        self,
        conversation_id: int,
        role: Role,
        content: str,
        *,
        model: str | None = None,
        finish_reason: str | None = None,
        stats: Stats | None = None,
    ) -> int:
        """Save one message (committed before returning) and return its id.

        The first user message of an untitled conversation becomes its title.

        Raises:
            HistoryError: The conversation does not exist, or the write failed.
        """
        stamp = now_text()
        with self._write() as conn:
            found = conn.execute(
                "SELECT title FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if found is None:
                raise HistoryError(f"conversation {conversation_id} does not exist")
            cursor = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, created_at, model,"
                " finish_reason, stats) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, stamp, model, finish_reason, stats_to_json(stats)),
            )
            title = found["title"] or (make_title(content) if role == "user" else "")
            conn.execute(
                "UPDATE conversations SET updated_at = ?, title = ? WHERE id = ?",
                (stamp, title, conversation_id),
            )
            return int(cursor.lastrowid or 0)

    def set_title(self, conversation_id: int, title: str) -> None:
        """Rename a conversation (whitespace collapsed, long titles cut)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE conversations SET title = ? WHERE id = ?",
                (make_title(title), conversation_id),
            )

    def update_conversation(
        self,
        conversation_id: int,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Change the model, system prompt and/or settings (None leaves one as it is).

        A system prompt changed after the first message is also saved as a `system`
        message, so that an export shows it where it happened.
        """
        changes: dict[str, Any] = {}
        if model is not None:
            changes["model"] = model
        if system_prompt is not None:
            changes["system_prompt"] = system_prompt
        if settings is not None:
            changes["settings"] = json.dumps(dict(settings))
        if not changes:
            return
        assignments = ", ".join(f"{column} = ?" for column in changes)
        stamp = now_text()
        with self._write() as conn:
            if system_prompt is not None:
                self._record_system_prompt_change(conn, conversation_id, system_prompt, stamp)
            conn.execute(
                f"UPDATE conversations SET {assignments}, updated_at = ? WHERE id = ?",
                (*changes.values(), stamp, conversation_id),
            )

    @staticmethod
    def _record_system_prompt_change(
        conn: sqlite3.Connection, conversation_id: int, prompt: str, stamp: str
    ) -> None:
        row = conn.execute(
            "SELECT system_prompt, EXISTS (SELECT 1 FROM messages WHERE conversation_id = ?)"
            " AS started FROM conversations WHERE id = ?",
            (conversation_id, conversation_id),
        ).fetchone()
        if row is None or not row["started"] or row["system_prompt"] == prompt:
            return
        conn.execute(
            "UPDATE conversations SET first_system_prompt = COALESCE(first_system_prompt, ?)"
            " WHERE id = ?",
            (row["system_prompt"], conversation_id),
        )
        conn.execute(
            "INSERT INTO messages (conversation_id, role, content, created_at)"
            " VALUES (?, 'system', ?, ?)",
            (conversation_id, prompt, stamp),
        )

    def list_conversations(
        self, limit: int = 50, search: str | None = None
    ) -> list[ConversationSummary]:
        """The most recently updated conversations first.

        Args:
            limit: At most this many.
            search: Keep only those whose title or any message contains this text
                (case-insensitive for ASCII letters).
        """
        where, params = "", ()
        if search and search.strip():
            pattern = _like(search.strip())
            where = (
                "WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages s"
                " WHERE s.conversation_id = c.id AND s.content LIKE ? ESCAPE '\\')"
            )
            params = (pattern, pattern)
        rows = self._read(
            "SELECT c.id, c.title, c.model, c.created_at, c.updated_at,"
            " (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id"
            " AND m.role != 'system') AS message_count"
            f" FROM conversations c {where} ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
            (*params, limit),
        )
        return [
            ConversationSummary(
                id=row["id"],
                title=row["title"],
                model=row["model"],
                created_at=parse_time(row["created_at"]),
                updated_at=parse_time(row["updated_at"]),
                message_count=row["message_count"],
            )
            for row in rows
        ]

    def get_conversation(self, conversation_id: int) -> Conversation | None:
        """A conversation with all its messages, or None if there is none with that id."""
        with self._lock:
            found = self._read("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
            if not found:
                return None
            messages = self._read(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
            )
        row = found[0]
        return Conversation(
            id=row["id"],
            title=row["title"],
            created_at=parse_time(row["created_at"]),
            updated_at=parse_time(row["updated_at"]),
            model=row["model"],
            system_prompt=row["system_prompt"],
            settings=json.loads(row["settings"] or "{}"),
            messages=tuple(message_from_row(m) for m in messages),
            first_system_prompt=row["first_system_prompt"],
        )

    def delete_conversation(self, conversation_id: int) -> bool:
        """Delete a conversation and its messages; False if there was none."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            return cursor.rowcount > 0

    def delete_last_assistant_message(self, conversation_id: int) -> StoredMessage | None:
        """Delete the last message if it is an answer (for /retry) and return it, else None."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM messages WHERE conversation_id = ? AND role != 'system'"
                " ORDER BY id DESC LIMIT 1",
                (conversation_id,),
            ).fetchone()
            if row is None or row["role"] != "assistant":
                return None
            conn.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?",
                (now_text(), conversation_id),
            )
            return message_from_row(row)

    def export_markdown(self, conversation_id: int) -> str:
        """The conversation as a Markdown transcript.

        Raises:
            HistoryError: There is no conversation with that id.
        """
        conversation = self.get_conversation(conversation_id)
        if conversation is None:
            raise HistoryError(f"conversation {conversation_id} does not exist")
        return conversation_markdown(conversation)
