"""A loaded model's notice (`ModelInfo.notice`, e.g. the slow-BLAS hint), shown once per app."""

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
