"""Saved chat history: SQLite in the data folder, schema versioned by `PRAGMA user_version`.

Use `History.open(locations.data_dir() / HISTORY_FILE)`; see `mlxchat.store.history`.
"""

from mlxchat.store.history import HISTORY_FILE, History, HistoryError
from mlxchat.store.records import Conversation, ConversationSummary, StoredMessage, make_title
from mlxchat.store.schema import SCHEMA_VERSION

__all__ = [
    "HISTORY_FILE",
    "SCHEMA_VERSION",
    "Conversation",
    "ConversationSummary",
    "History",
    "HistoryError",
    "StoredMessage",
    "make_title",
]
