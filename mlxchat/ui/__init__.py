"""The chat TUI (Textual): `run_chat(settings)` runs it; `ChatApp` is the app itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlxchat.ui.app import ChatApp, run_chat


def __getattr__(name: str) -> Any:
    """Import the app lazily so `import mlxchat.ui` stays cheap."""
    if name in ("ChatApp", "run_chat"):
        from mlxchat.ui import app

        return getattr(app, name)
    raise AttributeError(name)


__all__ = ["ChatApp", "run_chat"]
