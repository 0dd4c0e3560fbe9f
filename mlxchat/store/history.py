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

Messages form a tree: each follows a parent, and messages sharing a parent are alternatives
(an edited question, a regenerated answer). Each conversation remembers the branch shown,
by the message it ends at (its current leaf); plain `add_message` calls extend that branch.

    history.add_message(cid, "user", "Hello, again", parent_id=None)  # edits the first one
    history.branch(cid)  # [the edited question]: the branch shown
    history.switch_to(cid, history.alternatives(first_id)[0])  # back to the first one
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from mlxchat.engine.types import Role, Stats, ToolCall
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
    tool_calls_to_json,
)

HISTORY_FILE = "history.sqlite3"


class HistoryError(Exception):
    """A history operation failed; the message is one line fit to show the user."""


class _Leaf(enum.Enum):
    CURRENT = "current"


CURRENT_LEAF: Final = _Leaf.CURRENT
"""`add_message`'s default parent: the end of the branch shown."""

_LEAF = (
    "COALESCE((SELECT m.id FROM messages m WHERE m.id = c.current_message_id"
    " AND m.conversation_id = c.id), (SELECT MAX(m.id) FROM messages m"
    " WHERE m.conversation_id = c.id)) AS leaf"
)
"""Conversation `c`'s current leaf (its newest message if none is remembered)."""

_LEAF_SQL = f"SELECT c.title, {_LEAF} FROM conversations c WHERE c.id = ?"

_PATH_SQL = (
    "WITH RECURSIVE path(id) AS (SELECT ? UNION ALL SELECT m.parent_id FROM messages m"
    " JOIN path ON m.id = path.id WHERE m.parent_id < m.id)"
    " SELECT m.* FROM messages m JOIN path USING (id) WHERE m.conversation_id = ? ORDER BY m.id"
)
"""The messages from the first one to a given message (parents have smaller ids)."""

_SUBTREE = (
    "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT m.id FROM messages m"
    " JOIN sub ON m.parent_id = sub.id WHERE m.id > sub.id)"
)
"""A message and everything below it, as the table `sub`."""


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
        parent_id: int | None | _Leaf = CURRENT_LEAF,
        reasoning: str = "",
        tool_calls: Sequence[ToolCall] = (),
        tool_call_id: str | None = None,
        tool_name: str | None = None,
    ) -> int:
        """Save one message (committed before returning) and return its id.

        It becomes the conversation's current leaf: the end of the branch shown. The first
        user message of an untitled conversation becomes its title.

        Args:
            parent_id: The message it follows: by default the current leaf (the branch
                shown goes on); another message starts a branch there; None makes it a first
                message (an alternative to the conversation's first one, if it has one).
            reasoning: The model's thinking, kept apart from `content`.
            tool_calls: The calls an assistant message made.
            tool_call_id: On a "tool" message (a tool's result), the call it answers.
            tool_name: On a "tool" message, the tool's name.

        Raises:
            HistoryError: The conversation does not exist, the parent is not one of its
                messages, or the write failed.
        """
        stamp = now_text()
        with self._write() as conn:
            found = conn.execute(_LEAF_SQL, (conversation_id,)).fetchone()
            if found is None:
                raise HistoryError(f"conversation {conversation_id} does not exist")
            parent = found["leaf"] if isinstance(parent_id, _Leaf) else parent_id
            if parent is not None and parent != found["leaf"]:
                self._message_in(conn, conversation_id, parent)
            cursor = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, created_at, model,"
                " finish_reason, stats, parent_id, reasoning, tool_calls, tool_call_id,"
                " tool_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    role,
                    content,
                    stamp,
                    model,
                    finish_reason,
                    stats_to_json(stats),
                    parent,
                    reasoning,
                    tool_calls_to_json(list(tool_calls)),
                    tool_call_id,
                    tool_name,
                ),
            )
            message_id = int(cursor.lastrowid or 0)
            title = found["title"] or (make_title(content) if role == "user" else "")
            conn.execute(
                "UPDATE conversations SET updated_at = ?, title = ?, current_message_id = ?"
                " WHERE id = ?",
                (stamp, title, message_id, conversation_id),
            )
            return message_id

    @staticmethod
    def _message_in(conn: sqlite3.Connection, conversation_id: int, message_id: int) -> None:
        """Raise HistoryError unless `message_id` is a message of `conversation_id`."""
        row = conn.execute(
            "SELECT 1 FROM messages WHERE id = ? AND conversation_id = ?",
            (message_id, conversation_id),
        ).fetchone()
        if row is None:
            raise HistoryError(f"message {message_id} is not in conversation {conversation_id}")

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
        leaf = conn.execute(_LEAF_SQL, (conversation_id,)).fetchone()["leaf"]
        cursor = conn.execute(
            "INSERT INTO messages (conversation_id, role, content, created_at, parent_id)"
            " VALUES (?, 'system', ?, ?, ?)",
            (conversation_id, prompt, stamp, leaf),
        )
        conn.execute(
            "UPDATE conversations SET first_system_prompt = COALESCE(first_system_prompt, ?),"
            " current_message_id = ? WHERE id = ?",
            (row["system_prompt"], cursor.lastrowid, conversation_id),
        )

    def list_conversations(
        self, limit: int = 50, search: str | None = None
    ) -> list[ConversationSummary]:
        """The most recently updated conversations first.

        Args:
            limit: At most this many.
            search: Keep only those whose title or any message, in any branch, contains
                this text (case-insensitive for ASCII letters).

        `message_count` counts the user and assistant messages of the branch shown.
        """
        where = ""
        params: tuple[str, ...] = ()
        if search and search.strip():
            pattern = _like(search.strip())
            where = (
                "WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages s"
                " WHERE s.conversation_id = c.id AND s.content LIKE ? ESCAPE '\\')"
            )
            params = (pattern, pattern)
        rows = self._read(
            f"WITH RECURSIVE chosen AS (SELECT c.id, c.title, c.model, c.created_at,"
            f" c.updated_at, {_LEAF} FROM conversations c {where}"
            " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?),"
            " path(cid, id, parent_id, role) AS ("
            " SELECT chosen.id, m.id, m.parent_id, m.role FROM chosen"
            " JOIN messages m ON m.id = chosen.leaf"
            " UNION ALL SELECT path.cid, m.id, m.parent_id, m.role FROM path"
            " JOIN messages m ON m.id = path.parent_id WHERE m.id < path.id),"
            " counts AS (SELECT cid, COUNT(*) AS n FROM path WHERE role != 'system' GROUP BY cid)"
            " SELECT chosen.*, COALESCE(counts.n, 0) AS message_count FROM chosen"
            " LEFT JOIN counts ON counts.cid = chosen.id"
            " ORDER BY chosen.updated_at DESC, chosen.id DESC",
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
        """A conversation with the messages of the branch shown, or None if there is none
        with that id."""
        with self._lock:
            found = self._read("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
            if not found:
                return None
            messages = self._branch_rows(conversation_id, None)
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
            current_message_id=messages[-1]["id"] if messages else None,
        )

    def _branch_rows(self, conversation_id: int, leaf_id: int | None) -> list[sqlite3.Row]:
        """The rows from the first message to `leaf_id` (None: the current leaf)."""
        with self._lock:
            found = self._read(_LEAF_SQL, (conversation_id,))
            if not found:
                raise HistoryError(f"conversation {conversation_id} does not exist")
            leaf = found[0]["leaf"] if leaf_id is None else leaf_id
            if leaf is None:
                return []
            rows = self._read(_PATH_SQL, (leaf, conversation_id))
        if not rows or rows[-1]["id"] != leaf:
            raise HistoryError(f"message {leaf} is not in conversation {conversation_id}")
        return rows

    def branch(self, conversation_id: int, leaf_id: int | None = None) -> list[StoredMessage]:
        """The messages from the first one to `leaf_id` (None: the branch shown), oldest first.

        Raises:
            HistoryError: No such conversation, or `leaf_id` is not one of its messages.
        """
        return [message_from_row(row) for row in self._branch_rows(conversation_id, leaf_id)]

    def get_message(self, message_id: int) -> StoredMessage | None:
        """One message, or None if there is none with that id."""
        found = self._read("SELECT * FROM messages WHERE id = ?", (message_id,))
        return message_from_row(found[0]) if found else None

    def alternatives(self, message_id: int) -> list[int]:
        """The ids of the messages sharing this one's parent and role (itself included),
        oldest first: the versions of a question or of an answer.

        Raises:
            HistoryError: There is no message with that id.
        """
        rows = self._read(
            "SELECT s.id FROM messages m JOIN messages s ON s.conversation_id = m.conversation_id"
            " AND s.parent_id IS m.parent_id AND s.role = m.role WHERE m.id = ? ORDER BY s.id",
            (message_id,),
        )
        if not rows:
            raise HistoryError(f"message {message_id} does not exist")
        return [row["id"] for row in rows]

    def alternative_position(self, message_id: int) -> tuple[int, int]:
        """Which of its alternatives a message is, from 1, and how many there are ("2/3")."""
        ids = self.alternatives(message_id)
        return ids.index(message_id) + 1, len(ids)

    def switch_to(self, conversation_id: int, message_id: int, *, descend: bool = True) -> int:
        """Show the branch through `message_id` (remembered) and return where it now ends.

        Args:
            descend: Go on below it to the most recently created message (a leaf); False:
                the branch ends at `message_id` (e.g. to write another answer after it).

        Raises:
            HistoryError: `message_id` is not a message of that conversation.
        """
        with self._write() as conn:
            self._message_in(conn, conversation_id, message_id)
            newest = self._newest_below(conn, conversation_id, message_id) if descend else None
            leaf = newest or message_id
            conn.execute(
                "UPDATE conversations SET current_message_id = ? WHERE id = ?",
                (leaf, conversation_id),
            )
            return leaf

    @staticmethod
    def _newest_below(
        conn: sqlite3.Connection, conversation_id: int, message_id: int | None
    ) -> int | None:
        """The most recently created message at or below `message_id` (None: anywhere in
        the conversation); it is a leaf, since children are newer than their parent."""
        if message_id is None:
            row = conn.execute(
                "SELECT MAX(id) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
        else:
            row = conn.execute(f"{_SUBTREE} SELECT MAX(id) FROM sub", (message_id,)).fetchone()
        return None if row is None else row[0]

    def delete_message(self, message_id: int) -> int:
        """Delete a message and every message below it; return how many were deleted.

        If the branch shown went through it, the newest branch left below its parent is
        shown instead (an alternative to it if there is one, else the branch ends at the
        parent).
        """
        with self._write() as conn:
            row = conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return 0
            conversation_id = row["conversation_id"]
            leaf = conn.execute(_LEAF_SQL, (conversation_id,)).fetchone()["leaf"]
            shown = conn.execute(f"{_SUBTREE} SELECT 1 FROM sub WHERE id = ?", (message_id, leaf))
            moves = shown.fetchone() is not None
            conn.execute(f"{_SUBTREE} DELETE FROM messages WHERE id IN sub", (message_id,))
            deleted = int(conn.execute("SELECT changes()").fetchone()[0])
            if moves:
                leaf = self._newest_below(conn, conversation_id, row["parent_id"])
            conn.execute(
                "UPDATE conversations SET updated_at = ?, current_message_id = ? WHERE id = ?",
                (now_text(), leaf, conversation_id),
            )
            return deleted

    def cut_out(self, message_ids: Sequence[int]) -> None:
        """Take messages out of their branch, each on its own: what hung below one now hangs
        below its parent (deleting an exchange from the middle of a chat keeps the rest).
        A branch shown that ended at one goes on to the newest branch left below its parent
        (another version of it, if there is one)."""
        with self._write() as conn:
            for message_id in message_ids:
                row = conn.execute(
                    "SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)
                ).fetchone()
                if row is None:
                    continue
                parent, conversation_id = row["parent_id"], row["conversation_id"]
                conn.execute(
                    "UPDATE messages SET parent_id = ? WHERE parent_id = ?", (parent, message_id)
                )
                leaf = conn.execute(_LEAF_SQL, (conversation_id,)).fetchone()["leaf"]
                conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
                if leaf == message_id:
                    conn.execute(
                        "UPDATE conversations SET current_message_id = ? WHERE id = ?",
                        (self._newest_below(conn, conversation_id, parent), conversation_id),
                    )

    def delete_conversation(self, conversation_id: int) -> bool:
        """Delete a conversation and its messages; False if there was none."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            return cursor.rowcount > 0

    def delete_last_assistant_message(self, conversation_id: int) -> StoredMessage | None:
        """Delete the last message of the branch shown if it is an answer (for /retry) and
        return it, else None.

        System prompt changes after it stay (moved up to its parent), anything else below
        it goes with it, and the branch shown then ends where the answer was, so the next
        message takes its place.
        """
        with self._write() as conn:
            leaf = conn.execute(_LEAF_SQL, (conversation_id,)).fetchone()
            if leaf is None or leaf["leaf"] is None:
                return None
            path = conn.execute(_PATH_SQL, (leaf["leaf"], conversation_id)).fetchall()
            last = max((i for i, m in enumerate(path) if m["role"] != "system"), default=None)
            if last is None or path[last]["role"] != "assistant":
                return None
            answer, after = path[last], path[last + 1 :]
            if after:
                conn.execute(
                    "UPDATE messages SET parent_id = ? WHERE id = ?",
                    (answer["parent_id"], after[0]["id"]),
                )
            conn.execute(f"{_SUBTREE} DELETE FROM messages WHERE id IN sub", (answer["id"],))
            conn.execute(
                "UPDATE conversations SET updated_at = ?, current_message_id = ? WHERE id = ?",
                (now_text(), after[-1]["id"] if after else answer["parent_id"], conversation_id),
            )
            return message_from_row(answer)

    def export_markdown(self, conversation_id: int) -> str:
        """The conversation as a Markdown transcript of the branch shown.

        Raises:
            HistoryError: There is no conversation with that id.
        """
        conversation = self.get_conversation(conversation_id)
        if conversation is None:
            raise HistoryError(f"conversation {conversation_id} does not exist")
        return conversation_markdown(conversation)
