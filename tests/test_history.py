"""The SQLite history: real files and rows, a SIGKILLed writer, damaged and read-only files."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxchat.engine.types import Stats
from mlxchat.store import SCHEMA_VERSION, History, HistoryError, make_title
from mlxchat.store.markdown import open_fence
from mlxchat.store.schema import migrate, user_version

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def history(db_path: Path) -> Iterator[History]:
    h = History.open(db_path)
    assert h.notice is None and h.persistent
    yield h
    h.close()


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the file through a separate connection: what is really on disk."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- plain operations -------------------------------------------------------------------


def test_messages_are_on_disk_as_soon_as_added(history: History, db_path: Path) -> None:
    cid = history.new_conversation(model="demo", system_prompt="Be brief.", settings={"temp": 0.5})
    history.add_message(cid, "user", "Hello there")
    stats = Stats(prompt_tokens=12, prompt_tps=250.0, generation_tokens=3, generation_tps=19.5)
    stats.ttft, stats.peak_memory, stats.active_memory = 0.25, 0.4, 0.3
    history.add_message(cid, "assistant", "Hi!", model="demo", finish_reason="stop", stats=stats)

    assert rows(db_path, "SELECT id, title, model, system_prompt, settings FROM conversations") == [
        (cid, "Hello there", "demo", "Be brief.", '{"temp": 0.5}')
    ]
    on_disk = rows(db_path, "SELECT role, content, model, finish_reason FROM messages ORDER BY id")
    assert on_disk == [("user", "Hello there", None, None), ("assistant", "Hi!", "demo", "stop")]

    conversation = history.get_conversation(cid)
    assert conversation is not None
    assert conversation.settings == {"temp": 0.5}
    answer = conversation.messages[1]
    assert answer.stats is not None
    assert (answer.stats.prompt_tokens, answer.stats.generation_tps, answer.stats.ttft) == (
        12,
        19.5,
        0.25,
    )
    assert answer.stats.active_memory == 0.0  # momentary numbers are not kept
    assert [(m.role, m.content) for m in conversation.chat_messages()] == [
        ("system", "Be brief."),
        ("user", "Hello there"),
        ("assistant", "Hi!"),
    ]


def test_title_comes_from_the_first_user_message(history: History) -> None:
    cid = history.new_conversation()
    history.add_message(cid, "assistant", "Welcome!")
    long_question = "Explain   in detail\nhow the KV cache works " + "and why it matters " * 10
    history.add_message(cid, "user", long_question)
    history.add_message(cid, "user", "A second question")
    title = history.get_conversation(cid).title  # type: ignore[union-attr]
    assert title == make_title(long_question)
    assert title.startswith("Explain in detail how the KV cache works")
    assert title.endswith("…") and len(title) <= 60 and "\n" not in title

    history.set_title(cid, "My   own title")
    history.add_message(cid, "user", "another")
    assert history.get_conversation(cid).title == "My own title"  # type: ignore[union-attr]
    named = history.new_conversation(title="Named")
    history.add_message(named, "user", "hello")
    assert history.get_conversation(named).title == "Named"  # type: ignore[union-attr]


def test_update_conversation_settings(history: History, db_path: Path) -> None:
    cid = history.new_conversation(model="demo", settings={"temp": 0.7})
    history.update_conversation(cid, model="other", settings={"temp": 0.2, "top_p": 0.9})
    history.update_conversation(cid, system_prompt="Answer in French.")
    assert rows(db_path, "SELECT model, system_prompt, settings FROM conversations") == [
        ("other", "Answer in French.", '{"temp": 0.2, "top_p": 0.9}')
    ]


def test_list_orders_by_last_activity_and_searches(history: History) -> None:
    first = history.new_conversation()
    history.add_message(first, "user", "Tell me about Paris")
    second = history.new_conversation()
    history.add_message(second, "user", "Python question")
    history.add_message(second, "assistant", "Use a 100% pure_function here.")
    third = history.new_conversation(title="Empty one")
    history.add_message(first, "assistant", "Paris is the capital of France.")  # first is newest

    assert [c.id for c in history.list_conversations()] == [first, third, second]
    assert [c.message_count for c in history.list_conversations()] == [2, 0, 2]
    assert [c.id for c in history.list_conversations(limit=1)] == [first]
    assert [c.id for c in history.list_conversations(search="CAPITAL of")] == [first]  # content
    assert [c.id for c in history.list_conversations(search="python")] == [second]  # title
    assert [c.id for c in history.list_conversations(search="100%")] == [second]
    assert history.list_conversations(search="0%%") == []  # % is literal, not a wildcard
    assert [c.id for c in history.list_conversations(search="pure_f")] == [second]
    assert history.list_conversations(search="pure_x") == []  # _ is literal too
    assert len(history.list_conversations(search="  ")) == 3


def test_delete_conversation_removes_its_messages(history: History, db_path: Path) -> None:
    keep = history.new_conversation()
    history.add_message(keep, "user", "keep me")
    gone = history.new_conversation()
    history.add_message(gone, "user", "delete me")
    history.add_message(gone, "assistant", "ok")

    assert history.delete_conversation(gone) is True
    assert history.delete_conversation(gone) is False
    assert history.get_conversation(gone) is None
    assert rows(db_path, "SELECT conversation_id, content FROM messages") == [(keep, "keep me")]


def test_delete_last_assistant_message_for_retry(history: History, db_path: Path) -> None:
    cid = history.new_conversation()
    history.add_message(cid, "user", "question")
    answer_id = history.add_message(cid, "assistant", "first try", finish_reason="stop")

    removed = history.delete_last_assistant_message(cid)
    assert removed is not None and (removed.id, removed.content) == (answer_id, "first try")
    assert rows(db_path, "SELECT role, content FROM messages") == [("user", "question")]
    # the last message is now the user's: nothing more is deleted
    assert history.delete_last_assistant_message(cid) is None
    assert rows(db_path, "SELECT count(*) FROM messages") == [(1,)]


def test_adding_to_a_missing_conversation_is_an_error(history: History, db_path: Path) -> None:
    with pytest.raises(HistoryError, match="conversation 42 does not exist"):
        history.add_message(42, "user", "lost")
    assert rows(db_path, "SELECT count(*) FROM messages") == [(0,)]


def test_writes_from_several_threads(history: History, db_path: Path) -> None:
    cid = history.new_conversation()

    def write(n: int) -> None:
        for i in range(25):
            history.add_message(cid, "user", f"thread {n} message {i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rows(db_path, "SELECT count(DISTINCT content) FROM messages") == [(100,)]


def test_two_instances_share_the_file(db_path: Path) -> None:
    with History.open(db_path) as one, History.open(db_path) as two:
        cid = one.new_conversation()
        two.add_message(cid, "user", "from the second window")
        assert one.get_conversation(cid).messages[0].content == "from the second window"  # type: ignore[union-attr]


# --- schema -----------------------------------------------------------------------------


def test_schema_version_wal_and_foreign_keys(history: History, db_path: Path) -> None:
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(db_path, "PRAGMA journal_mode") == [("wal",)]
    tables = {r[0] for r in rows(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"conversations", "messages"} <= tables
    with pytest.raises(sqlite3.IntegrityError):  # the History's connection enforces them
        history._conn.execute(
            "INSERT INTO messages (conversation_id, role, content, created_at)"
            " VALUES (999, 'user', 'x', 'now')"
        )


def test_migration_hook_runs_each_step_once_and_atomically(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    calls: list[int] = []

    def step(n: int):
        def run(c: sqlite3.Connection) -> None:
            calls.append(n)
            c.execute(f"CREATE TABLE t{n} (x)")

        return run

    def broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE t_half (x)")
        raise RuntimeError("migration bug")

    assert migrate(conn, [step(1), step(2)]) == 2
    assert migrate(conn, [step(1), step(2)]) == 2  # already there: nothing runs
    assert calls == [1, 2]
    with pytest.raises(RuntimeError):
        migrate(conn, [step(1), step(2), broken])
    assert user_version(conn) == 2  # the failed step left no trace
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"t1", "t2"}


# --- export -----------------------------------------------------------------------------


def test_export_shows_a_system_prompt_change_where_it_happened(
    history: History, db_path: Path
) -> None:
    cid = history.new_conversation(model="demo")
    for n in (1, 2):
        history.add_message(cid, "user", f"Question {n}")
        history.add_message(cid, "assistant", f"Answer {n}", finish_reason="stop")
    history.update_conversation(cid, system_prompt="You are a pirate.", settings={"temp": 0})
    history.update_conversation(cid, system_prompt="You are a pirate.")  # no change: no row
    history.add_message(cid, "user", "Question 3")
    history.add_message(cid, "assistant", "Arr.", finish_reason="stop")
    history.update_conversation(cid, system_prompt="")

    text = history.export_markdown(cid)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        *["## User", "## Assistant"] * 2,
        "## System prompt changed",
        "## User",
        "## Assistant",
        "## System prompt removed",
    ]
    assert "## System prompt changed\n\nYou are a pirate.\n\n## User\n\nQuestion 3" in text
    assert "- **Messages:** 6" in text
    assert history.list_conversations()[0].message_count == 6
    conversation = history.get_conversation(cid)
    assert conversation.opening_system_prompt == ""
    assert [m.role for m in conversation.chat_messages()].count("system") == 0
    # /retry still removes the last answer, not the change after it
    history.update_conversation(cid, system_prompt="Be brief.")
    assert history.delete_last_assistant_message(cid).content == "Arr."


def test_a_version_1_history_file_is_migrated_and_keeps_its_chats(db_path: Path) -> None:
    from mlxchat.store.schema import MIGRATIONS

    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    assert migrate(conn, MIGRATIONS[:1]) == 1
    conn.execute(
        "INSERT INTO conversations (title, created_at, updated_at, system_prompt)"
        " VALUES ('Old', '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00',"
        " 'Be brief.')"
    )
    conn.close()
    with History.open(db_path) as history:
        assert history.notice is None
        old = history.get_conversation(1)
        assert (old.system_prompt, old.first_system_prompt) == ("Be brief.", None)
        assert history.export_markdown(1).count("## System prompt\n\nBe brief.") == 1
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_export_markdown(history: History) -> None:
    code = "Here:\n\n```python\ndef add(a, b):\n    return a + b  # *not* emphasis\n```\n"
    cid = history.new_conversation(model="demo", system_prompt="Be brief.")
    history.add_message(cid, "user", "Write add()")
    history.add_message(
        cid,
        "assistant",
        code,
        model="demo",
        finish_reason="stop",
        stats=Stats(generation_tokens=20, generation_tps=18.25, ttft=0.5),
    )
    history.add_message(cid, "user", "Now subtract")
    history.add_message(cid, "assistant", "```python\ndef sub(a, b):\n", finish_reason="cancelled")

    text = history.export_markdown(cid)
    assert text.startswith("# Write add()\n")
    assert "- **Model:** `demo`" in text
    assert "- **Messages:** 4" in text
    assert "## System prompt\n\nBe brief.\n" in text
    assert text.count("## User\n") == 2 and text.count("## Assistant\n") == 2
    assert code.rstrip("\n") in text  # code kept verbatim
    assert "*20 tokens · 18.2 tok/s · first token after 0.50 s*" in text
    assert "```python\ndef sub(a, b):\n```\n\n*stopped*" in text  # the open fence is closed
    assert open_fence(text) is None
    assert text.index("Write add()\n\n## Assistant") < text.index("Now subtract")
    with pytest.raises(HistoryError):
        history.export_markdown(12345)


def test_open_fence() -> None:
    assert open_fence("```py\nx\n```") is None
    assert open_fence("```py\nx\n") == "```"
    assert open_fence("````\n```\nstill code\n") == "````"  # a shorter fence does not close
    assert open_fence("~~~\ncode\n~~~~") is None
    assert open_fence("``` not a close\n```py\n") == "```"


def test_the_export_leaves_a_blank_line_between_a_code_block_and_the_text_after_it() -> None:
    history = History.in_memory()
    cid = history.new_conversation()
    history.add_message(cid, "user", "Code?")
    history.add_message(
        cid, "assistant", "Here:\n```py\nx = 1\n```\nThen run it.\n````\n```\n````\nok"
    )
    text = history.export_markdown(cid)
    assert "```py\nx = 1\n```\n\nThen run it.\n````\n```\n````\n\nok" in text


# --- durability and damaged or unusable files ----------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from mlxchat.store import History

    history = History.open(sys.argv[1])
    assert history.notice is None, history.notice
    cid = history.new_conversation(model="demo")
    i = 0
    while True:
        role = "user" if i % 2 == 0 else "assistant"
        mid = history.add_message(cid, role, f"message {i} " + "x" * 2000)
        print(mid, i, flush=True)  # acknowledged only after the commit returned
        i += 1
    """
)


def test_sigkill_loses_nothing_committed(db_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged: dict[int, int] = {}
    assert child.stdout is not None
    for line in child.stdout:
        mid, i = map(int, line.split())
        acknowledged[mid] = i
        if len(acknowledged) == 150:
            os.kill(child.pid, signal.SIGKILL)  # while it is busy writing the next ones
            break
    for line in child.stdout:  # lines already written before it died are acknowledged too
        mid, i = map(int, line.split())
        acknowledged[mid] = i
    assert child.wait(timeout=30) == -signal.SIGKILL

    assert rows(db_path, "PRAGMA integrity_check") == [("ok",)]
    stored = dict(rows(db_path, "SELECT id, content FROM messages"))
    assert len(stored) >= len(acknowledged) >= 150
    for mid, i in acknowledged.items():
        assert stored[mid] == f"message {i} " + "x" * 2000
    with History.open(db_path) as again:  # and it opens cleanly
        assert again.notice is None
        assert len(again.list_conversations()[0:1]) == 1


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_damaged_file_is_moved_aside_not_overwritten(db_path: Path, damage: str) -> None:
    with History.open(db_path) as h:
        cid = h.new_conversation()
        for i in range(40):
            h.add_message(cid, "user", f"old message {i} " + "y" * 2000)
    if damage == "random":
        db_path.write_bytes(os.urandom(64 * 1024))
    else:
        data = db_path.read_bytes()
        db_path.write_bytes(data[: len(data) // 2])
    damaged = db_path.read_bytes()

    h = History.open(db_path)
    assert h.persistent and h.notice is not None
    moved = list(db_path.parent.glob("history.sqlite3.corrupt-*"))
    assert len(moved) == 1
    assert str(moved[0]) in h.notice and "damaged" in h.notice
    assert moved[0].read_bytes() == damaged  # the damaged bytes are kept intact
    cid = h.new_conversation()
    h.add_message(cid, "user", "a fresh start")
    h.close()
    assert rows(db_path, "SELECT content FROM messages") == [("a fresh start",)]

    db_path.write_bytes(b"garbage again" * 100)  # a second time: a second, distinct name
    with History.open(db_path) as again:
        assert again.notice is not None
    assert len(list(db_path.parent.glob("history.sqlite3.corrupt-*"))) == 2


def test_stale_wal_moves_aside_with_the_damaged_file(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(os.urandom(8192))
    Path(f"{db_path}-wal").write_bytes(b"old wal")
    with History.open(db_path) as h:
        assert h.notice is not None and h.persistent
        assert h.list_conversations() == []
    (moved,) = db_path.parent.glob("history.sqlite3.corrupt-*[0-9]")
    assert Path(f"{moved}-wal").read_bytes() == b"old wal"


def test_newer_schema_is_left_alone(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = digest(db_path)

    h = History.open(db_path)
    assert not h.persistent and h.path is None
    assert h.notice is not None and h.notice.startswith("history is not saved:")
    assert "newer mlxchat" in h.notice
    cid = h.new_conversation()  # the chat still works, in memory
    h.add_message(cid, "user", "hello")
    assert h.get_conversation(cid).messages[0].content == "hello"  # type: ignore[union-attr]
    h.close()
    assert digest(db_path) == before
    assert not list(db_path.parent.glob("*.corrupt-*"))


def test_data_dir_that_cannot_be_created_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the data folder should be")
    h = History.open(blocker / "data" / "history.sqlite3")
    assert not h.persistent
    assert h.notice is not None and h.notice.startswith("history is not saved:")
    assert str(blocker / "data") in h.notice
    cid = h.new_conversation()
    h.add_message(cid, "user", "still chatting")
    assert [c.id for c in h.list_conversations()] == [cid]


def test_database_path_that_is_a_folder_falls_back_to_memory(db_path: Path) -> None:
    db_path.mkdir(parents=True)
    h = History.open(db_path)
    assert not h.persistent and h.notice and h.notice.startswith("history is not saved:")
    assert db_path.is_dir()


def run_unprivileged(path: Path) -> tuple[str, str]:
    """Open History on `path` in a forked child without write access; return (persistent, notice).

    Root ignores file modes, so as root the child first becomes `nobody`. The child also
    checks that the chat still works (in memory).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            h = History.open(path)
            cid = h.new_conversation()
            h.add_message(cid, "user", "works anyway")
            assert h.get_conversation(cid).messages[0].content == "works anyway"  # type: ignore[union-attr]
            os.write(write_end, f"{h.persistent}\n{h.notice}".encode())
            code = 0
        except BaseException as error:
            os.write(write_end, f"error\n{type(error).__name__}: {error}".encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        persistent, notice = reader.read().split("\n", 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, notice
    return persistent, notice


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="mlxchat-ro-"))
    folder.chmod(0o755)
    yield folder
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(folder)


def test_read_only_file_falls_back_to_memory(shared_dir: Path) -> None:
    path = shared_dir / "history.sqlite3"
    with History.open(path) as h:
        h.add_message(h.new_conversation(), "user", "saved earlier")
    path.chmod(0o444)
    shared_dir.chmod(0o555)
    before = digest(path)

    persistent, notice = run_unprivileged(path)
    assert persistent == "False"
    assert notice.startswith("history is not saved:") and str(path) in notice
    assert digest(path) == before
    assert sorted(p.name for p in shared_dir.iterdir()) == ["history.sqlite3"]


def test_read_only_folder_falls_back_to_memory(shared_dir: Path) -> None:
    shared_dir.chmod(0o555)
    persistent, notice = run_unprivileged(shared_dir / "history.sqlite3")
    assert persistent == "False"
    assert notice.startswith("history is not saved:")
    assert list(shared_dir.iterdir()) == []


def test_writable_control_for_the_unprivileged_probe(shared_dir: Path) -> None:
    """The same probe in a writable folder saves to the file: the checks above can fail."""
    shared_dir.chmod(0o777)
    persistent, notice = run_unprivileged(shared_dir / "history.sqlite3")
    assert (persistent, notice) == ("True", "None")
