"""Opening the history file safely: corrupt files are moved aside, never overwritten.

`open_database(path)` returns a ready connection and an optional notice for the user.
When the file cannot be used (read-only, unwritable folder, newer schema, locked) it
returns an in-memory database instead, with a notice saying history is not saved.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from pathlib import Path

from mlxchat.store.schema import SCHEMA_VERSION, migrate, user_version

_CORRUPT_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_REASONS = {
    "SQLITE_READONLY": "the file is read-only",
    "SQLITE_READONLY_DIRECTORY": "its folder is read-only",
    "SQLITE_CANTOPEN": "the file cannot be opened or created",
    "SQLITE_BUSY": "another program keeps the database locked",
    "SQLITE_LOCKED": "another program keeps the database locked",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_IOERR": "the disk reported an I/O error",
    "SQLITE_PERM": "permission denied",
    "SQLITE_AUTH": "permission denied",
}


class _Corrupt(Exception):
    """The file is not a usable SQLite database (damaged, truncated or something else)."""


class _Unusable(Exception):
    """The file is fine but must not or cannot be written; the text says why."""


def reason(error: sqlite3.Error) -> str:
    """A short human reason for an SQLite error."""
    name = getattr(error, "sqlite_errorname", "") or ""
    primary = "_".join(name.split("_")[:2])  # SQLITE_IOERR_WRITE -> SQLITE_IOERR
    return _REASONS.get(name) or _REASONS.get(primary) or str(error)


def connect_memory() -> sqlite3.Connection:
    """A fresh in-memory history database."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn)
    return conn


def _connect_file(path: Path) -> sqlite3.Connection:
    """Open, check and migrate the file; raise _Corrupt, _Unusable or sqlite3.Error."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        conn.row_factory = sqlite3.Row
        version = user_version(conn)  # reads the header only: safe on any file
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise _Corrupt(problems[0])
        if version > SCHEMA_VERSION:
            raise _Unusable(
                f"{path} was written by a newer mlxchat (schema {version}, this one reads up "
                f"to {SCHEMA_VERSION}); upgrade mlxchat to use it"
            )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a commit is on disk when add_message returns
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")  # probe: fails now, not mid-chat, if we cannot write
        conn.execute("ROLLBACK")
        migrate(conn)
        return conn
    except sqlite3.DatabaseError as error:
        conn.close()
        if getattr(error, "sqlite_errorname", "") in _CORRUPT_CODES:
            raise _Corrupt(str(error)) from error
        raise
    except BaseException:
        conn.close()
        raise


def _keep_wal(path: Path) -> Path | None:
    """Hard-link an existing -wal file aside before SQLite sees it.

    Opening a damaged database makes SQLite discard its write-ahead log on close; the
    link keeps those bytes so they can move aside with the damaged file. Best effort.
    """
    wal = path.with_name(path.name + "-wal")
    keep = path.with_name(path.name + "-wal.keep")
    if not wal.exists():
        return None
    try:
        keep.unlink(missing_ok=True)
        os.link(wal, keep)
    except OSError:
        try:
            shutil.copy2(wal, keep)
        except OSError:
            return None
    return keep


def _move_aside(path: Path, kept_wal: Path | None) -> Path:
    """Rename the damaged file (and its kept -wal) to `<name>.corrupt-<timestamp>`."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.rename(target)
    if kept_wal is not None:
        with contextlib.suppress(OSError):  # best effort: the main file is what matters
            kept_wal.rename(target.with_name(target.name + "-wal"))
    for suffix in ("-wal", "-shm"):  # what SQLite left: never replay it into the new file
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return target


def open_database(path: Path) -> tuple[sqlite3.Connection, bool, str | None]:
    """Open the history at `path`, or fall back to memory.

    Returns:
        The connection, whether it is the file (False: in memory), and a notice or None.
    """

    def fallback(why: str) -> tuple[sqlite3.Connection, bool, str | None]:
        return connect_memory(), False, f"history is not saved: {why}"

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return fallback(f"cannot create the folder {path.parent} (a file is in the way)")
    except OSError as error:
        return fallback(f"cannot create the folder {path.parent} ({error.strerror or error})")
    kept_wal = _keep_wal(path)
    try:
        try:
            return _connect_file(path), True, None
        except _Unusable as error:
            return fallback(str(error))
        except sqlite3.Error as error:
            return fallback(f"cannot write {path} ({reason(error)})")
        except _Corrupt as error:
            damage = str(error)
        try:
            moved = _move_aside(path, kept_wal)
            kept_wal = None
        except OSError as error:
            return fallback(
                f"{path} is damaged ({damage}) and could not be moved aside "
                f"({error.strerror or error}); it was left untouched"
            )
    finally:
        if kept_wal is not None:
            with contextlib.suppress(OSError):
                kept_wal.unlink(missing_ok=True)
    notice = f"history file was damaged ({damage}); moved it to {moved} and started a new one"
    try:
        return _connect_file(path), True, notice
    except (sqlite3.Error, _Corrupt, _Unusable) as error:
        why = reason(error) if isinstance(error, sqlite3.Error) else str(error)
        return fallback(f"{notice}, but the new one cannot be written ({why})")
