"""Conversations as trees of branches (schema v3): real SQLite files, no mocks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxchat.engine.types import Role, ToolCall
from mlxchat.store import SCHEMA_VERSION, History, HistoryError
from mlxchat.store.markdown import conversation_markdown
from mlxchat.store.records import Conversation, message_from_row, parse_time

# The schema as mlxchat wrote it at version 2 (schema.py's steps 1 and 2, frozen here).
V2_SCHEMA = (
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
    "ALTER TABLE conversations ADD COLUMN first_system_prompt TEXT",
    "PRAGMA user_version = 2",
)

STAMP = "2026-01-0{}T10:00:00.000000+00:00"
# (conversation, role, content, model, finish_reason, stats) in the order v2 saved them:
# the two chats are interleaved, so a chat's ids are not consecutive.
V2_MESSAGES = [
    (1, "user", "What is a KV cache?", None, None, None),
    (2, "user", "Hola", None, None, None),
    (1, "assistant", "It keeps keys and values.", "demo", "stop", '{"generation_tokens": 5}'),
    (2, "assistant", "¡Hola!", "demo", "cancelled", None),
    (1, "system", "You are a pirate.", None, None, None),
    (1, "user", "And now?", None, None, None),
    (1, "assistant", "Arr, keys and values.", "other", "length", None),
]
OLD_COLUMNS = "id, conversation_id, role, content, created_at, model, finish_reason, stats"


def write_v2_file(path: Path) -> None:
    """A version-2 history file with three chats, written as mlxchat 2 wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in V2_SCHEMA:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO conversations (title, created_at, updated_at, model, system_prompt,"
        " settings, first_system_prompt) VALUES (?, ?, ?, 'demo', ?, ?, ?)",
        [
            ("What is a KV cache?", STAMP.format(1), STAMP.format(5), "You are a pirate.",
             '{"temp": 0.2}', "Be brief."),
            ("Hola", STAMP.format(2), STAMP.format(4), "", "{}", None),
            ("Empty", STAMP.format(3), STAMP.format(3), "", "{}", None),
        ],
    )  # fmt: skip
    for n, (cid, role, content, model, finish, stats) in enumerate(V2_MESSAGES):
        conn.execute(
            "INSERT INTO messages (conversation_id, role, content, created_at, model,"
            " finish_reason, stats) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cid, role, content, STAMP.format(n % 9 + 1), model, finish, stats),
        )
    conn.close()


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the file through a separate connection: what is really on disk."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def history(db_path: Path) -> Iterator[History]:
    h = History.open(db_path)
    assert h.notice is None and h.persistent
    yield h
    h.close()


def say(history: History, cid: int, *texts: str) -> list[int]:
    """Add messages after the branch shown, user and assistant in turn; their ids."""
    roles: tuple[Role, Role] = ("user", "assistant")
    return [history.add_message(cid, roles[n % 2], text) for n, text in enumerate(texts)]


def shown(history: History, cid: int) -> list[str]:
    return [m.content for m in history.branch(cid)]


# --- migration ------------------------------------------------------------------------------


def test_a_version_2_file_migrates_to_one_chain_per_chat_losslessly(db_path: Path) -> None:
    write_v2_file(db_path)
    before = rows(db_path, f"SELECT {OLD_COLUMNS} FROM messages ORDER BY id")
    old_chats = rows(db_path, "SELECT * FROM conversations ORDER BY id")

    with History.open(db_path) as history:
        assert history.notice is None and history.persistent
        assert rows(db_path, "PRAGMA user_version") == [(4,)] and SCHEMA_VERSION == 4
        # every old column and row is as it was
        assert rows(db_path, f"SELECT {OLD_COLUMNS} FROM messages ORDER BY id") == before
        assert [r[:8] for r in rows(db_path, "SELECT * FROM conversations ORDER BY id")] == [
            r[:8] for r in old_chats
        ]
        # each chat is one chain in its old order, shown up to its newest message
        assert rows(db_path, "SELECT id, parent_id FROM messages ORDER BY id") == [
            (1, None), (2, None), (3, 1), (4, 2), (5, 3), (6, 5), (7, 6),
        ]  # fmt: skip
        assert rows(db_path, "SELECT id, current_message_id FROM conversations") == [
            (1, 7), (2, 4), (3, None),
        ]  # fmt: skip
        first = history.get_conversation(1)
        assert first is not None and first.current_message_id == 7
        assert [m.id for m in first.messages] == [1, 3, 5, 6, 7]
        assert [m.id for m in history.branch(2)] == [2, 4] and history.branch(3) == []
        assert [(c.id, c.message_count) for c in history.list_conversations()] == [
            (1, 4), (2, 2), (3, 0),
        ]  # fmt: skip

        # the export is what version 2 made of the same rows (all of them, in id order)
        conn = sqlite3.connect(db_path)
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM messages WHERE conversation_id = 1 ORDER BY id")
        old = [message_from_row(r) for r in found]
        conn.close()
        as_v2 = Conversation(
            id=1,
            title="What is a KV cache?",
            created_at=parse_time(STAMP.format(1)),
            updated_at=parse_time(STAMP.format(5)),
            model="demo",
            system_prompt="You are a pirate.",
            messages=tuple(old),
            first_system_prompt="Be brief.",
        )
        assert history.export_markdown(1) == conversation_markdown(as_v2)
        assert "## System prompt changed\n\nYou are a pirate." in history.export_markdown(1)

        # and the chat goes on from where it was
        new = history.add_message(2, "user", "¿Qué tal?")
        assert [m.id for m in history.branch(2)] == [2, 4, new]


def test_a_failing_migration_leaves_the_version_2_file_as_it_was(db_path: Path) -> None:
    write_v2_file(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE INDEX messages_by_parent ON messages(role)")  # v3's last step fails
    conn.commit()
    conn.close()
    before = rows(db_path, "SELECT * FROM messages ORDER BY id")

    with History.open(db_path) as history:
        assert not history.persistent  # history goes on in memory, the file is left alone
        assert history.notice is not None and "messages_by_parent" in history.notice
    assert rows(db_path, "PRAGMA user_version") == [(2,)]
    columns = {r[1] for r in rows(db_path, "PRAGMA table_info(messages)")}
    assert "parent_id" not in columns  # the ALTERs before the failure were rolled back
    assert rows(db_path, "SELECT * FROM messages ORDER BY id") == before


def test_a_file_newer_than_version_4_is_refused_with_the_usual_notice(db_path: Path) -> None:
    write_v2_file(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    with History.open(db_path) as history:
        assert not history.persistent and history.notice is not None
        assert "newer mlxchat (schema 5, this one reads up to 4)" in history.notice
    assert rows(db_path, "PRAGMA user_version") == [(5,)]


# --- branching --------------------------------------------------------------------------------


def test_editing_a_question_starts_a_branch_and_keeps_the_old_one(
    history: History, db_path: Path
) -> None:
    cid = history.new_conversation()
    q1, a1, q2, a2 = say(history, cid, "Q1", "A1", "Q2", "A2")

    q2b = history.add_message(cid, "user", "Q2 edited", parent_id=a1)
    a2b = history.add_message(cid, "assistant", "A2 for the edit")
    assert shown(history, cid) == ["Q1", "A1", "Q2 edited", "A2 for the edit"]
    assert [m.content for m in history.branch(cid, a2)] == ["Q1", "A1", "Q2", "A2"]
    assert history.alternatives(q2b) == history.alternatives(q2) == [q2, q2b]
    assert history.alternatives(a2b) == [a2b]  # the edit has its own answer
    assert rows(db_path, "SELECT id, parent_id FROM messages ORDER BY id") == [
        (q1, None), (a1, q1), (q2, a1), (a2, q2), (q2b, a1), (a2b, q2b),
    ]  # fmt: skip

    q1b = history.add_message(cid, "user", "Q1 edited", parent_id=None)  # the first one too
    assert shown(history, cid) == ["Q1 edited"]
    assert history.alternatives(q1) == [q1, q1b]
    assert history.get_conversation(cid).title == "Q1"  # type: ignore[union-attr]


def test_regenerating_an_answer_adds_a_sibling_answer(history: History) -> None:
    cid = history.new_conversation()
    q1, a1 = say(history, cid, "Q1", "A1")
    assert history.switch_to(cid, q1, descend=False) == q1
    assert shown(history, cid) == ["Q1"]
    a1b = history.add_message(cid, "assistant", "A1 again", finish_reason="stop")
    assert shown(history, cid) == ["Q1", "A1 again"]
    assert history.alternatives(a1) == [a1, a1b]
    assert history.get_message(a1b).parent_id == q1  # type: ignore[union-attr]


def test_a_parent_from_another_chat_is_refused(history: History, db_path: Path) -> None:
    one, two = history.new_conversation(), history.new_conversation()
    (q,) = say(history, one, "in chat one")
    with pytest.raises(HistoryError, match=f"message {q} is not in conversation {two}"):
        history.add_message(two, "user", "lost", parent_id=q)
    with pytest.raises(HistoryError):
        history.branch(two, q)
    with pytest.raises(HistoryError):
        history.switch_to(two, q)
    assert rows(db_path, "SELECT count(*) FROM messages") == [(1,)]


def test_switching_branches_is_remembered_after_reopening(db_path: Path) -> None:
    with History.open(db_path) as history:
        cid = history.new_conversation()
        _, a1, q2, _, q3, a3 = say(history, cid, "Q1", "A1", "Q2", "A2", "Q3", "A3")
        history.add_message(cid, "user", "Q2 edited", parent_id=a1)
        history.add_message(cid, "assistant", "A2 edited")
        assert [c.message_count for c in history.list_conversations()] == [4]

        assert history.switch_to(cid, q2) == a3  # on to the newest message below it
        assert shown(history, cid) == ["Q1", "A1", "Q2", "A2", "Q3", "A3"]
        assert [c.message_count for c in history.list_conversations()] == [6]  # the shown one

        history.switch_to(cid, q3, descend=False)  # regenerate A3 twice: the newest wins
        a3b = history.add_message(cid, "assistant", "A3 again")
        history.switch_to(cid, a3)
        assert history.switch_to(cid, q2) == a3b

    with History.open(db_path) as again:  # a new History on the same file
        conversation = again.get_conversation(cid)
        assert conversation is not None and conversation.current_message_id == a3b
        assert [m.content for m in conversation.messages] == [
            "Q1", "A1", "Q2", "A2", "Q3", "A3 again",
        ]  # fmt: skip
        assert shown(again, cid) == [m.content for m in conversation.messages]


def test_alternatives_are_oldest_first_with_positions(history: History) -> None:
    cid = history.new_conversation()
    (q,) = say(history, cid, "Q")
    answers = []
    for n in range(3):
        history.switch_to(cid, q, descend=False)
        answers.append(history.add_message(cid, "assistant", f"A{n}"))
    history.switch_to(cid, q, descend=False)
    history.update_conversation(cid, system_prompt="changed")  # a system message below q
    assert history.get_message(history.branch(cid)[-1].id).parent_id == q  # type: ignore[union-attr]
    assert history.alternatives(answers[1]) == answers
    assert [history.alternative_position(a) for a in answers] == [(1, 3), (2, 3), (3, 3)]
    assert history.alternative_position(q) == (1, 1)
    with pytest.raises(HistoryError, match="message 999 does not exist"):
        history.alternatives(999)


# --- deleting ----------------------------------------------------------------------------------


def test_deleting_a_message_deletes_its_subtree(history: History, db_path: Path) -> None:
    cid = history.new_conversation()
    _, a1, q2, _ = say(history, cid, "Q1", "A1", "Q2", "A2")
    q2b = history.add_message(cid, "user", "Q2 edited", parent_id=a1)
    say(history, cid, "A2 edited", "Q3 edited", "A3 edited")
    q2c = history.add_message(cid, "user", "Q2 third", parent_id=a1)
    q1b = history.add_message(cid, "user", "Q1 edited", parent_id=None)  # the newest message

    history.switch_to(cid, q2b)
    assert history.delete_message(q2b) == 4  # it and the 3 messages below it
    contents = {r[0] for r in rows(db_path, "SELECT content FROM messages")}
    assert contents == {"Q1", "A1", "Q2", "A2", "Q2 third", "Q1 edited"}
    # the branch shown went through it: the newest branch left below its parent is shown
    assert shown(history, cid) == ["Q1", "A1", "Q2 third"]
    assert history.alternatives(q2) == [q2, q2c]

    history.switch_to(cid, q2)
    assert history.delete_message(q2c) == 1  # not shown: the branch shown stays
    assert shown(history, cid) == ["Q1", "A1", "Q2", "A2"]
    assert history.delete_message(q2) == 2  # no alternative left: it ends at the parent
    assert shown(history, cid) == ["Q1", "A1"]
    assert history.delete_message(q2) == 0
    assert history.delete_message(history.branch(cid)[0].id) == 2
    assert shown(history, cid) == ["Q1 edited"]  # the first message's alternative
    assert history.delete_message(q1b) == 1
    assert history.branch(cid) == [] and rows(db_path, "SELECT count(*) FROM messages") == [(0,)]
    assert [c.message_count for c in history.list_conversations()] == [0]


def test_deleting_a_chat_with_branches_and_a_long_chain(history: History, db_path: Path) -> None:
    cid = history.new_conversation()
    _, a1, _, _ = say(history, cid, "Q1", "A1", "Q2", "A2")
    history.add_message(cid, "user", "Q2 edited", parent_id=a1)
    assert history.delete_conversation(cid) is True
    assert rows(db_path, "SELECT count(*) FROM messages") == [(0,)]

    long = History.in_memory()  # deeper than SQLite's trigger and recursion limits
    chat = long.new_conversation()
    ids = say(long, chat, *(f"m{n}" for n in range(1500)))
    assert len(long.branch(chat)) == 1500 and long.list_conversations()[0].message_count == 1500
    assert long.switch_to(chat, ids[0]) == ids[-1]
    assert long.delete_message(ids[1]) == 1499 and shown(long, chat) == ["m0"]


def test_retry_deletes_only_the_answer_shown_and_keeps_a_prompt_change(
    history: History,
) -> None:
    cid = history.new_conversation(system_prompt="Be brief.")
    q, a = say(history, cid, "Q", "A")
    history.switch_to(cid, q, descend=False)
    a_again = history.add_message(cid, "assistant", "A again")
    history.update_conversation(cid, system_prompt="Be a pirate.")
    history.update_conversation(cid, system_prompt="Be a poet.")

    removed = history.delete_last_assistant_message(cid)
    assert removed is not None and removed.id == a_again
    assert history.alternatives(a) == [a]  # the other answer is still there
    assert [(m.role, m.content) for m in history.branch(cid)] == [
        ("user", "Q"),
        ("system", "Be a pirate."),
        ("system", "Be a poet."),
    ]
    retried = history.add_message(cid, "assistant", "A, once more")
    assert history.branch(cid)[-1].id == retried
    assert history.export_markdown(cid).count("## System prompt changed") == 2


# --- export and search ----------------------------------------------------------------------


def test_export_writes_only_the_branch_shown(history: History) -> None:
    cid = history.new_conversation(model="demo")
    _, a1, _, a2 = say(history, cid, "Q1", "A1", "Old question", "Old answer")
    history.add_message(cid, "user", "New question", parent_id=a1)
    history.add_message(cid, "assistant", "New answer")
    history.add_message(cid, "user", "Follow-up")

    text = history.export_markdown(cid)
    assert "New question" in text and "Follow-up" in text
    assert "Old question" not in text and "Old answer" not in text
    assert "- **Messages:** 5" in text
    history.switch_to(cid, a2)
    text = history.export_markdown(cid)
    assert "Old answer" in text and "New question" not in text
    assert "- **Messages:** 4" in text


def test_search_finds_text_that_is_only_in_a_branch_not_shown(history: History) -> None:
    cid = history.new_conversation(title="Cooking")
    _, a1, _, _ = say(history, cid, "Q1", "A1", "How long to boil an egg?", "Nine minutes.")
    history.add_message(cid, "user", "How to poach one?", parent_id=a1)
    other = history.new_conversation(title="Other")
    say(history, other, "unrelated")

    assert "Nine minutes." not in shown(history, cid)
    assert [c.id for c in history.list_conversations(search="nine MINUTES")] == [cid]
    assert [c.id for c in history.list_conversations(search="poach")] == [cid]
    assert history.list_conversations(search="fried") == []


# --- version 4: reasoning and tool calls ----------------------------------------------------


def test_a_version_3_tree_migrates_to_version_4_keeping_every_row_and_branch(
    db_path: Path,
) -> None:
    from mlxchat.store.schema import MIGRATIONS, migrate

    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn, MIGRATIONS[:3])
    stamp = STAMP.format(1)
    conn.execute(
        "INSERT INTO conversations (id, title, created_at, updated_at, current_message_id)"
        " VALUES (1, 't', ?, ?, 4)",
        (stamp, stamp),
    )
    for mid, role, parent in [(1, "user", None), (2, "assistant", 1), (3, "user", None)]:
        conn.execute(
            "INSERT INTO messages (id, conversation_id, role, content, created_at, parent_id)"
            " VALUES (?, 1, ?, ?, ?, ?)",
            (mid, role, f"m{mid}", stamp, parent),
        )
    conn.execute(
        "INSERT INTO messages (id, conversation_id, role, content, created_at, parent_id)"
        " VALUES (4, 1, 'assistant', 'm4', ?, 3)",
        (stamp,),
    )
    conn.close()
    before = rows(db_path, "SELECT * FROM messages ORDER BY id")

    with History.open(db_path) as history:
        assert history.persistent and history.notice is None
        assert [m.content for m in history.branch(1)] == ["m3", "m4"]
        assert [m.content for m in history.branch(1, 2)] == ["m1", "m2"]
        asked = history.add_message(1, "assistant", "", reasoning="hmm", tool_calls=[])
        call = ToolCall("call_1", "get_time", '{"tz": "UTC"}')
        caller = history.add_message(
            1, "assistant", "", reasoning="I should look", tool_calls=[call]
        )
        result = history.add_message(
            1, "tool", "12:00", tool_call_id="call_1", tool_name="get_time"
        )
        stored = {m.id: m for m in history.branch(1)}
        assert stored[caller].tool_calls == (call,) and stored[caller].reasoning == "I should look"
        assert stored[result].role == "tool" and stored[result].tool_call_id == "call_1"
        assert stored[asked].reasoning == "hmm"
        messages = history.get_conversation(1).chat_messages()  # type: ignore[union-attr]
        assert messages[-1].role == "tool" and messages[-1].name == "get_time"
        assert messages[-2].tool_calls == (call,)
        with pytest.raises(HistoryError):  # references are still enforced after the rebuild
            history.add_message(1, "user", "x", parent_id=999)

    assert rows(db_path, "PRAGMA user_version") == [(4,)]
    after = rows(db_path, "SELECT * FROM messages WHERE id <= 4 ORDER BY id")
    assert [r[:9] for r in after] == [r[:9] for r in before]
    assert {r[9:] for r in after} == {("", None, None, None)}
    assert rows(db_path, "PRAGMA foreign_key_check") == []
