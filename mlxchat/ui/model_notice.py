"""What to know about a loaded model, shown once per app: its notice (`ModelInfo.notice`, e.g.
the slow-BLAS hint) and, in the chat, that it is a base model."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from textual.app import App

from mlxchat.engine.types import ModelInfo

_shown: WeakKeyDictionary[App, set[str]] = WeakKeyDictionary()


def show_model_notice(app: App, info: ModelInfo | None) -> None:
    """Notify `info.notice` unless this app showed the same notice already."""
    notice = getattr(info, "notice", "")
    if not notice or notice in _shown.setdefault(app, set()):
        return
    _shown[app].add(notice)
    app.notify(notice, title="Slow CPU path", severity="warning", timeout=20, markup=False)


def base_model_notice(name: str) -> str:
    """What the chat says about a model without a chat template."""
    return (
        f"{name} is a base model (no chat template): the chat sends the conversation as "
        "plain text for it to continue. It suits completion and translation more than chat."
    )


def show_base_model_notice(app: App, info: ModelInfo | None) -> None:
    """In the chat: say once that the model has no chat template, when it has none."""
    if info is None or getattr(info, "chat_template", True):
        return
    notice = base_model_notice(info.name)
    if notice not in _shown.setdefault(app, set()):
        _shown[app].add(notice)
        app.notify(notice, title="Base model", severity="information", timeout=15, markup=False)
