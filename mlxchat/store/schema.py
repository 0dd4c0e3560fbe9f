"""The history database schema and its migrations, versioned with `PRAGMA user_version`.

`MIGRATIONS[i]` upgrades a database from version `i` to `i + 1`; version 0 is an empty
file. To change the schema, append a function and never edit one already released.
Each step runs in its own `BEGIN IMMEDIATE` transaction together with the version bump,
so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

Migration = Callable[[sqlite3.Connection], None]

_V1 = (
    """
    CREATE TABLE conversations (
        id            INTEGER PRIMARY KEY,
        title         TEXT NOT NULL DEFAULT '',
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        model         TEXT NOT NULL DEFAULT '',
        system_prompt TEXT NOT NULL DEFAULT '',
        settings      TEXT NOT NULL DEFAULT '{}'
    )
    """,
    """
    CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content         TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        model           TEXT,
        finish_reason   TEXT,
        stats           TEXT
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages(conversation_id, id)",
    "CREATE INDEX conversations_by_updated ON conversations(updated_at, id)",
)


def _v1_initial(conn: sqlite3.Connection) -> None:
    """Version 1: conversations and messages (settings and stats are JSON text)."""
    for statement in _V1:
        conn.execute(statement)


def _v2_system_prompt_changes(conn: sqlite3.Connection) -> None:
    """Version 2: `first_system_prompt`, the prompt a conversation started with once it was
    changed (NULL: never changed); each change is then a `system` message in its place."""
    conn.execute("ALTER TABLE conversations ADD COLUMN first_system_prompt TEXT")


def _v3_branches(conn: sqlite3.Connection) -> None:
    """Version 3: messages form a tree, so an edited question or a regenerated answer starts
    a branch and every branch is kept.

    `messages.parent_id` is the message before it (NULL: the first of a conversation); a
    parent always has a smaller id than its children. `conversations.current_message_id` is
    the message the shown branch ends at (NULL: no messages). Existing messages become one
    chain in id order, ending at the newest, so every v2 conversation reads as before.
    """
    conn.execute("ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id)")
    conn.execute("ALTER TABLE conversations ADD COLUMN current_message_id INTEGER")
    conn.execute(
        "UPDATE messages SET parent_id = (SELECT MAX(p.id) FROM messages p"
        " WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id)"
    )
    conn.execute(
        "UPDATE conversations SET current_message_id ="
        " (SELECT MAX(m.id) FROM messages m WHERE m.conversation_id = conversations.id)"
    )
    conn.execute("CREATE INDEX messages_by_parent ON messages(parent_id)")


_V4_MESSAGES = """
    CREATE TABLE messages_v4 (
        id              INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        content         TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        model           TEXT,
        finish_reason   TEXT,
        stats           TEXT,
        parent_id       INTEGER REFERENCES messages(id),
        reasoning       TEXT NOT NULL DEFAULT '',
        tool_calls      TEXT,
        tool_call_id    TEXT,
        tool_name       TEXT
    )
"""
_V3_COLUMNS = (
    "id, conversation_id, role, content, created_at, model, finish_reason, stats, parent_id"
)


def _v4_reasoning_and_tools(conn: sqlite3.Connection) -> None:
    """Version 4: an answer's reasoning kept apart from its text, and tool calls.

    `messages.reasoning` is the model's thinking ('' for none); `tool_calls` a JSON list of
    `{"id", "name", "arguments"}` on an assistant message (NULL: none); a `tool` message (a
    new role) is a tool's result, `tool_call_id` naming the call and `tool_name` the tool.
    SQLite cannot alter a CHECK, so the table is rebuilt: every row keeps its id and values.
    """
    conn.execute(_V4_MESSAGES)
    conn.execute(f"INSERT INTO messages_v4 ({_V3_COLUMNS}) SELECT {_V3_COLUMNS} FROM messages")
    conn.execute("DROP TABLE messages")
    conn.execute("ALTER TABLE messages_v4 RENAME TO messages")
    conn.execute("CREATE INDEX messages_by_conversation ON messages(conversation_id, id)")
    conn.execute("CREATE INDEX messages_by_parent ON messages(parent_id)")
    if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
        raise sqlite3.IntegrityError("the rebuilt messages table breaks a reference")


MIGRATIONS: tuple[Migration, ...] = (
    _v1_initial,
    _v2_system_prompt_changes,
    _v3_branches,
    _v4_reasoning_and_tools,
)
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the database header."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring `conn` (opened with `isolation_level=None`) up to `len(migrations)`.

    Args:
        conn: An autocommit connection; each step opens its own transaction.
        migrations: The steps; `migrations[i]` goes from version i to i + 1.

    Returns:
        The version the database is at afterwards.
    """
    target = len(migrations)
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")  # a step may rebuild a table (checked in it)
    try:
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = user_version(conn)  # re-read under the lock: another may have won
                if version >= target:
                    conn.execute("ROLLBACK")
                    return version
                migrations[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    finally:
        conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")
